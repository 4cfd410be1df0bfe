"""Model engagement routes (seed 000 §3, seed 001 §3–§5, seed 004 "Model Detail").

`POST/DELETE /api/models/{id}/like`, `POST /api/models/{id}/comment` and `/comments`,
`GET /api/models/{id}/comments`, `POST /api/models/{id}/view`, `/share`, `/download-specs`,
`/screenshot`, `/record-video`. Every route works on a model the caller may see
(`documents.catalog.get_visible`: approved and published for the public; the creator and
staff also see their hidden ones); others get 404. The rules live in `documents.engagement`.
"""
from __future__ import annotations

import json

from marshmallow import fields, pre_load, validate

from documents import catalog, engagement, users
from documents import files as files_db
from documents.errors import Forbidden, Invalid
from handlers.base import (
    ApiHandler,
    ApiSchema,
    PageQuery,
    body,
    multipart,
    public,
    query,
    responds,
)
from handlers.models import MODEL_ID
from handlers.schemas_catalog import ModelSpecsOut
from handlers.schemas_out import UserBriefOut
from handlers.uploads import StreamedUpload
from storage import store
from storage.receive import FileSpec, ReceivedForm
from storage.video import store_video

VIDEO_URL_TTL = 7 * 24 * 3600  # S3 presigned URLs cannot outlive 7 days
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


# --------------------------------------------------------------------------- schemas

class CommentBody(ApiSchema):
    """A new comment: `content` 1–2000 characters after stripping; `parent_id` for a reply."""

    content = fields.String(required=True, validate=validate.Length(
        min=1, max=engagement.MAX_COMMENT_LENGTH))
    parent_id = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(max=64))

    @pre_load
    def _strip(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("content"), str):
            data = {**data, "content": data["content"].strip()}
        return data


class LikeOut(ApiSchema):
    model_id = fields.String()
    liked = fields.Boolean()
    likes = fields.Integer()


class CommentOut(ApiSchema):
    id = fields.String()
    model_id = fields.String()
    content = fields.String()
    parent_id = fields.String(allow_none=True)
    author = fields.Nested(UserBriefOut, allow_none=True)
    replies = fields.List(fields.Dict())
    reply_count = fields.Integer()
    created_at = fields.String()
    is_deleted = fields.Boolean(allow_none=True)
    likes = fields.Integer(allow_none=True)
    updated_at = fields.String(allow_none=True)
    user_id = fields.String(allow_none=True)


class ViewOut(ApiSchema):
    views = fields.Integer()
    counted = fields.Boolean()


class ShareOut(ApiSchema):
    share_url = fields.String()
    shares = fields.Integer()
    model_id = fields.String(allow_none=True)


class MediaOut(ApiSchema):
    id = fields.String()
    model_id = fields.String()
    kind = fields.String()
    file_id = fields.String()
    url = fields.String()
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    content_type = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    format = fields.String(allow_none=True)
    model_thumbnail_url = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    size = fields.Integer(allow_none=True)
    thumbnail_url = fields.String(allow_none=True)


# --------------------------------------------------------------------------- likes

class LikeHandler(ApiHandler):
    @responds(LikeOut, status=201)
    async def post(self, model_id: str) -> None:
        """Like a visible model (seed 000 §3): 201 ``{model_id, liked: true, likes}``; 409
        ALREADY_LIKED on a second like; 404 for a hidden or unknown model. The creator gets a
        `model_liked` notification unless they like their own model."""
        user = self.require_user()
        model = await catalog.get_visible(self.db, model_id, user)
        likes = await engagement.like(self.db, self.services.hub, model, user)
        self.write_json({"model_id": str(model["_id"]), "liked": True, "likes": likes}, 201)

    @responds(LikeOut)
    async def delete(self, model_id: str) -> None:
        """Unlike (seed 000 §3): 200 ``{model_id, liked: false, likes}``; 404 NOT_LIKED when
        the caller had not liked it."""
        user = self.require_user()
        model = await catalog.get_visible(self.db, model_id, user)
        likes = await engagement.unlike(self.db, model, user)
        self.write_json({"model_id": str(model["_id"]), "liked": False, "likes": likes})


