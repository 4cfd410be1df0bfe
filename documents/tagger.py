"""The rule-based tagger behind "Get AI tags" (seed 001 §6): suggested tags for a model from
its title, description, category and stored file analysis.

It is a keyword tagger, not a learned model: words (and adjacent word pairs) matched against
a fixed vocabulary of 3D terms (`TAG_VOCABULARY`), plus the category's slug and facts of the
file analysis (animated, rigged, low-poly / high-poly by face count, PBR, format). The same
input always gives the same tags, each with the reason it was suggested.
"""
from __future__ import annotations

import re
from itertools import pairwise

from documents import catalog, categories

STOP_WORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "into",
    "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "with", "without", "very",
    "my", "your", "our", "their", "made", "make", "new", "high", "low", "quality", "model",
    "models", "3d", "file", "files", "ready", "use", "used", "using"))


# Word (or hyphenated pair) → tag. A rule-based vocabulary of 3D terms, not a learned model.
TAG_VOCABULARY = {
    **{w: "character" for w in ("character", "characters", "hero", "npc", "humanoid", "human",
                                "person", "avatar")},
    **{w: "vehicle" for w in ("vehicle", "vehicles", "car", "cars", "truck", "bike",
                              "motorcycle", "tank", "spaceship", "ship", "boat", "aircraft",
                              "plane")},
    **{w: "weapon" for w in ("weapon", "weapons", "sword", "axe", "gun", "rifle", "pistol",
                             "bow", "dagger", "spear", "shield")},
    **{w: "architecture" for w in ("building", "buildings", "house", "architecture", "tower",
                                   "castle", "interior", "room")},
    **{w: "nature" for w in ("tree", "trees", "plant", "plants", "rock", "rocks", "flower",
                             "grass", "nature", "forest")},
    **{w: "animal" for w in ("animal", "animals", "dog", "cat", "horse", "bird", "dragon",
                             "creature", "fish")},
    **{w: "furniture" for w in ("furniture", "chair", "table", "sofa", "desk", "bed", "lamp",
                                "shelf")},
    **{w: "prop" for w in ("prop", "props", "mug", "cup", "bottle", "barrel", "crate", "box")},
    **{w: "sci-fi" for w in ("sci-fi", "scifi", "futuristic", "cyberpunk", "space", "robot",
                             "mech")},
    **{w: "fantasy" for w in ("fantasy", "magic", "medieval", "elf", "orc", "wizard")},
    **{w: "low-poly" for w in ("low-poly", "lowpoly")},
    **{w: "high-poly" for w in ("high-poly", "highpoly")},
    **{w: "stylized" for w in ("stylized", "stylised", "cartoon", "toon")},
    **{w: "realistic" for w in ("realistic", "photorealistic", "photoscan", "scan", "scanned")},
    **{w: "game-ready" for w in ("game-ready", "gameready", "game", "games", "unity", "unreal")},
    **{w: "pbr" for w in ("pbr",)},
    **{w: "animated" for w in ("animated", "animation", "animations")},
    **{w: "rigged" for w in ("rigged", "rig", "rigging", "skinned")},
    **{w: "3d-print" for w in ("printable", "3d-print", "print", "printing")},
    **{w: "chess" for w in ("chess", "pawn", "knight", "rook", "bishop")},
}


LOW_POLY_BELOW = 5_000


HIGH_POLY_ABOVE = 100_000


MAX_SUGGESTED = 20


TOKEN_RE = re.compile(r"[a-z0-9]+")


TAGGER_METHOD = ("rule-based keyword tagger (not a machine-learning model): title and "
                 "description words matched against a fixed 3D vocabulary, plus the category "
                 "and facts from the stored file analysis")


def _tokens(*texts: str | None) -> list[str]:
    """Lower-case words without stop-words, followed by each adjacent pair joined by '-'."""
    words = [w for text in texts for w in TOKEN_RE.findall((text or "").lower())]
    pairs = [f"{a}-{b}" for a, b in pairwise(words)]
    return [w for w in words if w not in STOP_WORDS] + pairs


def _analysis_tags(analysis: dict | None) -> list[tuple[str, str]]:
    if not analysis:
        return []
    polys = analysis.get("poly_count")
    rules = (("animated", analysis.get("has_animations"), "the file has animations"),
             ("rigged", analysis.get("has_rigging"), "the file has a skin (rig)"),
             ("low-poly", polys is not None and polys < LOW_POLY_BELOW,
              f"{polys} faces (< {LOW_POLY_BELOW})"),
             ("high-poly", polys is not None and polys > HIGH_POLY_ABOVE,
              f"{polys} faces (> {HIGH_POLY_ABOVE})"),
             ("pbr", analysis.get("has_materials") and analysis.get("has_textures"),
              "the file has materials and textures"))
    out = [(tag, reason) for tag, hit, reason in rules if hit]
    if analysis.get("format"):
        out.append((str(analysis["format"]).lower(), "the file format"))
    return out


def suggest_tags(title: str, description: str | None, category: str | None,
                 analysis: dict | None = None) -> dict:
    """Suggested tags for a model (seed 001 §6 "Get AI tags"), deterministic:

    1. vocabulary matches of the title and description words (stop-words dropped; adjacent
       word pairs also tried, so "low poly" → "low-poly"), in order of appearance;
    2. the category's slug;
    3. from `analysis` (the stored file analysis): "animated", "rigged", "low-poly"
       (< 5,000 faces), "high-poly" (> 100,000), "pbr" (materials and textures), the format;
       with a measured poly count, a "low-poly"/"high-poly" claimed by the text is dropped
       unless the count supports it.

    Returns ``{tags: [str] (≤ 20, unique), reasons: {tag: why}, method}``.
    """
    reasons: dict[str, str] = {}
    for token in _tokens(title, description):
        tag = TAG_VOCABULARY.get(token)
        if tag and tag not in reasons:
            reasons[tag] = f'keyword "{token}"'
    if analysis and analysis.get("poly_count") is not None:
        for claim in ("low-poly", "high-poly"):  # the measured face count decides
            reasons.pop(claim, None)
    if category:
        reasons.setdefault(categories.slugify(category), "the category")
    for tag, reason in _analysis_tags(analysis):
        reasons.setdefault(tag, reason)
    tags = [t[:catalog.MAX_TAG_LENGTH] for t in reasons][:MAX_SUGGESTED]
    return {"tags": tags, "reasons": {t: reasons[t] for t in tags}, "method": TAGGER_METHOD}
