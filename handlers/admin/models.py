"""Model moderation for staff (seed 000 §7, seed 001 §13 "Model Management").

`GET /api/admin/models`, `GET/DELETE /api/admin/models/{id}`, `PUT|POST .../approve`,
`PUT|POST .../reject` (reason 3–500 characters), `PUT .../feature`. Every verb needs the
staff permission `models.moderate`. Approve and reject are `documents.moderation`'s
decisions: a conditional transition (a second approval answers 409 INVALID_STATE), then the
creator's notification and email and the admin action record.
"""
from __future__ import annotations

from marshmallow import fields, pre_load, validate

from documents import (
    catalog,
    model_listing,
    model_writes,
    moderation,
    users,
)
from handlers.base import ApiHandler, ApiSchema, PageQuery, body, query, responds, staff
from handlers.schemas_catalog import ModelOut

MODEL_ID = r"([^/]+)"


class AdminModelsQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(catalog.STATUSES))
    search = fields.String(validate=validate.Length(max=100))
    category = fields.String(validate=validate.Length(min=1, max=60))
    creator = fields.String(validate=validate.Length(min=1, max=60))


class ApproveBody(ApiSchema):
    """Optional moderator note (kept in the admin action log when one exists)."""

    note = fields.String(validate=validate.Length(max=500))


class RejectBody(ApiSchema):
    """`reason` is required, 3–500 characters after trimming (seed 000 §7)."""

    reason = fields.String(required=True, validate=validate.Length(min=3, max=500))

    @pre_load
    def _strip(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("reason"), str):
            data = {**data, "reason": data["reason"].strip()}
        return data


class FeatureBody(ApiSchema):
    is_featured = fields.Boolean(required=True)


class AdminModelHandlerBase(ApiHandler):
    async def rendered(self, model: dict) -> dict:
        """`model` in API form with private fields and the creator's brief card."""
        creators = await users.get_many(self.db, [model["creator_id"]])
        return catalog.render_model(model, creators, private=True)


class AdminModelsHandler(AdminModelHandlerBase):
    @staff("models.moderate")
    @query(AdminModelsQuery)
    @responds(ModelOut, paginated=True)
    async def get(self) -> None:
        """Models of every status for moderation: filter `status`, `search`, `category`,
        `creator`; pending ones oldest first (seed 000 §7)."""
        q = self.query
        docs, meta = await model_listing.list_for_moderation(
            self.db, page=q["page"], limit=q["limit"], status=q.get("status"),
            search=q.get("search"), category=q.get("category"), creator=q.get("creator"))
        creators = await users.get_many(self.db, [d["creator_id"] for d in docs])
        self.write_page([catalog.render_model(d, creators, private=True) for d in docs], meta)


class AdminModelHandler(AdminModelHandlerBase):
    @staff("models.moderate")
    @responds(ModelOut)
    async def get(self, model_id: str) -> None:
        """One model in any status, with private fields (seed 001 §13 "View model")."""
        self.write_json(await self.rendered(await catalog.get_model(self.db, model_id)))

    @staff("models.moderate")
    @responds(status=204)
    async def delete(self, model_id: str) -> None:
        """Delete a model (seed 001 §13); counters are fixed. 204."""
        _, media_keys = await moderation.remove(self.db, model_id, self.current_user)
        for key in media_keys:
            await self.services.storage.delete(key)
        self.no_content()


class ApproveHandler(AdminModelHandlerBase):
    @staff("models.moderate")
    @body(ApproveBody)
    @responds(ModelOut)
    async def put(self, model_id: str) -> None:
        """Approve a pending or rejected model (seed 000 §7), or the new file waiting for
        review on a listed model (`pending_file`, which then replaces the live file). 409
        INVALID_STATE when it is already approved with nothing waiting (also for the loser
        of two racing approvals)."""
        model = await moderation.approve(self.db, self.services.hub, self.services.mailer,
                                         model_id, self.current_user, self.body.get("note"))
        self.write_json(await self.rendered(model))

    post = put


class RejectHandler(AdminModelHandlerBase):
    @staff("models.moderate")
    @body(RejectBody)
    @responds(ModelOut)
    async def put(self, model_id: str) -> None:
        """Reject a pending or approved model, or its new file, with a reason.

        Seed 000 §7; on a listed
        model with a new file waiting for review, only that file is rejected (the model
        stays live with its approved file; reject again to take the model down). 422
        without a 3–500 character reason; 409 INVALID_STATE when it is already rejected."""
        model = await moderation.reject(self.db, self.services.hub, self.services.mailer,
                                        model_id, self.current_user, self.body["reason"])
        self.write_json(await self.rendered(model))

    post = put


class FeatureHandler(AdminModelHandlerBase):
    @staff("models.moderate")
    @body(FeatureBody)
    @responds(ModelOut)
    async def put(self, model_id: str) -> None:
        """Feature or unfeature a model (seed 001 §13). Only an approved model can be
        featured: 409 INVALID_STATE otherwise."""
        model = await model_writes.set_featured(self.db, model_id, self.body["is_featured"])
        self.write_json(await self.rendered(model))


routes = [
    (r"/api/admin/models", AdminModelsHandler),
    (rf"/api/admin/models/{MODEL_ID}", AdminModelHandler),
    (rf"/api/admin/models/{MODEL_ID}/approve", ApproveHandler),
    (rf"/api/admin/models/{MODEL_ID}/reject", RejectHandler),
    (rf"/api/admin/models/{MODEL_ID}/feature", FeatureHandler),
]
