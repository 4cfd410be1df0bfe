"""Public site content and the upload helpers (seed 001 §2, §6; seed 004 homepage, help, docs).

- `GET /api/testimonials` — approved testimonials (`limit`, `featured`), public.
- `GET /api/stats/platform` — platform counts read from the store, public.
- `GET /api/stats/homepage` — stats, featured and trending models, top creators,
  testimonials and the slides shown now, public.
- `GET /api/help/categories`, `GET /api/help/faqs?category=&search=` — help centre, public.
- `GET /api/docs/sections`, `GET /api/docs/{section}` — documentation, public (404 unknown).
- `POST /api/newsletter/subscribe` — public; 201 for a new address, 200 when already there.
- `POST /api/ai/generate-tags` — suggested tags from a RULE-BASED keyword tagger (not an ML
  model, see `documents.tagger.suggest_tags`), optionally using an uploaded file's analysis.
- `POST /api/models/safety-scan` — real checks of an uploaded model or image (owner only).

`GET /api/creators/top` belongs to `handlers.analytics`; the homepage reuses its function.
"""
from __future__ import annotations

import asyncio
import json
import struct
import uuid
from pathlib import Path

from marshmallow import fields, pre_load, validate

from documents import analytics, catalog, categories, content, help_topics, homepage, model_listing, tagger
from documents import files as files_db
from documents.common import render
from documents.errors import Forbidden, Invalid
from handlers.base import ApiHandler, ApiSchema, body, public, query, responds
from handlers.schemas import drop_blanks, strip_strings, testimonial_out
from handlers.schemas_content import (
    DocsSectionOut,
    FaqListOut,
    HelpCategoryOut,
    HomepageOut,
    NewsletterOut,
    PlatformStatsOut,
    TestimonialOut,
)
from storage import store
from storage.validate import IMAGE_FORMATS, MODEL_FORMATS, sniff

HOMEPAGE_MODELS = 8
HOMEPAGE_CREATORS = 6
HOMEPAGE_TESTIMONIALS = 6



# --------------------------------------------------------------------------- schemas

class TestimonialsQuery(ApiSchema):
    limit = fields.Integer(load_default=12, validate=validate.Range(min=1, max=50))
    featured = fields.Boolean()


class FaqQuery(ApiSchema):
    category = fields.String(validate=validate.OneOf([c["slug"] for c in help_topics.HELP_CATEGORIES]))
    search = fields.String(validate=validate.Length(max=100))

    @pre_load
    def _blank(self, data, **kwargs):
        return drop_blanks(strip_strings(data))


class NewsletterBody(ApiSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))

    @pre_load
    def _clean(self, data, **kwargs):
        return strip_strings(data)


class TagsBody(ApiSchema):
    """Input of the tagger: the model's title (required), description, category, file_id."""

    title = fields.String(required=True, validate=validate.Length(min=1, max=120))
    description = fields.String(allow_none=True, validate=validate.Length(max=10_000))
    category = fields.String(allow_none=True, validate=validate.Length(max=60))
    file_id = fields.String(allow_none=True, validate=validate.Length(max=64))

    @pre_load
    def _clean(self, data, **kwargs):
        return strip_strings(data)


class FileIdBody(ApiSchema):
    file_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class TagsOut(ApiSchema):
    tags = fields.List(fields.String())
    reasons = fields.Dict(keys=fields.String(), values=fields.String())
    method = fields.String()


class ScanCheckOut(ApiSchema):
    name = fields.String()
    passed = fields.Boolean()
    detail = fields.String()


class ScanOut(ApiSchema):
    file_id = fields.String()
    safe = fields.Boolean()
    checks = fields.List(fields.Nested(ScanCheckOut))


# --------------------------------------------------------------------------- public content

class TestimonialsHandler(ApiHandler):
    @public
    @query(TestimonialsQuery)
    @responds(TestimonialOut, items=True)
    async def get(self) -> None:
        """Approved testimonials, featured first, then by `order` (seed 001 §2):
        ``{"items": [{id, author_name, author_title, avatar_url, content, rating, ...}]}``, each
        also with seed 004's `author`, `company`, `text`, `featured`, `verified`
        (docs/api-contract.md §3)."""
        docs = await homepage.list_public_testimonials(self.db, self.query["limit"],
                                                       self.query.get("featured"))
        self.write_json({"items": [testimonial_out(render(d)) for d in docs]})


