"""Collection routes (seed 004 §4 and "Collections Listing" / "Collection Detail").

`GET/POST /api/collections`, `GET/PUT/DELETE /api/collections/{id}`,
`POST /api/collections/{id}/add-model`, `DELETE /api/collections/{id}/remove-model/{model_id}`,
`POST/DELETE /api/collections/{id}/follow`, `GET /api/collections/{id}/models`.

A private collection is a 404 for everyone but its owner; only the owner changes one (403 on
someone else's public collection). `POST .../follow` is a toggle (follows, or unfollows when
already following) and answers the new state; `DELETE .../follow` unfollows explicitly.
Rules and bounds (500 models, 409 COLLECTION_FULL) live in `documents.collections`.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from documents import catalog, users
from documents import collections as collections_db
from documents.common import object_id
from documents.errors import Conflict
from handlers.base import (
    ApiHandler,
    ApiSchema,
    PageQuery,
    body,
    public,
    query,
    responds,
)
from handlers.schemas import strip_strings
from handlers.schemas_catalog import ModelOut
from handlers.schemas_out import UserBriefOut

COLLECTION_ID = r"([^/]+)"


# --------------------------------------------------------------------------- schemas

class _Stripped(ApiSchema):
    @pre_load
    def _strip(self, data, **kwargs):
        return strip_strings(data)


class NewCollectionBody(_Stripped):
    """`name` 1–100 characters, `description` ≤ 1000, `is_public` (default true)."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    description = fields.String(allow_none=True, validate=validate.Length(max=1000))
    is_public = fields.Boolean(load_default=True)


class CollectionChanges(_Stripped):
    """Any of `name`, `description`, `is_public`; at least one."""

    name = fields.String(validate=validate.Length(min=1, max=100))
    description = fields.String(allow_none=True, validate=validate.Length(max=1000))
    is_public = fields.Boolean()

    @validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("Nothing to change", "_schema")


class AddModelBody(ApiSchema):
    """`model_id` of a model the owner can see; `position` (0-based; default: at the end)."""

    model_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    position = fields.Integer(validate=validate.Range(min=0, max=collections_db.MAX_MODELS))


class CollectionListQuery(PageQuery):
    """`mine=true` (own, private included; needs a token), `user_id` (one owner's), `search`."""

    mine = fields.Boolean(load_default=False)
    user_id = fields.String(validate=validate.Length(min=1, max=64))
    search = fields.String(validate=validate.Length(max=100))


class CollectionOut(ApiSchema):
    id = fields.String()
    name = fields.String()
    description = fields.String()
    is_public = fields.Boolean()
    model_count = fields.Integer()
    views = fields.Integer()
    followers = fields.Integer()
    owner = fields.Nested(UserBriefOut, allow_none=True)
    created_at = fields.String(allow_none=True)
    is_following = fields.Boolean(allow_none=True)
    model_ids = fields.List(fields.String(), allow_none=True)
    owner_id = fields.String(allow_none=True)
    preview_model_ids = fields.List(fields.String(), allow_none=True)
    updated_at = fields.String(allow_none=True)


class FollowOut(ApiSchema):
    collection_id = fields.String()
    is_following = fields.Boolean()
    followers = fields.Integer()


# --------------------------------------------------------------------------- handlers

class CollectionsHandler(ApiHandler):
    @public
    @query(CollectionListQuery)
    @responds(CollectionOut, paginated=True)
    async def get(self) -> None:
        """Public collections, newest first, paginated; `mine=true` lists the caller's own
        (401 without a token), `user_id` one owner's, `search` by name/description."""
        owner_id = None
        if self.query.get("user_id"):
            owner_id = object_id(self.query["user_id"])
            if owner_id is None:
                self.write_page([], {"total": 0, "page": self.query["page"],
                                     "limit": self.query["limit"], "pages": 0})
                return
        viewer = self.require_user() if self.query["mine"] else self.current_user
        docs, meta = await collections_db.list_page(
            self.db, viewer, page=self.query["page"], limit=self.query["limit"],
            mine=self.query["mine"], owner_id=owner_id, search=self.query.get("search"))
        self.write_page(await collections_db.render_many(self.db, docs), meta)

    @body(NewCollectionBody)
    @responds(CollectionOut, status=201)
    async def post(self) -> None:
        """Create a collection of the caller (seed 004 §4): 201 with it; 422 on bad fields."""
        user = self.require_user()
        doc = await collections_db.create(self.db, user, self.body)
        self.write_json(collections_db.render_collection(doc, {user["_id"]: user},
                                                         is_following=False), 201)


