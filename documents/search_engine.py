"""Relevance matching over the search documents of `documents.search_index` (README "Search").

`match(db, kind, q, where)` answers every item of `kind` whose search document matches all
words of `q` and the conditions `where`, best first:

- each query word (folded, stop words dropped, Snowball-stemmed: `documents.search_text`)
  expands to the indexed terms it may stand for: its stem; for the last word also every
  term it is a prefix of (typing "light" finds "lighthouse"); and, when the word is not in
  the vocabulary, the terms within one edit (words of 5+ letters) or two edits (9+) by
  optimal-string-alignment distance (rapidfuzz; a swap of two letters is one edit);
- every word must match (AND, any order): ``{terms: {$in: expansions}}`` per word, on the
  multikey index (kind, visible, terms) — documented operators only, so the same query runs
  on MongoDB, the embedded store and the test wire server;
- score = Σ over words of the best (field weight × match weight) among its matches;
  field weights title 10 > tags 6 > category 4 > description 2 > creator name 1; match
  weights exact 1.0, prefix 0.8, one edit 0.7, two edits 0.5;
- ties: popularity, then newest, then id.

The vocabulary (terms and phrases of visible items) is read from `search_vocab` and kept in
memory per store handle (`documents.search_postings.SearchState`) until `search_meta`'s
token for the kind changes (any instance's write that adds or removes an entry); counts of
entries that stay may lag until then.

Candidates are found through `documents.search_postings`: on MongoDB and the wire server by
the store's query on the terms index; on the embedded store by the in-process term index,
which reads only the postings of the query's terms, applies the same filter and computes the
same scores from its field postings (`TermIndex.relevance`). Scores and order are the same
either way.
"""
from __future__ import annotations

import bisect
import heapq
from collections import OrderedDict
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import OSA

from documents import search_postings, search_text
from documents.search_index import META, SEARCH, VOCAB

FIELD_WEIGHTS = {"t": 10.0, "g": 6.0, "c": 4.0, "d": 2.0, "u": 1.0}
EXACT, PREFIX, ONE_EDIT, TWO_EDITS = 1.0, 0.8, 0.7, 0.5
MIN_PREFIX = 2          # a last word shorter than this matches whole terms only
MAX_PREFIX_TERMS = 60   # the most frequent completions of a last word that are tried
MAX_FUZZY_TERMS = 8


@dataclass
class Vocabulary:
    """One kind's vocabulary of visible items: terms sorted (for prefixes) with their
    counts, and the phrases (tags, categories, creator names) sorted by key."""

    terms: list[str] = field(default_factory=list)
    df: dict[str, int] = field(default_factory=dict)
    phrases: list[tuple[str, str, str, int]] = field(default_factory=list)  # key, field, value, df

    def completions(self, prefix: str) -> list[str]:
        """The terms starting with `prefix` (itself excluded), most frequent first."""
        start = bisect.bisect_left(self.terms, prefix)
        end = bisect.bisect_left(self.terms, prefix + "\uffff")
        found = [t for t in self.terms[start:end] if t != prefix]
        found.sort(key=lambda t: -self.df[t])
        return found[:MAX_PREFIX_TERMS]

    def near(self, word: str, edits: int) -> dict[str, int]:
        """{term: distance} of the terms within `edits` edits of `word`."""
        hits = process.extract(word, self.terms, scorer=OSA.distance, score_cutoff=edits,
                               limit=MAX_FUZZY_TERMS)
        return {term: int(dist) for term, dist, _ in hits}

    def phrases_starting(self, prefix: str, limit: int) -> list[dict]:
        """Up to `limit` phrases whose key starts with `prefix`, most used first."""
        start = bisect.bisect_left(self.phrases, (prefix,))
        end = bisect.bisect_left(self.phrases, (prefix + "\uffff",))
        found = sorted(self.phrases[start:end], key=lambda p: (-p[3], p[0], p[1]))
        return [{"text": value, "type": kind} for _key, kind, value, _df in found[:limit]]


KEPT_VOCABULARIES = 16      # (kind, token) → Vocabulary kept per store handle, most recent


async def vocabulary(db, kind: str) -> Vocabulary:
    """The vocabulary of `kind`, from memory while the store's token for it is unchanged
    (kept in the search state of `db`; read from the store each time on a handle without
    one)."""
    state = search_postings.state_of(db)
    kept: OrderedDict = state.vocabularies if state is not None else OrderedDict()
    meta = await db[META].find_one({"_id": f"vocab:{kind}"}, {"token": 1})
    token = meta.get("token") if meta else None
    if token and (kind, token) in kept:
        kept.move_to_end((kind, token))
        return kept[(kind, token)]
    vocab = Vocabulary()
    async for e in db[VOCAB].find({"kind": kind, "df": {"$gt": 0}},
                                  {"field": 1, "key": 1, "value": 1, "df": 1}):
        if e["field"] == "term":
            vocab.df[e["key"]] = e["df"]
        else:
            vocab.phrases.append((e["key"], e["field"], e.get("value") or e["key"], e["df"]))
    vocab.terms = sorted(vocab.df)
    vocab.phrases.sort()
    if token:
        kept[(kind, token)] = vocab
        while len(kept) > KEPT_VOCABULARIES:
            kept.popitem(last=False)
    return vocab


