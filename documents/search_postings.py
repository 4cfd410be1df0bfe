"""Where the search engine finds its candidates (README "Search"; docs/architecture.md §1,
§2, §4).

The engine (`documents.search_engine`) asks for the search documents of one kind that hold,
for every query word, at least one of the word's expanded terms and that satisfy a store
filter. Two ways answer it, chosen per store by the composition root (`composition.py`):

- **MongoDB and the test wire server**: the store itself, through the multikey index
  (kind, visible, terms) of `documents.search_index` (`SearchState.terms` is None). Several
  instances share one MongoDB, so nothing of the index may live in one process.
- **The embedded store** (mongomock, one process by nature): mongomock has no indexes and
  evaluates a query against every document, so a query would cost the whole catalog.
  `TermIndex` keeps, in this process, the search documents as stored and an inverted index
  ``(kind, term) → {search document _id}``; `documents.search_index` moves it in the same
  functions that write `search_docs` (right after each store write, with no await between),
  and it is rebuilt from `search_docs` at start-up (`search_index.load_terms`). A query then
  reads the postings of its terms only and evaluates its filter (mongomock's own matcher,
  so the results are the store's) on those candidates: the cost follows the matches, not
  the catalog.

The state hangs off the database handle the composition root opened (`attach`), so instances
of one process that share an embedded store share its index; a handle without state (a
script's own store) is searched by the store and keeps no vocabulary in memory.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mongomock.filtering import filter_applies
from mongomock.helpers import patch_datetime_awareness_in_document

STATE_ATTRIBUTE = "hwc3d_search_state"


@dataclass
class TermIndex:
    """The embedded store's search documents in memory (module docstring).

    `docs`: ``{_id: document}`` in the form mongomock stores it (datetimes naive UTC, to the
    millisecond); `postings`: ``{(kind, term): {_id, ...}}`` over the `terms` of each
    document, and ``{(kind, field, term): {_id, ...}}`` over each field's terms (`fields`),
    from which `relevance` scores. Callers must not change the documents they are given."""

    docs: dict[str, dict] = field(default_factory=dict)
    postings: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def put(self, doc: dict) -> None:
        """Index one search document (with `_id`) as just written to the store."""
        stored = patch_datetime_awareness_in_document(doc)
        self.remove(stored["_id"])
        self.docs[stored["_id"]] = stored
        for key in _keys(stored):
            self.postings.setdefault(key, set()).add(stored["_id"])

    def remove(self, doc_id: str) -> None:
        """Forget the search document `doc_id` (no error when unknown)."""
        old = self.docs.pop(doc_id, None)
        if old is None:
            return
        for key in _keys(old):
            ids = self.postings.get(key)
            if ids is not None:
                ids.discard(doc_id)
                if not ids:
                    del self.postings[key]

    def set_fields(self, doc_id: str, values: dict) -> None:
        """`$set` of top-level fields that are not `terms` (popularity) on one document."""
        doc = self.docs.get(doc_id)
        if doc is not None:
            doc.update(patch_datetime_awareness_in_document(values))

    def replace_kind(self, kind: str, docs: Iterable[dict]) -> None:
        """Forget every document of `kind`, then index `docs` (a rebuild)."""
        for doc_id in [i for i, d in self.docs.items() if d.get("kind") == kind]:
            self.remove(doc_id)
        for doc in docs:
            self.put(doc)

    def candidates(self, kind: str, words: list[Iterable[str]]) -> set[str]:
        """The `_id`s of documents of `kind` holding, for every entry of `words`, one of its
        terms: the union of each word's postings, intersected from the smallest."""
        unions = []
        for terms in words:
            found: set[str] = set()
            for term in terms:
                found |= self.postings.get((kind, term), set())
            if not found:
                return set()
            unions.append(found)
        if not unions:
            return set()
        unions.sort(key=len)
        out = set(unions[0])
        for other in unions[1:]:
            out &= other
        return out

    def find(self, kind: str, words: list[Iterable[str]], where: dict) -> list[dict]:
        """The documents of `kind` among `candidates(kind, words)` that match the conditions
        `where` (mongomock's matcher, datetimes as the store compares them), in no
        particular order: what the store answers to ``{kind, **where, terms: {$in: terms}}
        per word``, whose kind and terms conditions the candidates meet by construction."""
        spec = patch_datetime_awareness_in_document(where)
        found = (self.docs[doc_id] for doc_id in self.candidates(kind, words))
        if not spec:
            return list(found)
        if spec == {"visible": True}:       # the public search: no matcher needed
            return [doc for doc in found if doc.get("visible") is True]
        return [doc for doc in found if filter_applies(spec, doc)]

    def relevance(self, kind: str, ids: Iterable[str], words: list[dict[str, float]],
                  field_weights: dict[str, float]) -> dict[str, float]:
        """``{_id: score}`` of the documents `ids` of `kind` for the expanded query `words`
        ({term: match weight} per word): per word the best field weight × match weight
        among the terms the document's fields hold, summed over the words in order — the
        figure `documents.search_engine.score` computes from one document, here from the
        field postings of the words' terms (the cost follows the postings, not the
        documents' lengths)."""
        wanted = set(ids)
        totals = dict.fromkeys(wanted, 0.0)
        for expansion in words:
            best: dict[str, float] = {}
            for term, match_weight in expansion.items():
                if not match_weight:
                    continue
                for name, field_weight in field_weights.items():
                    posted = self.postings.get((kind, name, term))
                    if not posted:
                        continue
                    value = field_weight * match_weight
                    for doc_id in (posted & wanted if len(posted) > len(wanted) else
                                   [i for i in posted if i in wanted]):
                        if value > best.get(doc_id, 0.0):
                            best[doc_id] = value
            for doc_id in totals:
                totals[doc_id] += best.get(doc_id, 0.0)
        return totals


