"""Text normalization shared by the search index and the search queries (README "Search").

Both sides turn text into the same terms, so a query word matches an indexed word whatever
its case, accents, plural or verb form:

- lower-case, accents folded (NFKD, combining marks dropped: "Café" → "cafe");
- words are runs of letters and digits (any script); everything else separates words, so
  regex metacharacters and punctuation never reach a query;
- a hyphenated or dotted compound also gives its joined form ("low-poly" → low, poly,
  lowpoly), so "lowpoly" finds the tag "low-poly";
- common English stop words are dropped (unless a text has nothing else);
- each word is stemmed with the Snowball English stemmer ("arches" → "arch", "wooden" →
  "wooden", "printing" → "print").
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

MAX_QUERY_WORDS = 12
WORD = re.compile(r"[^\W_]+")
COMPOUND = re.compile(r"[^\W_]+(?:[-.'][^\W_]+)+")
STOP_WORDS = frozenset(
    "a an and are as at be by for from in into is it its of on or the this to with".split())

_stemmer = snowballstemmer.stemmer("english")


def fold(text: str) -> str:
    """`text` lower-cased with accents removed (NFKD minus combining marks)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """The Snowball English stem of a folded word."""
    return _stemmer.stemWord(word)


def words(text: str | None) -> list[str]:
    """The folded words of `text` in order, joined compounds after their parts, stop words
    dropped unless nothing else is left. Not stemmed."""
    if not text:
        return []
    folded = fold(text)
    out = WORD.findall(folded)
    out += [re.sub(r"[-.']", "", c) for c in COMPOUND.findall(folded)]
    kept = [w for w in out if w not in STOP_WORDS]
    return kept or out


def terms(text: str | None) -> list[str]:
    """The distinct stemmed terms of `text`, in first-seen order."""
    return list(dict.fromkeys(stem(w) for w in words(text)))


def query_words(text: str | None) -> list[tuple[str, str]]:
    """The (word, stem) pairs of a search query, at most MAX_QUERY_WORDS, in order, without
    repeats. A compound typed with a hyphen counts as its parts ("low-poly": low AND poly);
    typed joined ("lowpoly") it matches the joined form indexed beside the parts."""
    if not text:
        return []
    folded = fold(text)
    out = WORD.findall(folded)
    kept = [w for w in out if w not in STOP_WORDS] or out
    pairs = list(dict.fromkeys((w, stem(w)) for w in kept))
    return pairs[:MAX_QUERY_WORDS]


def key(text: str | None) -> str:
    """A phrase's lookup key for suggestions: folded, words joined by single spaces."""
    return " ".join(WORD.findall(fold(text or "")))
