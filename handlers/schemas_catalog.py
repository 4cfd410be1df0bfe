"""Response shapes of the catalogue, search, blog comments, plans and service documents
(they document and render the answers).

Open like every response schema (`handlers.schemas_out.OpenOut`).

- catalogue: `CreatorProfileOut`, `UserStatsOut`, `PublicModelOut`, `AnalysisOut`,
  `ModelSpecsOut`;
- search: `SearchPageOut`, `SuggestionsOut`;
- blog: `BlogCommentOut`;
- plans: `PlanOut`, `SubscriptionOut`, `PlansOut`;
- service: `StatusOut`, `DocumentOut`, `WebhookReceiptOut`.
"""
from __future__ import annotations

from marshmallow import fields

from handlers.schemas_out import OpenOut, UserBriefOut, UserOut


def _text() -> fields.String:
    return fields.String(allow_none=True)


def _count() -> fields.Integer:
    return fields.Integer(allow_none=True)


# --------------------------------------------------------------------------- catalogue

class UserStatsOut(OpenOut):
    """A user's public figures: ``{models_count, total_views, total_likes,
    total_downloads, total_sales, followers_count, following_count, rating}`` (and
    `user_id`, `username` on `GET /api/users/{ref}/stats`)."""

    user_id = fields.String()
    username = fields.String()
    models_count = fields.Integer()
    total_views = fields.Integer()
    total_likes = fields.Integer()
    total_downloads = fields.Integer()
    total_sales = fields.Integer()
    followers_count = fields.Integer()
    following_count = fields.Integer()
    rating = fields.Float(allow_none=True)


class CreatorProfileOut(UserOut):
    """A creator's public profile plus `stats`."""

    stats = fields.Nested(UserStatsOut)


class PublicModelOut(OpenOut):
    """The public viewer shape of a model: no private or moderation fields."""

    id = fields.String(required=True)
    title = fields.String()
    description = _text()
    category = _text()
    tags = fields.List(fields.String())
    price = fields.Float()
    is_free = fields.Boolean()
    creator = fields.Nested(UserBriefOut, allow_none=True)
    file_format = _text()
    file_formats = fields.List(fields.String())
    file_size = _count()
    poly_count = _count()
    vertex_count = _count()
    thumbnail_url = _text()
    preview_images = fields.List(fields.String())
    preview_url = _text()
    share_url = _text()
    likes = fields.Integer()
    views = fields.Integer()
    downloads = fields.Integer()
    rating = fields.Float(allow_none=True)
    rating_count = _count()
    comment_count = _count()
    file_url = _text()
    preview_status = _text()
    thumbnails = fields.Dict(allow_none=True)
    texture_resolution = _text()
    has_animations = fields.Boolean()
    has_rigging = fields.Boolean()
    has_materials = fields.Boolean()
    has_textures = fields.Boolean()
    created_at = _text()


class ModelOut(PublicModelOut):
    """A model as the catalogue, the creator and staff see it (`documents.catalog.render_model`):
    the public fields, its state, and — for its creator and staff only — the private fields
    (`file_key`, `file_id`, `analysis`, moderation details, a replacement file under review)."""

    creator_id = fields.String()
    status = fields.String(metadata={"enum": ["pending", "approved", "rejected"]})
    is_published = fields.Boolean()
    is_featured = fields.Boolean()
    sales_count = _count()
    thumbnail_auto = fields.Boolean()
    analyzed = fields.Boolean()
    approved_at = _text()
    updated_at = _text()
    file_key = _text()
    file_id = _text()
    analysis = fields.Dict(allow_none=True)
    approved_by = _text()
    rejection_reason = _text()
    rejected_at = _text()
    rejected_by = _text()
    pending_file = fields.Dict(allow_none=True)
    file_rejection_reason = _text()
    file_approved_by = _text()
    file_approved_at = _text()
    under_review = fields.List(fields.String(), allow_none=True)


class AnalysisOut(OpenOut):
    """``{file_format, file_size, analyzed, poly_count, vertex_count, has_animations,
    has_rigging, has_materials, has_textures, material_count, texture_count,
    animation_count, texture_resolution, bounds}``."""

    file_format = _text()
    file_size = _count()
    analyzed = fields.Boolean()
    poly_count = _count()
    vertex_count = _count()
    has_animations = fields.Boolean(allow_none=True)
    has_rigging = fields.Boolean(allow_none=True)
    has_materials = fields.Boolean(allow_none=True)
    has_textures = fields.Boolean(allow_none=True)
    material_count = _count()
    texture_count = _count()
    animation_count = _count()
    texture_resolution = _text()
    bounds = fields.Raw(allow_none=True)


