"""Global search: `GET /api/search` (seed 001 §17, seed 004 "Search").

`?q=&type=models|users|communities|courses&page=&limit=` plus the advanced filters of the
chosen type (seed 001 §17); the rules of each type live in `documents.search`.

- `type` defaults to "models"; an unknown type is 422.
- `q` is 0–100 characters, matched by words (models: relevance search, `documents.model_search`;
  the other types: literally, regex-escaped). An empty `q` is allowed when
  at least one filter of the type is given (browsing `/search` by filters alone); with
  neither it is 422 on `q`.
- A filter that belongs to another type (e.g. `skills` with `type=models`) is 422 on that
  field; an unknown parameter is ignored (docs/architecture.md §3). `sort` is a models filter (the keys of
  `GET /api/models`); the other types have a fixed order.
- Ranges take `min_*`/`max_*` or the seed's `*_range` form ("10-50"), as on `GET /api/models`.

Answer: ``{items, total, page, limit, pages, type, q}`` (models with `facets=true`: also
``facets``). `GET /api/search/suggest?q=` completes what is being typed (`SuggestHandler`).
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, post_load, pre_load, validate

from documents import search, search_engine, users
from documents.search import COMMUNITY_STATUSES, COURSE_DIFFICULTIES, TYPES
from handlers.base import ApiHandler, ApiSchema, public, query, responds
from handlers.models import ModelListQuery, _range_text
from handlers.schemas_catalog import SearchPageOut, SuggestionsOut

COMMON = frozenset({"q", "type", "page", "limit"})
TYPE_FILTERS = {
    "models": frozenset({"category", "tags", "min_price", "max_price", "price_range", "is_free",
                         "has_animations", "has_rigging", "min_poly_count", "max_poly_count",
                         "poly_count_range", "sort", "facets"}),
    "users": frozenset({"user_type", "is_verified", "country", "skills"}),
    "communities": frozenset({"category", "min_member_count", "max_member_count",
                              "member_count_range", "status"}),
    "courses": frozenset({"difficulty", "category", "is_free"}),
}


class SearchQuery(ModelListQuery):
    """`q`, `type`, pagination and every type's filters (seed 001 §17). The models filters
    are those of `GET /api/models` (inherited); a filter of another type is 422."""

    class Meta(ModelListQuery.Meta):
        exclude = ("search", "creator")

    q = fields.String(load_default="", validate=validate.Length(max=100))
    type = fields.String(load_default="models", validate=validate.OneOf(TYPES))
    user_type = fields.String(validate=validate.OneOf(users.USER_TYPES))
    is_verified = fields.Boolean()
    country = fields.String(validate=validate.Length(min=1, max=60))
    skills = fields.List(fields.String(validate=validate.Length(min=1, max=40)),
                         validate=validate.Length(max=20))
    min_member_count = fields.Integer(validate=validate.Range(min=0))
    max_member_count = fields.Integer(validate=validate.Range(min=0))
    member_count_range = fields.String(validate=validate.Length(max=40))
    status = fields.String(validate=validate.OneOf(COMMUNITY_STATUSES))
    difficulty = fields.String(validate=validate.OneOf(COURSE_DIFFICULTIES))

    @pre_load
    def _filters_of_the_type(self, data, **kwargs):
        """Reject filters of another type; require `q` or a filter."""
        if not isinstance(data, dict):
            return data
        type_ = data.get("type", "models")
        if type_ not in TYPE_FILTERS:
            return data     # the OneOf validator reports it
        errors = {name: [f"Not a filter of type {type_}"]
                  for name in data if name not in COMMON and name in self.fields
                  and name not in TYPE_FILTERS[type_]}
        if errors:
            raise ValidationError(errors)
        if isinstance(data.get("q"), str):
            data = {**data, "q": data["q"].strip()}
        if not data.get("q") and not set(data) & set(self.fields) - COMMON:
            raise ValidationError("Give a search query or a filter", "q")
        return data

    @post_load
    def _member_count_range(self, data, **kwargs):
        if "member_count_range" in data:
            low, high = _range_text(data, "member_count_range", int)
            data.setdefault("min_member_count", low)
            data.setdefault("max_member_count", high)
        low, high = data.get("min_member_count"), data.get("max_member_count")
        if low is not None and high is not None and low > high:
            raise ValidationError("min_member_count is above max_member_count",
                                  "min_member_count")
        return data


class SearchHandler(ApiHandler):
    @public
    @query(SearchQuery)
    @responds(SearchPageOut)
    async def get(self) -> None:
        """One page of search results of one type (module docstring):
        ``{items, total, page, limit, pages, type, q}``. 422 for an unknown type, a filter of
        another type, a bad range; 403 for a community status only staff may see."""
        args = dict(self.query)
        page, limit, type_, q = (args.pop(k) for k in ("page", "limit", "type", "q"))
        items, meta, extra = await search.search(self.db, type_, q, args, page=page,
                                                  limit=limit, viewer=self.current_user)
        self.write_page(items, meta, type=type_, q=q, **extra)


class SuggestQuery(ApiSchema):
    """`q` (0–100 characters; nothing to complete gives no items) and `limit` 1..10."""

    q = fields.String(load_default="", validate=validate.Length(max=100))
    limit = fields.Integer(load_default=search_engine.SUGGEST_LIMIT,
                           validate=validate.Range(min=1, max=search_engine.SUGGEST_LIMIT))


class SuggestHandler(ApiHandler):
    @public
    @query(SuggestQuery)
    @responds(SuggestionsOut)
    async def get(self) -> None:
        """Completions for the search box as one types, up to 10.

        ``{items: [{text, type, id?}], q}``,
        up to 10 — titles of public models (`type` "title", with the model `id`), then
        tags, categories and creator names of public models ("tag", "category",
        "creator"), most used first (`documents.search_engine.suggest`). 422 for a `q`
        over 100 characters or a bad `limit`."""
        q = self.query["q"]
        items = await search_engine.suggest(self.db, "models", q, limit=self.query["limit"])
        self.write_json({"items": items, "q": q})


routes = [
    (r"/api/search", SearchHandler),
    (r"/api/search/suggest", SuggestHandler),
]