class CollectionHandler(ApiHandler):
    @public
    @responds(CollectionOut)
    async def get(self, collection_id: str) -> None:
        """One collection with its ordered `model_ids`, owner card and `is_following`; a
        visit by anyone but the owner counts a view. Private: 404 for non-owners."""
        viewer = self.current_user
        doc = await collections_db.get_visible(self.db, collection_id, viewer)
        if not collections_db.is_owner(viewer, doc):
            doc["views"] = await collections_db.count_view(self.db, doc)
        await self._reply(doc)

    @body(CollectionChanges)
    @responds(CollectionOut)
    async def put(self, collection_id: str) -> None:
        """Edit name, description, is_public (owner only: 403/404 otherwise)."""
        doc = await collections_db.get_owned(self.db, collection_id, self.require_user())
        await self._reply(await collections_db.update(self.db, doc, self.body))

    @responds(status=204)
    async def delete(self, collection_id: str) -> None:
        """Delete the collection and its follows (owner only). 204."""
        doc = await collections_db.get_owned(self.db, collection_id, self.require_user())
        await collections_db.delete(self.db, doc)
        self.no_content()

    async def _reply(self, doc: dict) -> None:
        await reply_collection(self, doc)


async def reply_collection(handler: ApiHandler, doc: dict) -> None:
    """Finish `handler` with the collection `doc` (owner card, `is_following` of the caller)."""
    owners = await users.get_many(handler.db, [doc["owner_id"]])
    following = await collections_db.is_following(handler.db, handler.current_user, doc)
    handler.write_json(collections_db.render_collection(doc, owners, is_following=following))


class AddModelHandler(ApiHandler):
    @body(AddModelBody)
    @responds(CollectionOut)
    async def post(self, collection_id: str) -> None:
        """Add a model the owner can see at `position` (owner only). 409
        ALREADY_IN_COLLECTION, 409 COLLECTION_FULL past 500 models, 404 for an unknown model."""
        user = self.require_user()
        doc = await collections_db.get_owned(self.db, collection_id, user)
        model = await catalog.get_visible(self.db, self.body["model_id"], user)
        doc = await collections_db.add_model(self.db, doc, model, self.body.get("position"))
        await reply_collection(self, doc)


class RemoveModelHandler(ApiHandler):
    @responds(CollectionOut)
    async def delete(self, collection_id: str, model_id: str) -> None:
        """Take a model out (owner only); 404 MODEL_NOT_IN_COLLECTION when it is not in it."""
        doc = await collections_db.get_owned(self.db, collection_id, self.require_user())
        doc = await collections_db.remove_model(self.db, doc, model_id)
        await reply_collection(self, doc)


class FollowHandler(ApiHandler):
    @responds(FollowOut)
    async def post(self, collection_id: str) -> None:
        """Toggle following a visible collection: follows (201) or, when already following,
        unfollows (200). Answers ``{collection_id, is_following, followers}``; 400
        CANNOT_FOLLOW_OWN for one's own collection."""
        user = self.require_user()
        doc = await collections_db.get_visible(self.db, collection_id, user)
        try:
            followers = await collections_db.follow(self.db, user, doc)
        except Conflict:
            followers = await collections_db.unfollow(self.db, user, doc)
            return self._reply(doc, False, followers, 200)
        self._reply(doc, True, followers, 201)

    @responds(FollowOut)
    async def delete(self, collection_id: str) -> None:
        """Unfollow; 404 NOT_FOLLOWING when the caller did not follow it."""
        user = self.require_user()
        doc = await collections_db.get_visible(self.db, collection_id, user)
        followers = await collections_db.unfollow(self.db, user, doc)
        self._reply(doc, False, followers, 200)

    def _reply(self, doc: dict, following: bool, followers: int, status: int) -> None:
        self.write_json({"collection_id": str(doc["_id"]), "is_following": following,
                         "followers": followers}, status)


class CollectionModelsHandler(ApiHandler):
    @public
    @query(PageQuery)
    @responds(ModelOut, paginated=True)
    async def get(self, collection_id: str) -> None:
        """The collection's models in its order, paginated, as model cards (private
        collection: 404 for non-owners)."""
        doc = await collections_db.get_visible(self.db, collection_id, self.current_user)
        models, meta = await collections_db.models_page(
            self.db, doc, self.current_user, page=self.query["page"], limit=self.query["limit"])
        self.write_page(await catalog.render_models(self.db, models, self.current_user), meta)


routes = [
    (r"/api/collections", CollectionsHandler),
    (rf"/api/collections/{COLLECTION_ID}", CollectionHandler),
    (rf"/api/collections/{COLLECTION_ID}/add-model", AddModelHandler),
    (rf"/api/collections/{COLLECTION_ID}/remove-model/([^/]+)", RemoveModelHandler),
    (rf"/api/collections/{COLLECTION_ID}/follow", FollowHandler),
    (rf"/api/collections/{COLLECTION_ID}/models", CollectionModelsHandler),
]
