"""The relevance set of the marketplace search over the fixtures: queries a buyer types and
the models that must come first (shared by tests/test_search_relevance.py and
bench/search_bench.py).

Metrics (computed by `precision_at` / `recall_at`): with R the models that must come first
and the first k results shown, precision@k = |shown ∩ R| / min(k, |R|) and recall@k =
|shown ∩ R| / min(k, |R|) over the first 10 — both capped by |R| so that a query with one
right answer is judged on whether that answer is shown, not on the page size. A query with
no right answer (R empty) scores 1 when nothing is shown and 0 otherwise.
"""
from __future__ import annotations


def m(n: int) -> str:
    """The id of fixture model number `n`."""
    return f"6520000000000000000000{n:02d}"


CASEY = [m(n) for n in (2, 4, 6, 8, 10, 12, 14, 16, 19, 21, 23, 25, 27, 29, 31, 33, 35, 37, 39)]

# (what is typed, what it exercises, the ids that must come first)
QUERIES: list[tuple[str, str, list[str]]] = [
    ("stone arch", "title words", [m(11)]),
    ("arch stone", "word order", [m(11)]),
    ("Stone Arch", "case", [m(11)]),
    ("stone arches", "plural", [m(11)]),
    ("arches", "plural alone", [m(11)]),
    ("archh", "typo, 5 letters", [m(11)]),
    ("lighthouse", "title word", [m(9)]),
    ("lighthuose", "typo, swapped letters", [m(9)]),
    ("lightouse", "typo, missing letter", [m(9)]),
    ("chairs", "plural", [m(30)]),
    ("chiar", "typo", [m(30)]),
    ("dining chair", "title", [m(30)]),
    ("chair dining", "word order", [m(30)]),
    ("sailboats", "plural", [m(7)]),
    ("sailbaot", "typo", [m(7)]),
    ("wooden", "title word of several", [m(7), m(12), m(13)]),
    ("robots", "plural", [m(1)]),
    ("robo", "prefix", [m(1)]),
    ("pengu", "prefix", [m(27)]),
    ("lowpoly", "joined compound tag", [m(1), m(29), m(4), m(22)]),
    ("low poly cat", "compound and word", [m(29)]),
    ("snowman", "title", [m(2)]),
    ("wizzard", "typo", [m(4)]),
    ("wizard hat", "title and description", [m(4)]),
    ("astronaut", "tag only", [m(3)]),
    ("viking", "tag only", [m(19), m(20)]),
    ("printable", "tag only", [m(12), m(14), m(21), m(33), m(37)]),
    ("medieval", "tag only", [m(11), m(12), m(18), m(20)]),
    ("spaceships", "tag plural", [m(34), m(35)]),
    ("sci-fi", "category and tag", [m(3), m(34), m(35), m(36)]),
    ("furniture", "category", [m(30), m(31), m(32), m(33)]),
    ("furnture", "category typo", [m(30), m(31), m(32), m(33)]),
    ("vehicles", "category", [m(5), m(6), m(7), m(8)]),
    ("casey", "creator name", CASEY),
    ("casey wizard", "creator and title", [m(4)]),
    ("chris robot", "creator and title", [m(1)]),
    ("cargo truck", "title", [m(6)]),
    ("truck cargo", "word order", [m(6)]),
    ("hot air balloon", "three words", [m(8)]),
    ("balloons", "plural", [m(8)]),
    ("treasure chest", "title", [m(16)]),
    ("chess pawn", "a pending model with the same words stays out", [m(14)]),
    ("rubber duck", "title", [m(26)]),
    ("duck rubber", "word order", [m(26)]),
    ("mushrooms", "plural", [m(23)]),
    ("coffee mugs", "plural", [m(17)]),
    ("spiral cube", "singular of a plural title", [m(39)]),
    ("bookshelves", "irregular plural (typo distance)", [m(32)]),
    ("knights sword", "possessive", [m(18)]),
    ("battle axes", "plural", [m(19)]),
    ("goldfish", "title", [m(28)]),
    ("geodesic sculpture", "title", [m(37)]),
    ("rocket", "a pending model with the word stays out", [m(34)]),
    ("laser blaster", "only a pending model: no match", []),
    ("crystal", "only a pending model: no match", []),
    ("copied crate", "only a rejected model: no match", []),
    ("xylophone", "no match", []),
    ("quantum zebra", "no match", []),
    ("stone zebra", "one word matches nothing: no match", []),
]


def precision_at(shown: list[str], relevant: list[str], k: int = 5) -> float:
    """precision@k as defined in the module docstring."""
    if not relevant:
        return 1.0 if not shown else 0.0
    return len(set(shown[:k]) & set(relevant)) / min(k, len(relevant))


def recall_at(shown: list[str], relevant: list[str], k: int = 10) -> float:
    """recall@k as defined in the module docstring."""
    if not relevant:
        return 1.0 if not shown else 0.0
    return len(set(shown[:k]) & set(relevant)) / min(k, len(relevant))