def expand(vocab: Vocabulary, word: str, stem: str, *, last: bool,
           min_prefix: int = MIN_PREFIX) -> dict[str, float]:
    """{indexed term: match weight} a query word may stand for (module docstring); the
    last word is a prefix when it has at least `min_prefix` letters. The stem itself is
    always included: the vocabulary counts visible items only, and staff lists also search
    hidden ones (whose words are matched exactly, without typos or prefixes)."""
    out: dict[str, float] = {}
    for candidate in dict.fromkeys((stem, word)):
        if candidate in vocab.df:
            out[candidate] = EXACT
    if last and len(word) >= min_prefix:
        for candidate in dict.fromkeys((word, stem)):
            for term in vocab.completions(candidate):
                out.setdefault(term, PREFIX)
    if not out and len(word) >= 5:
        edits = 2 if len(word) >= 9 else 1
        for candidate in dict.fromkeys((stem, word)):
            for term, dist in vocab.near(candidate, edits).items():
                weight = ONE_EDIT if dist <= 1 else TWO_EDITS
                out[term] = max(out.get(term, 0.0), weight)
    out.setdefault(stem, EXACT)     # also a word of hidden items only (staff lists)
    return out


@dataclass(order=True)
class Hit:
    """One matching item; sorts best first."""

    sort_key: tuple
    item_id: object = field(compare=False)
    score: float = field(compare=False)


def score(doc: dict, expansions: list[dict[str, float]]) -> float:
    """The relevance of one search document for the expanded query words."""
    fields = doc.get("fields") or {}
    total = 0.0
    for expansion in expansions:
        best = 0.0
        for name, weight in FIELD_WEIGHTS.items():
            for term in fields.get(name) or ():
                hit = expansion.get(term)
                if hit and weight * hit > best:
                    best = weight * hit
        total += best
    return total


async def expansions(db, kind: str, q: str, *,
                     min_prefix: int = MIN_PREFIX) -> list[dict[str, float]] | None:
    """The expansions of every word of `q`; None when `q` has no words."""
    pairs = search_text.query_words(q)
    if not pairs:
        return None
    vocab = await vocabulary(db, kind)
    return [expand(vocab, word, stem, last=i == len(pairs) - 1, min_prefix=min_prefix)
            for i, (word, stem) in enumerate(pairs)]


def terms_query(kind: str, words: list[dict[str, float]], where: dict) -> dict:
    """The store query: `where`, the kind, and every word's terms ($in on the index)."""
    query: dict = {"kind": kind, **where}
    conditions = [{"terms": {"$in": sorted(w)}} for w in words]
    if len(conditions) == 1:
        query["terms"] = conditions[0]["terms"]
    else:
        query["$and"] = [*query.get("$and", ()), *conditions]
    return query


@dataclass
class Query:
    """A prepared query: the kind, the expanded words, the store filter they make with the
    conditions `where`, and those conditions."""

    words: list[dict[str, float]]
    filter: dict
    kind: str = "models"
    where: dict = field(default_factory=dict)


async def prepare(db, kind: str, q: str, where: dict | None = None) -> Query | None:
    """The store filter for the items of `kind` matching every word of `q` and the
    conditions `where` on their search documents; None when nothing can match."""
    words = await expansions(db, kind, q)
    where = where or {}
    return None if words is None else Query(words, terms_query(kind, words, where), kind, where)


async def _candidates(db, kind: str, words: list[dict[str, float]], where: dict,
                      projection: dict) -> list[dict]:
    """The search documents of `kind` holding a term of every word of `words` and matching
    the conditions `where` (the store query `terms_query(kind, words, where)`): from the
    in-process term index on the embedded store (its stored documents, read-only, datetimes
    naive UTC: `search_postings.aware`), else from the store with `projection`; in no
    particular order."""
    index = search_postings.terms_of(db)
    if index is None:
        return await db[SEARCH].find(terms_query(kind, words, where), projection).to_list(
            length=None)
    return index.find(kind, words, where)


