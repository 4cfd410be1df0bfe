"""Help and docs (seed 004 help and docs): help categories, FAQs and docs sections.

The texts are static data in `documents/help_topics.json`, read once at import::

    {"categories": [{slug, name, icon, order, description}],
     "faqs": [{id, category (a category slug), order, question, answer}],
     "docs_sections": [{slug, title, order, summary, content (markdown)}]}

They need no collection and no seeding; they are tuples of plain dicts, never mutated:
readers get copies.
"""
from __future__ import annotations

import json
from pathlib import Path

from documents.errors import NotFound

_TOPICS = json.loads(Path(__file__).with_name("help_topics.json").read_text(encoding="utf-8"))
HELP_CATEGORIES = tuple(_TOPICS["categories"])
HELP_FAQS = tuple(_TOPICS["faqs"])
DOCS_SECTIONS = tuple(_TOPICS["docs_sections"])


def help_categories() -> list[dict]:
    """The help categories in display order, each with its `faq_count`."""
    counts = {c["slug"]: 0 for c in HELP_CATEGORIES}
    for faq in HELP_FAQS:
        counts[faq["category"]] += 1
    return [{**c, "faq_count": counts[c["slug"]]} for c in HELP_CATEGORIES]


def help_faqs(category: str | None = None, search: str | None = None) -> list[dict]:
    """FAQs (copies) of `category` (a slug) whose question or answer contains `search`
    (case-insensitive), by category order then their own order."""
    rank = {c["slug"]: c["order"] for c in HELP_CATEGORIES}
    needle = (search or "").strip().lower()
    found = [dict(f) for f in HELP_FAQS
             if (not category or f["category"] == category)
             and (not needle or needle in f["question"].lower() or needle in f["answer"].lower())]
    return sorted(found, key=lambda f: (rank[f["category"]], f["order"]))


def docs_sections() -> list[dict]:
    """The docs sections without their content: ``[{slug, title, summary, order}]``."""
    return [{k: v for k, v in s.items() if k != "content"} for s in DOCS_SECTIONS]


def docs_section(slug: str) -> dict:
    """One docs section with its markdown `content`; NotFound (404) for an unknown slug."""
    for section in DOCS_SECTIONS:
        if section["slug"] == slug:
            return dict(section)
    raise NotFound("Docs section not found")
