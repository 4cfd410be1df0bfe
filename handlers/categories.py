"""Categories: the public list and the staff CRUD (seed 000 §3, seed 001 §3, §6, §13).

`GET /api/categories` (active categories with their model counts, public);
`GET/POST /api/admin/categories`, `PUT/DELETE /api/admin/categories/{id}` (staff with
`categories.manage`; a duplicate name is 409 CATEGORY_EXISTS, deleting a category that
models still use is 409 CATEGORY_IN_USE).
"""
from __future__ import annotations

from marshmallow import fields, pre_load, validate

from documents import categories
from handlers.base import ApiHandler, ApiSchema, body, public, responds, staff
from handlers.schemas import strip_strings, take_aliases


class CategoryBody(ApiSchema):
    """A category's editable fields; `name` 2–60 characters (required on creation); seed
    004's `enabled` is taken for `is_active` (ours wins when both are sent)."""

    name = fields.String(validate=validate.Length(min=2, max=60))
    slug = fields.String(validate=[validate.Length(min=2, max=60),
                                   validate.Regexp(r"^[a-z0-9]+(-[a-z0-9]+)*$")])
    description = fields.String(allow_none=True, validate=validate.Length(max=500))
    icon = fields.String(allow_none=True, validate=validate.Length(max=200))
    order = fields.Integer(validate=validate.Range(min=0, max=10_000))
    is_active = fields.Boolean()

    @pre_load
    def _strip(self, data, **kwargs):
        return take_aliases(strip_strings(data), {"enabled": "is_active"})


class NewCategoryBody(CategoryBody):
    name = fields.String(required=True, validate=validate.Length(min=2, max=60))


class CategoryOut(ApiSchema):
    id = fields.String()
    name = fields.String()
    slug = fields.String()
    model_count = fields.Integer()
    is_active = fields.Boolean()
    enabled = fields.Boolean(metadata={"description": "Seed 004's name of `is_active`"})
    created_at = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    icon = fields.String(allow_none=True)
    order = fields.Integer(allow_none=True)
    updated_at = fields.String(allow_none=True)


class CategoriesHandler(ApiHandler):
    @public
    @responds(CategoryOut, items=True)
    async def get(self) -> None:
        """Active categories in display order, each with `model_count` (its public models):
        ``{"items": [...]}``."""
        docs = await categories.list_active(self.db)
        self.write_json({"items": [categories.render_category(d) for d in docs]})


class AdminCategoriesHandler(ApiHandler):
    @staff("categories.manage")
    @responds(CategoryOut, items=True)
    async def get(self) -> None:
        """Every category, active or not (seed 001 §13 Category Management)."""
        docs = await categories.list_all(self.db)
        self.write_json({"items": [categories.render_category(d) for d in docs]})

    @staff("categories.manage")
    @body(NewCategoryBody)
    @responds(CategoryOut, status=201)
    async def post(self) -> None:
        """Create a category; 409 CATEGORY_EXISTS for a taken name or slug."""
        doc = await categories.create(self.db, self.body)
        self.write_json(categories.render_category(doc), status=201)


class AdminCategoryHandler(ApiHandler):
    @staff("categories.manage")
    @body(CategoryBody)
    @responds(CategoryOut)
    async def put(self, category_id: str) -> None:
        """Update a category; a rename is carried to its models. 404, 409 CATEGORY_EXISTS."""
        doc = await categories.update(self.db, category_id, self.body)
        self.write_json(categories.render_category(doc))

    @staff("categories.manage")
    @responds(status=204)
    async def delete(self, category_id: str) -> None:
        """Delete a category no model uses; 409 CATEGORY_IN_USE otherwise. 204."""
        await categories.delete(self.db, category_id)
        self.no_content()


routes = [
    (r"/api/categories", CategoriesHandler),
    (r"/api/admin/categories", AdminCategoriesHandler),
    (r"/api/admin/categories/([^/]+)", AdminCategoryHandler),
]