class PlatformStatsHandler(ApiHandler):
    @public
    @responds(PlatformStatsOut)
    async def get(self) -> None:
        """Platform counts (seed 001 §2): ``{total_users, total_creators, total_models,
        total_downloads, total_communities, total_categories}``, read from the store."""
        self.write_json(await content.platform_stats(self.db))


class HomepageStatsHandler(ApiHandler):
    @public
    @responds(HomepageOut)
    async def get(self) -> None:
        """Everything the landing page shows (seed 004 `GET /api/stats/homepage`): ``{stats,
        featured_models, trending_models, top_creators, testimonials, slides}``."""
        db, viewer = self.db, self.current_user
        featured = await model_listing.list_featured(db, HOMEPAGE_MODELS)
        trending = await content.trending_models(db, HOMEPAGE_MODELS)
        testimonials = await homepage.list_public_testimonials(db, HOMEPAGE_TESTIMONIALS)
        self.write_json({
            "stats": await content.platform_stats(db),
            "featured_models": await catalog.render_models(db, featured, viewer),
            "trending_models": await catalog.render_models(db, trending, viewer),
            "top_creators": await analytics.top_creators(db, HOMEPAGE_CREATORS),
            "testimonials": [testimonial_out(render(d)) for d in testimonials],
            "slides": [render(s) for s in await homepage.active_slides(db)],
        })


class HelpCategoriesHandler(ApiHandler):
    @public
    @responds(HelpCategoryOut, items=True)
    async def get(self) -> None:
        """Help categories (seed 004 Help): ``{"items": [{slug, name, icon, description,
        order, faq_count}]}``."""
        self.write_json({"items": help_topics.help_categories()})


class HelpFaqsHandler(ApiHandler):
    @public
    @query(FaqQuery)
    @responds(FaqListOut)
    async def get(self) -> None:
        """FAQs of `category` (a help category slug; 422 for another) matching `search` in
        question or answer: ``{"items": [{id, category, question, answer, order}], "total"}``."""
        items = help_topics.help_faqs(self.query.get("category"), self.query.get("search"))
        self.write_json({"items": items, "total": len(items)})


class DocsSectionsHandler(ApiHandler):
    @public
    @responds(DocsSectionOut, items=True)
    async def get(self) -> None:
        """Docs sections (seed 004 Docs): ``{"items": [{slug, title, summary, order}]}``."""
        self.write_json({"items": help_topics.docs_sections()})


class DocsSectionHandler(ApiHandler):
    @public
    @responds(DocsSectionOut)
    async def get(self, section: str) -> None:
        """One docs section with its markdown `content`; 404 for an unknown section."""
        self.write_json(help_topics.docs_section(section))


class NewsletterHandler(ApiHandler):
    @public
    @body(NewsletterBody)
    @responds(NewsletterOut, status=201)
    async def post(self) -> None:
        """Subscribe an email to the newsletter (seed 001 §2). 201 ``{id, email, status,
        created_at}`` for a new address; 200 with the same shape when it was already there
        (idempotent, re-subscribes an address that had left)."""
        doc, created = await content.subscribe(self.db, self.body["email"])
        self.write_json(render(doc), 201 if created else 200)


# --------------------------------------------------------------------------- tags

class GenerateTagsHandler(ApiHandler):
    @body(TagsBody)
    @responds(TagsOut)
    async def post(self) -> None:
        """Suggested tags for a model being uploaded (seed 001 §6 "Get AI tags").

        A transparent, deterministic RULE-BASED keyword tagger, not a machine-learning model:
        see `documents.tagger.suggest_tags`. With `file_id` (a model file the caller owns,
        or any as staff) the stored analysis adds animated / rigged / low-poly / high-poly /
        pbr and the format. 422 for an unknown category or a non-model file; 404 for an
        unknown file; 403 for another user's file.
        """
        data = self.body
        category = await self._category(data.get("category"))
        analysis = await self._analysis(data.get("file_id"))
        self.write_json(tagger.suggest_tags(data["title"], data.get("description"), category,
                                            analysis))

    async def _category(self, ref: str | None) -> str | None:
        if not ref:
            return None
        found = await categories.find_by_name_or_slug(self.db, ref)
        if found is None:
            raise Invalid({"category": ["Unknown category."]})
        return found["name"]

    async def _analysis(self, file_id: str | None) -> dict | None:
        if not file_id:
            return None
        record = await files_db.get_owned(self.db, file_id, self.require_user())
        if record["kind"] != "model":
            raise Invalid({"file_id": ["Not a model file."]})
        return {**(record.get("analysis") or {}), "format": record["format"]}