async def run(db, query: Query) -> list[Hit]:
    """Every search document matching a prepared query, best first (module docstring)."""
    projection = {"fields": 1, "popularity": 1, "created_at": 1, "item_id": 1}
    hits = []
    docs = await _candidates(db, query.kind, query.words, query.where, projection)
    index = search_postings.terms_of(db)
    scores = (index.relevance(query.kind, (d["_id"] for d in docs), query.words, FIELD_WEIGHTS)
              if index is not None else None)
    for doc in docs:
        relevance = round(scores[doc["_id"]] if scores is not None
                          else score(doc, query.words), 6)
        created = search_postings.aware(doc.get("created_at"))
        stamp = created.timestamp() if created is not None else 0.0
        hits.append(Hit((-relevance, -(doc.get("popularity") or 0.0), -stamp,
                         str(doc["item_id"])), doc["item_id"], relevance))
    hits.sort()
    return hits


async def match(db, kind: str, q: str, where: dict | None = None) -> list[Hit]:
    """Every item of `kind` matching all words of `q` and the conditions `where` (on its
    search document: e.g. ``{"visible": True}``), best first (module docstring)."""
    query = await prepare(db, kind, q, where)
    return [] if query is None else await run(db, query)


async def ranked_page(db, kind: str, q: str, collection, query: dict, *, page: int,
                      limit: int, where: dict | None = None, projection: dict | None = None
                      ) -> tuple[list[dict], dict]:
    """One page of the items of `collection` (the owner's) that match `q` (search documents
    of `kind`, conditions `where`) AND the owner's `query` (the truth: visibility, filters),
    best first. Returns (documents, pagination meta ``{total, page, limit, pages}``)."""
    hits = await match(db, kind, q, where)
    if hits:
        allowed = {d["_id"] async for d in collection.find(
            {**query, "_id": {"$in": [h.item_id for h in hits]}}, {"_id": 1})}
        hits = [h for h in hits if h.item_id in allowed]
    window = [h.item_id for h in hits[(page - 1) * limit: page * limit]]
    found = {d["_id"]: d async for d in collection.find({"_id": {"$in": window}}, projection)
             } if window else {}
    total = len(hits)
    return ([found[i] for i in window if i in found],
            {"total": total, "page": page, "limit": limit, "pages": -(-total // limit)})


async def facets(db, match: dict, spec: dict) -> dict:
    """``{name: [{_id, count}, ...]}``: the `$facet` stage `spec` over the search documents
    matching `match` (a prepared query's filter, or conditions with the kind)."""
    rows = await db[SEARCH].aggregate([{"$match": match}, {"$facet": spec}]).to_list(length=1)
    return rows[0] if rows else {}


# --------------------------------------------------------------------------- suggestions

SUGGEST_LIMIT = 10
SUGGEST_TITLES = 5
SUGGEST_CANDIDATES = 200    # the most popular matches whose titles are ranked


async def _popular(db, kind: str, words: list[dict[str, float]]) -> list[dict]:
    """The SUGGEST_CANDIDATES most popular visible items of `kind` matching `words` (ties by
    `_id`), their search documents' fields, popularity, label and item id."""
    where = {"visible": True}
    projection = {"fields": 1, "popularity": 1, "label": 1, "item_id": 1}
    if search_postings.terms_of(db) is None:
        cursor = db[SEARCH].find(terms_query(kind, words, where), projection)
        return await cursor.sort([("popularity", -1), ("_id", 1)]).limit(
            SUGGEST_CANDIDATES).to_list(length=SUGGEST_CANDIDATES)
    docs = await _candidates(db, kind, words, where, projection)
    return heapq.nsmallest(SUGGEST_CANDIDATES, docs,
                           key=lambda d: (-(d.get("popularity") or 0.0), d["_id"]))


async def suggest(db, kind: str, q: str, *, limit: int = SUGGEST_LIMIT) -> list[dict]:
    """Up to `limit` completions of what is being typed: titles of matching visible items
    (the last word as a prefix), then the tags, categories and creator names starting with
    `q` among visible items, most used first. Items ``{text, type, id?}`` with `type`
    "title" (with the item's `id`), "tag", "category" or "creator"."""
    prefix = search_text.key(q)
    if not prefix:
        return []
    titles: list[dict] = []
    words = await expansions(db, kind, q, min_prefix=1)
    if words is not None:
        docs = await _popular(db, kind, words)
        docs.sort(key=lambda d: (-score(d, words), -(d.get("popularity") or 0.0)))
        seen = set()
        for doc in docs:
            label = doc.get("label") or ""
            if label and label.lower() not in seen:
                seen.add(label.lower())
                titles.append({"text": label, "type": "title", "id": str(doc["item_id"])})
    phrases = (await vocabulary(db, kind)).phrases_starting(prefix, limit)
    out = titles[:max(SUGGEST_TITLES, limit - len(phrases))]
    out += phrases[:limit - len(out)]
    return out[:limit]