def _keys(doc: dict) -> set[tuple]:
    """The postings keys of a stored document: (kind, term) and (kind, field, term)."""
    kind = doc.get("kind")
    keys: set[tuple] = {(kind, t) for t in doc.get("terms") or () if isinstance(t, str)}
    fields = doc.get("fields")
    if isinstance(fields, dict):
        for name, terms in fields.items():
            if isinstance(terms, list):
                keys.update((kind, name, t) for t in terms if isinstance(t, str))
    return keys


def aware(value):
    """A datetime of a `TermIndex` document as the embedded store answers it (UTC-aware,
    docs/architecture.md §1); anything else unchanged."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass
class SearchState:
    """What one store handle keeps for search in memory: the recent vocabularies
    ``{(kind, token): Vocabulary}`` (`documents.search_engine`) and, on the embedded store
    only, its `TermIndex` (None: the store's own index answers)."""

    vocabularies: OrderedDict = field(default_factory=OrderedDict)
    terms: TermIndex | None = None


def attach(db, *, in_process_index: bool) -> SearchState:
    """The search state of the handle `db`, created and hung on it when it has none yet (a
    handle shared by several instances of one process keeps its first one). With
    `in_process_index` (the embedded store only: the index is this process's), a
    `TermIndex` too, empty until `documents.search_index.load_terms`."""
    state = state_of(db)
    if state is None:
        state = SearchState(terms=TermIndex() if in_process_index else None)
        setattr(db, STATE_ATTRIBUTE, state)
    return state


def state_of(db) -> SearchState | None:
    """The search state hung on `db` by `attach`, or None."""
    try:
        return vars(db).get(STATE_ATTRIBUTE)
    except TypeError:       # a handle without instance attributes
        return None


def terms_of(db) -> TermIndex | None:
    """The in-process term index of `db` (embedded store), or None (the store's index)."""
    state = state_of(db)
    return state.terms if state is not None else None