# --------------------------------------------------------------------------- safety scan

SCANNABLE = {"model": MODEL_FORMATS, "image": IMAGE_FORMATS, "thumbnail": IMAGE_FORMATS,
             "avatar": IMAGE_FORMATS}
MAX_SANE_POLY_COUNT = 10_000_000
MAX_GLTF_JSON_BYTES = 64 * 1024 * 1024
UNSAFE_URI_PREFIXES = ("http:", "https:", "file:", "ftp:", "//")


def _check(name: str, passed: bool, detail: str) -> dict:
    return {"name": name, "passed": bool(passed), "detail": detail}


def gltf_document(path: Path, file_format: str) -> dict:
    """The glTF JSON of a GLB (its first chunk) or GLTF file; ValueError when unreadable."""
    with open(path, "rb") as handle:
        if file_format == "GLTF":
            raw = handle.read(MAX_GLTF_JSON_BYTES + 1)
        else:
            magic, _version, _length = struct.unpack("<4sII", handle.read(12))
            chunk_length, chunk_type = struct.unpack("<II", handle.read(8))
            if magic != b"glTF" or chunk_type != 0x4E4F534A:
                raise ValueError("no JSON chunk")
            raw = handle.read(min(chunk_length, MAX_GLTF_JSON_BYTES + 1))
    if len(raw) > MAX_GLTF_JSON_BYTES:
        raise ValueError("JSON too large")
    doc = json.loads(raw.decode("utf-8-sig"))
    if not isinstance(doc, dict):
        raise TypeError("not a glTF document")
    return doc


def unsafe_uris(gltf: dict) -> list[str]:
    """The `uri`s of buffers and images that point outside the file: http(s), file:, ftp:,
    protocol-relative, absolute paths or parent-directory paths (embedded `data:` URIs and
    plain relative names are fine)."""
    found = []
    for entry in list(gltf.get("buffers") or []) + list(gltf.get("images") or []):
        uri = entry.get("uri") if isinstance(entry, dict) else None
        if not isinstance(uri, str):
            continue
        lowered = uri.strip().lower()
        if lowered.startswith(UNSAFE_URI_PREFIXES) or lowered.startswith("/") or ".." in lowered:
            found.append(uri[:200])
    return found


def inspect_file(path: Path, file_format: str) -> dict:
    """Blocking facts about a downloaded file: sniffed format, size, unsafe glTF URIs."""
    facts = {"format": sniff(path), "size": path.stat().st_size, "uris": None, "error": None}
    if file_format in ("GLB", "GLTF"):
        try:
            facts["uris"] = unsafe_uris(gltf_document(path, file_format))
        except (ValueError, TypeError, struct.error) as exc:
            facts["error"] = type(exc).__name__
    return facts


def _size_limit(settings, kind: str) -> int:
    return {"model": settings.max_model_bytes, "avatar": settings.max_avatar_bytes}.get(
        kind, settings.max_image_bytes)


def scan_checks(record: dict, facts: dict, settings) -> list[dict]:
    """The checks of a scan from the file record and the facts of its stored bytes."""
    kind, fmt = record["kind"], record["format"]
    checks = [_analysis_check(record)]
    sniffed = facts["format"]
    checks.append(_check("file_type", sniffed == fmt and sniffed in SCANNABLE[kind],
                         f"content is {sniffed or 'unrecognised'}, recorded as {fmt}"))
    limit = _size_limit(settings, kind)
    checks.append(_check("size", facts["size"] == record["size"] and facts["size"] <= limit,
                         f"{facts['size']} bytes stored, {record['size']} recorded, "
                         f"limit {limit}"))
    if fmt in ("GLB", "GLTF"):
        checks.append(_uri_check(facts))
    if kind == "model":
        checks.append(_poly_check(record.get("analysis") or {}))
    return checks