class ModelSpecsOut(OpenOut):
    """The technical specs document of a model: formats, size, poly/vertex counts,
    features, bounds, category, tags, creator."""

    model_id = fields.String(required=True)
    title = _text()
    url = fields.String()
    creator = fields.Nested(UserBriefOut, allow_none=True)
    category = _text()
    tags = fields.List(fields.String())
    file_format = _text()
    file_formats = fields.List(fields.String())
    file_size = fields.Integer()
    file_size_mb = fields.Float()
    poly_count = _count()
    vertex_count = _count()
    texture_resolution = _text()
    has_materials = fields.Boolean()
    has_textures = fields.Boolean()
    has_animations = fields.Boolean()
    has_rigging = fields.Boolean()
    material_count = _count()
    texture_count = _count()
    analyzed = fields.Boolean(allow_none=True)
    animation_count = fields.Integer(allow_none=True)
    bounds = fields.List(fields.Raw(), allow_none=True)
    created_at = fields.String(allow_none=True)
    dimensions = fields.Dict(allow_none=True)
    generated_at = fields.String(allow_none=True)


# --------------------------------------------------------------------------- search

class SearchPageOut(OpenOut):
    """``{items, total, page, limit, pages, type, q}``: the items' shape follows `type`
    (model, creator, community or collection cards)."""

    items = fields.List(fields.Dict(), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    pages = fields.Integer(required=True)
    type = fields.String()
    q = _text()
    facets = fields.Dict(allow_none=True)


class SuggestionOut(OpenOut):
    """``{text, type, id?}``."""

    text = fields.String(required=True)
    type = fields.String(required=True)
    id = fields.String()


class SuggestionsOut(OpenOut):
    """``{items: [{text, type, id?}], q}``."""

    items = fields.List(fields.Nested(SuggestionOut), required=True)
    q = fields.String()


# --------------------------------------------------------------------------- blog

class BlogCommentOut(OpenOut):
    """``{id, post_id, author_id, author, content, parent_id, is_deleted, created_at,
    reply_count, replies}``."""

    id = fields.String(required=True)
    post_id = fields.String()
    author_id = _text()
    author = fields.Nested(UserBriefOut, allow_none=True)
    content = _text()
    parent_id = _text()
    is_deleted = fields.Boolean()
    created_at = _text()
    reply_count = fields.Integer()
    replies = fields.List(fields.Dict())


# --------------------------------------------------------------------------- plans

class PlanOut(OpenOut):
    """``{id, name, description, price, interval, features, limits}``."""

    id = fields.String(required=True)
    name = fields.String()
    description = _text()
    price = fields.Float()
    interval = _text()
    features = fields.List(fields.String())
    limits = fields.Dict()


class SubscriptionOut(OpenOut):
    """``{id, user_id, plan, status, amount, currency, current_period_start,
    current_period_end, has_access, canceled_at, ...}``."""

    id = fields.String(required=True)
    user_id = fields.String()
    plan = fields.String()
    status = fields.String()
    amount = fields.Float()
    currency = fields.String()
    current_period_start = _text()
    current_period_end = _text()
    has_access = fields.Boolean()
    canceled_at = _text()
    created_at = _text()
    next_renewal_at = fields.String(allow_none=True)
    payment_intent_id = fields.String(allow_none=True)
    provider = fields.String(allow_none=True)
    renewal_attempt = fields.Integer(allow_none=True)


class PlansOut(OpenOut):
    """``{items: [plan], current_subscription}`` (null when signed out or without one)."""

    items = fields.List(fields.Nested(PlanOut), required=True)
    current_subscription = fields.Nested(SubscriptionOut, allow_none=True)


# --------------------------------------------------------------------------- service

class StatusOut(OpenOut):
    """``{status: "ok"}``."""

    status = fields.String(required=True)


class DocumentOut(OpenOut):
    """A JSON document (OpenAPI or AsyncAPI) with its version and paths or channels."""

    openapi = fields.String()
    asyncapi = fields.String()
    info = fields.Dict()
    defaultContentType = fields.String()
    servers = fields.Raw()
    channels = fields.Dict()
    operations = fields.Dict()
    components = fields.Dict(allow_none=True)
    paths = fields.Dict(allow_none=True)
    tags = fields.List(fields.Dict(), allow_none=True)
    x_close_codes = fields.Dict(data_key="x-close-codes")


class WebhookReceiptOut(OpenOut):
    """``{received: true, outcome}`` (outcome "processed", "ignored", "duplicate", ...)."""

    received = fields.Boolean(required=True)
    outcome = fields.String()
