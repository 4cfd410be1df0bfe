"""Route lookup by the first two path segments (docs/architecture.md §3).

Tornado tries an Application's rules one by one, so a request for a route near the end of
the table pays one regex match per route before it (about forty for `/api/models/{id}`).
`RouteIndex` gives the same answer with fewer tries: a rule whose pattern starts with two
literal segments (``/api/models/...``, ``/ws/community/...``) can only match a path with those
two segments, so each such pair keeps its own list of candidates — its rules plus every rule
without such a head (``/healthz``, ``/files/(.*)``, the ``/api/.*`` catch-all) — in the
table's order. A path whose pair no rule names is tried against the rules without a head
only. The first matching rule wins, as in Tornado's own lookup.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from tornado.routing import PathMatches, Rule

# Two literal segments followed by "/", the end anchor or the end of the pattern.
LITERAL_HEAD = re.compile(r"^/([A-Za-z0-9_-]+)/([A-Za-z0-9_-]+)(?=/|\$|$)")


def path_head(path: str) -> tuple[str, str] | None:
    """The first two segments of a request path (``("api", "models")``), or None."""
    parts = path.split("/", 3)
    return (parts[1], parts[2]) if len(parts) >= 3 else None


def pattern_head(rule: Rule) -> tuple[str, str] | None:
    """The two literal leading segments of a path rule's pattern, or None when the pattern
    does not start with two literal segments (or the rule does not match on the path)."""
    if not isinstance(rule.matcher, PathMatches):
        return None
    found = LITERAL_HEAD.match(rule.matcher.regex.pattern)
    return (found[1], found[2]) if found else None


class RouteIndex:
    """The rules of a route table grouped by `pattern_head` (module docstring)."""

    def __init__(self, rules: Sequence[Rule]):
        headed: dict[tuple[str, str], list[int]] = {}
        headless: list[int] = []
        for position, rule in enumerate(rules):
            head = pattern_head(rule)
            if head is None:
                headless.append(position)
            else:
                headed.setdefault(head, []).append(position)
        self.by_head = {head: [rules[i] for i in sorted(positions + headless)]
                        for head, positions in headed.items()}
        self.headless = [rules[i] for i in headless]

    def candidates(self, path: str) -> list[Rule]:
        """The rules that may match `path`, in table order."""
        return self.by_head.get(path_head(path), self.headless)