def _analysis_check(record: dict) -> dict:
    if record["kind"] != "model":
        ok = bool(record.get("width") and record.get("height"))
        return _check("analysis", ok, f"{record.get('width')}x{record.get('height')} px"
                      if ok else "image dimensions were not recorded")
    analysis = record.get("analysis")
    if not isinstance(analysis, dict):
        return _check("analysis", False, "no stored analysis")
    if not analysis.get("analyzed"):
        return _check("analysis", True, f"stored without analysis ({record['format']})")
    return _check("analysis", True, "stored analysis present")


def _uri_check(facts: dict) -> dict:
    if facts["error"]:
        return _check("external_uris", False, f"glTF JSON unreadable ({facts['error']})")
    uris = facts["uris"] or []
    return _check("external_uris", not uris,
                  f"external URIs: {', '.join(uris)}" if uris else "no external URIs")


def _poly_check(analysis: dict) -> dict:
    if not analysis.get("analyzed"):
        return _check("poly_count", True, "not analysed; skipped")
    polys = analysis.get("poly_count") or 0
    ok = 0 < polys <= MAX_SANE_POLY_COUNT
    return _check("poly_count", ok, f"{polys} faces (allowed 1..{MAX_SANE_POLY_COUNT})")


async def scan_file(services, record: dict) -> list[dict]:
    """Download the stored object to a temp file, inspect it in a thread, and return the
    checks; a missing object is one failed "stored" check. The temp file is always removed."""
    path = store.tmp_dir(services.settings) / f"scan-{uuid.uuid4().hex}"
    loop = asyncio.get_running_loop()
    try:
        try:
            await services.storage.download_to(record["key"], path)
        except FileNotFoundError:
            return [_check("stored", False, "the file is missing from storage")]
        facts = await loop.run_in_executor(None, inspect_file, path, record["format"])
    finally:
        await loop.run_in_executor(None, lambda: path.unlink(missing_ok=True))
    return scan_checks(record, facts, services.settings)


class SafetyScanHandler(ApiHandler):
    @body(FileIdBody)
    @responds(ScanOut)
    async def post(self) -> None:
        """Safety scan of an uploaded model or image (seed 001 §6 "Safety scan"), owner only.

        Checks, each ``{name, passed, detail}``: `analysis` (the stored analysis, or image
        dimensions, exists), `file_type` (the stored bytes' magic matches the recorded
        format), `size` (stored size matches and is within the upload limit),
        `external_uris` (GLB/GLTF: no buffer or image URI pointing at http(s), file:, ftp:,
        absolute or parent paths), `poly_count` (models: 1..10,000,000 faces when analysed).
        200 ``{file_id, safe, checks}``; 404 unknown file, 403 another user's, 422 other kinds.
        """
        record = await files_db.get(self.db, self.body["file_id"])
        if record["owner_id"] != self.require_user()["_id"]:
            raise Forbidden("This file belongs to another user")
        if record["kind"] not in SCANNABLE:
            raise Invalid({"file_id": ["Only model and image files can be scanned."]})
        checks = await scan_file(self.services, record)
        self.write_json({"file_id": str(record["_id"]),
                         "safe": all(c["passed"] for c in checks), "checks": checks})


routes = [
    (r"/api/testimonials", TestimonialsHandler),
    (r"/api/stats/platform", PlatformStatsHandler),
    (r"/api/stats/homepage", HomepageStatsHandler),
    (r"/api/help/categories", HelpCategoriesHandler),
    (r"/api/help/faqs", HelpFaqsHandler),
    (r"/api/docs/sections", DocsSectionsHandler),
    (r"/api/docs/([^/]+)", DocsSectionHandler),
    (r"/api/newsletter/subscribe", NewsletterHandler),
    (r"/api/ai/generate-tags", GenerateTagsHandler),
    (r"/api/models/safety-scan", SafetyScanHandler),
]