# --------------------------------------------------------------------------- comments

class CommentsHandler(ApiHandler):
    @public
    @query(PageQuery)
    @responds(CommentOut, paginated=True)
    async def get(self, model_id: str) -> None:
        """The model's comments (seed 000 §3): top-level newest first, paginated, each with
        its `replies` (oldest first) and author cards."""
        model = await catalog.get_visible(self.db, model_id, self.current_user)
        items, meta = await engagement.comment_page(self.db, model, page=self.query["page"],
                                                    limit=self.query["limit"])
        self.write_page(items, meta)

    @body(CommentBody)
    @responds(CommentOut, status=201)
    async def post(self, model_id: str) -> None:
        """Comment on a visible model (seed 000 §3 body ``{content, parent_id}``): 201 with
        the comment; 422 for empty/oversized content or a `parent_id` that is no comment of
        this model. The creator gets `comment_received` and, unless they turned emails off,
        an email (not for their own comments)."""
        user = self.require_user()
        model = await catalog.get_visible(self.db, model_id, user)
        doc = await engagement.add_comment(self.db, self.services.hub, model, user,
                                           self.body["content"], self.body.get("parent_id"),
                                           mailer=self.services.mailer)
        out = engagement.render_comment(doc, {user["_id"]: user})
        out["replies"] = []
        self.write_json(out, 201)


# --------------------------------------------------------------------------- view, share, specs

class ViewHandler(ApiHandler):
    @public
    @responds(ViewOut)
    async def post(self, model_id: str) -> None:
        """Count a view (seed 000 §3): once per viewer (user, or client IP when anonymous) per
        30-minute window. 200 ``{views, counted}``."""
        model = await catalog.get_visible(self.db, model_id, self.current_user)
        key = engagement.viewer_key(self.current_user, self.request.remote_ip,
                                    self.settings_.jwt_secret_key)
        views, counted = await engagement.record_view(self.db, model, key)
        self.write_json({"views": views, "counted": counted})


class ShareHandler(ApiHandler):
    @public
    @responds(ShareOut)
    async def post(self, model_id: str) -> None:
        """Share a model (seed 001 §5 "copy link"; anyone who can see it): counts the share
        and answers ``{share_url, shares}``."""
        model = await catalog.get_visible(self.db, model_id, self.current_user)
        shares = await engagement.share(self.db, model)
        self.write_json({"model_id": str(model["_id"]), "shares": shares,
                         "share_url": f"{self.settings_.public_url}/view/{model['_id']}"})


class DownloadSpecsHandler(ApiHandler):
    @public
    @responds(ModelSpecsOut)
    async def post(self, model_id: str) -> None:
        """The model's technical specs as a JSON attachment ``<slug>-specs.json`` (seed 001
        §4 "Download specs"): formats, size, poly/vertex counts, features, bounds, category,
        tags, creator. Anyone who can see the model."""
        model = await catalog.get_visible(self.db, model_id, self.current_user)
        creator = await users.get(self.db, model["creator_id"])
        document = engagement.specs(model, creator, self.settings_.public_url)
        self.set_header("Content-Disposition",
                        f'attachment; filename="{engagement.slug(model.get("title"))}-specs.json"')
        self.set_status(200)
        self.finish(json.dumps(document, indent=2))


# --------------------------------------------------------------------------- captured media

class _ModelMediaUpload(StreamedUpload):
    """Owner-only upload of a captured file for a model; the owner is checked before any of
    the body is read (403 for another user's visible model, 404 for a hidden one)."""

    strict_form = True

    async def prepare(self) -> None:
        self.model = None
        await super().prepare()
        if self.receiver is None or self._finished:
            return
        try:
            user = self.require_user()
            self.model = await catalog.get_visible(self.db, self.path_args[0], user)
            if self.model["creator_id"] != user["_id"]:
                raise Forbidden("Only the model's creator can add media to it")
        except BaseException:
            await self.receiver.cleanup()
            self.receiver = None
            raise

    async def keep(self, stored: store.StoredObject, record: dict, kind: str,
                   url: str | None) -> dict:
        """The `model_media` record of a stored file; everything is removed again on failure."""
        try:
            return await engagement.add_media(self.db, self.model, self.current_user, kind,
                                              record, url)
        except BaseException:
            await files_db.delete(self.db, record["_id"])
            await store.remove(self.services.storage, [stored])
            raise


def _flag(form: ReceivedForm, name: str) -> bool:
    value = (form.field(name) or "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise Invalid({name: ["Not a valid boolean."]})
    return value in _TRUE


class ScreenshotHandler(_ModelMediaUpload):
    form_fields = ("set_as_thumbnail",)

    def file_specs(self) -> tuple[FileSpec, ...]:
        return (FileSpec(("file", "screenshot", "image"), self.settings_.max_image_bytes,
                         label="screenshot"),)

    @multipart(file="a PNG, JPEG or WEBP image (≤ 10 MB)",
               set_as_thumbnail="true/false: make it the model's thumbnail")
    @responds(MediaOut, status=201)
    async def post(self, model_id: str) -> None:
        """Store a client-captured screenshot of one's own model (seed 001 §4 "Capture
        screenshot"): 201 with the media record (public `url`, `thumbnail_url`) and
        `model_thumbnail_url`. 400 INVALID_FILE_TYPE, 413 FILE_TOO_LARGE: nothing stored."""
        await self.run(self.handle)

    async def handle(self, form: ReceivedForm) -> None:
        as_thumbnail = _flag(form, "set_as_thumbnail")
        part = self.required_file(form)
        stored, record = await self.store_and_record(
            lambda: store.store_image(self.services, part, prefix="images"), "image", part)
        media = await self.keep(stored, record, "screenshot", stored.url)
        if as_thumbnail:
            await engagement.set_thumbnail(self.db, self.model, stored.url)
        out = engagement.render_media(media)
        out["thumbnail_url"] = stored.thumbnail.url if stored.thumbnail else None
        out["model_thumbnail_url"] = stored.url if as_thumbnail else self.model.get("thumbnail_url")
        self.write_json(out, 201)


class RecordVideoHandler(_ModelMediaUpload):
    def file_specs(self) -> tuple[FileSpec, ...]:
        return (FileSpec(("file", "video"), self.settings_.max_model_bytes, label="video"),)

    @multipart(file="an MP4 or WEBM video (≤ 100 MB, the model-file limit)")
    @responds(MediaOut, status=201)
    async def post(self, model_id: str) -> None:
        """Store a client-recorded video of one's own model (seed 001 §4 "Export video"):
        type by magic bytes (MP4/WEBM). 201 with the media record and a signed `url` (7
        days). 400 INVALID_FILE_TYPE, 413 FILE_TOO_LARGE: nothing stored."""
        await self.run(self.handle)

    async def handle(self, form: ReceivedForm) -> None:
        part = self.required_file(form)
        stored, record = await self.store_and_record(
            lambda: store_video(self.services, part), "video", part)
        media = await self.keep(stored, record, "video", stored.url)
        out = engagement.render_media(media)
        if out["url"] is None:
            out["url"] = await self.private_url(stored.key, VIDEO_URL_TTL,
                                                record.get("original_name"))
        self.write_json(out, 201)


routes = [
    (rf"/api/models/{MODEL_ID}/like", LikeHandler),
    (rf"/api/models/{MODEL_ID}/comments", CommentsHandler),
    (rf"/api/models/{MODEL_ID}/comment", CommentsHandler),
    (rf"/api/models/{MODEL_ID}/view", ViewHandler),
    (rf"/api/models/{MODEL_ID}/share", ShareHandler),
    (rf"/api/models/{MODEL_ID}/download-specs", DownloadSpecsHandler),
    (rf"/api/models/{MODEL_ID}/screenshot", ScreenshotHandler),
    (rf"/api/models/{MODEL_ID}/record-video", RecordVideoHandler),
]
