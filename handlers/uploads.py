"""Upload routes (seed 000 §8, seed 001 §6 and §15, docs/architecture.md §7).

`POST /api/upload/model` and `/model-file`, `/image`, `/avatar`, `/attachment`, `/document`,
`DELETE /api/upload/{file_id}`, `POST /api/users/me/avatar`, `POST /api/models/analyze`;
`StreamedUpload`, the base of these and of model creation (`handlers.model_uploads`).

Every upload is a streamed multipart/form-data body (`tornado.web.stream_request_body`):
file parts are spooled to temp files while their size is counted (413 FILE_TOO_LARGE past
the limit), their type is checked by content (400 INVALID_FILE_TYPE), models are analysed in
the process pool and images processed in threads (`storage/`). Whatever a request stored
before a later step failed is removed again, and its temp files always are.
"""
from __future__ import annotations

import asyncio
import json

import tornado.web
from marshmallow import fields

from documents import files as files_db
from documents import users
from documents.errors import DomainError
from handlers.base import ApiHandler, ApiSchema, multipart, responds
from handlers.previews import begin as begin_preview
from handlers.schemas_catalog import AnalysisOut
from handlers.schemas_out import UserOut
from storage import store
from storage.errors import FileTooLarge, FormFieldError, MalformedForm, UploadRejected
from storage.receive import FileSpec, FormReceiver, ReceivedForm
from storage.validate import ATTACHMENT_FORMATS, DOCUMENT_FORMATS

ATTACHMENT_URL_TTL = 7 * 24 * 3600  # S3 presigned URLs cannot outlive 7 days
DRAIN_BYTES = 1024 * 1024       # a refused body up to this size is read, keeping the connection
JSON_MAX_BYTES = 256 * 1024     # JSON bodies of routes that take JSON as well as multipart
MAX_PREVIEWS = 8
CREATOR_ROLES = ("creator", "moderator", "admin", "superadmin")


def api_error(exc: UploadRejected) -> DomainError:
    """A storage rejection as the API's error (seed 001 §19)."""
    return DomainError(exc.detail, exc.error_code, getattr(exc, "field_errors", None),
                       status=exc.status)


# --------------------------------------------------------------------------- schemas

class UploadedModelOut(ApiSchema):
    """`POST /api/upload/model` response (seed 001 §15) plus the analysis fields."""

    file_id = fields.String()
    file_url = fields.String()
    file_size = fields.Integer()
    file_format = fields.String()
    poly_count = fields.Integer(allow_none=True)
    vertex_count = fields.Integer(allow_none=True)
    analyzed = fields.Boolean()
    preview_status = fields.String()
    has_animations = fields.Boolean()
    has_rigging = fields.Boolean()
    has_materials = fields.Boolean()
    has_textures = fields.Boolean()
    animation_count = fields.Integer(allow_none=True)
    bounds = fields.List(fields.Raw(), allow_none=True)
    material_count = fields.Integer(allow_none=True)
    original_name = fields.String(allow_none=True)
    texture_count = fields.Integer(allow_none=True)
    texture_resolution = fields.String(allow_none=True)


class UploadedImageOut(ApiSchema):
    image_url = fields.String()
    thumbnail_url = fields.String()
    width = fields.Integer()
    height = fields.Integer()
    file_id = fields.String()
    file_format = fields.String(allow_none=True)
    file_size = fields.Integer(allow_none=True)
    url = fields.String(allow_none=True)


class AvatarOut(ApiSchema):
    avatar_url = fields.String()
    file_id = fields.String()
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    user = fields.Nested(UserOut, allow_none=True)


class UploadedFileOut(ApiSchema):
    url = fields.String()
    file_id = fields.String()
    file_size = fields.Integer()
    file_format = fields.String()
    content_type = fields.String()
    file_url = fields.String(allow_none=True)
    original_name = fields.String(allow_none=True)
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)


# --------------------------------------------------------------------------- base

@tornado.web.stream_request_body
class StreamedUpload(ApiHandler):
    """Base of the upload handlers: a streamed multipart body received into `self.form`.

    Subclasses give `file_specs()` (parts and limits), `form_fields` (accepted plain fields;
    with `strict_form` any other part is a 422), and a `post` that calls
    ``await self.run(self.handle)``.
    """

    form_fields: tuple[str, ...] = ()
    strict_form = False
    accepts_json = False

    @property
    def rate_limit(self) -> str:  # type: ignore[override]
        """Uploads count against the upload limit (10/hour, seed 001 §21); other verbs not."""
        return "upload" if self.request.method == "POST" else "default"

    def file_specs(self) -> tuple[FileSpec, ...]:
        raise NotImplementedError

    async def prepare(self) -> None:
        """Auth and limits first (nothing is read before), then the receiver for the body.

        A declared Content-Length above the largest acceptable body is refused at once (413).
        A small body that is not multipart (up to DRAIN_BYTES) is read and dropped before the
        400 is answered, so the keep-alive connection stays usable for the next request; a
        reply sent before the body was read says ``Connection: close`` (see `finish`).
        """
        self.receiver: FormReceiver | None = None
        self.json_chunks: list[bytes] | None = None
        self.refusal: DomainError | None = None
        await super().prepare()
        if self.request.method != "POST" or self._finished:
            return
        specs = self.file_specs()
        max_bytes = FormReceiver.max_request_bytes(specs)
        declared = self.request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise api_error(FileTooLarge("The upload is larger than the limit"))
        if self.accepts_json and _is_json(self.request.headers):
            if declared.isdigit() and int(declared) > JSON_MAX_BYTES:
                raise DomainError("The JSON body is too large", "PAYLOAD_TOO_LARGE", status=413)
            self.request.connection.set_max_body_size(JSON_MAX_BYTES)
            self.json_chunks = []
            return
        self.request.connection.set_max_body_size(max_bytes)
        try:
            self.receiver = FormReceiver(self.request.headers, store.tmp_dir(self.settings_),
                                         specs, self.form_fields, strict=self.strict_form)
        except UploadRejected as exc:
            if not (declared.isdigit() and int(declared) <= DRAIN_BYTES):
                raise api_error(exc) from None
            self.refusal = api_error(exc)   # answered once the body is read (`run`)

    async def data_received(self, chunk: bytes) -> None:
        if self.receiver is not None:
            await self.receiver.feed(chunk)
        elif self.json_chunks is not None:
            self.json_chunks.append(chunk)
        # else: a refused body, read and dropped

    def finish(self, chunk=None):
        """Say ``Connection: close`` on a reply sent before the request body was read:
        Tornado drops such a connection, and the client must not send another request on it."""
        body = getattr(self.request, "_body_future", None)
        if not self._headers_written and body is not None and not body.done():
            self.set_header("Connection", "close")
        return super().finish(chunk)

    def json_body(self) -> dict:
        """The JSON object of a JSON request (`accepts_json`); 400 INVALID_JSON otherwise."""
        try:
            data = json.loads(b"".join(self.json_chunks or ()))
        except (ValueError, RecursionError):
            raise DomainError("The body is not valid JSON", "INVALID_JSON") from None
        if not isinstance(data, dict):
            raise DomainError("The body must be a JSON object", "INVALID_JSON")
        return data

    async def run(self, handle) -> None:
        """Run `handle(form)` on the received form; storage rejections become API errors and
        the temp files are removed whatever happens."""
        if self.refusal is not None:
            raise self.refusal
        if self.receiver is None:
            raise api_error(MalformedForm("Expected a multipart/form-data body"))
        self._held_reply: list = []
        try:
            await handle(self.receiver.result())
        except UploadRejected as exc:
            raise api_error(exc) from None
        finally:
            await self.receiver.cleanup()
            held, self._held_reply = self._held_reply, None
        if held:
            super().write_json(*held[0])

    def write_json(self, payload, status: int = 200) -> None:
        """Inside `run`, hold the reply until the temp files are removed (a client that gets
        the answer never sees leftovers); elsewhere (e.g. an inherited GET) write at once."""
        if getattr(self, "_held_reply", None) is not None:
            self._held_reply.append((payload, status))
        else:
            super().write_json(payload, status)

    def on_connection_close(self) -> None:
        """The client went away mid-upload: drop what was spooled."""
        super().on_connection_close()
        if getattr(self, "receiver", None) is not None:
            asyncio.ensure_future(self.receiver.cleanup())

    def required_file(self, form: ReceivedForm, name: str = "file"):
        part = form.file(name)
        if part is None:
            raise FormFieldError(name, "Missing file.")
        return part

    async def record(self, stored: store.StoredObject, kind: str, part, **extra) -> dict:
        """Insert the `files` record of `stored` (owned by the current user)."""
        doc = files_db.new_file(
            self.current_user["_id"], kind, stored.key, url=stored.url,
            content_type=stored.content_type, size=stored.size, file_format=stored.file_format,
            original_name=part.filename, width=stored.width, height=stored.height,
            analysis=stored.analysis,
            thumbnail_key=stored.thumbnail.key if stored.thumbnail else None, **extra)
        return await files_db.insert(self.db, doc)

    async def store_and_record(self, make, kind: str, part) -> tuple[store.StoredObject, dict]:
        """`await make()` → a StoredObject, then its record; the object is removed again when
        the record cannot be written."""
        stored = await make()
        try:
            return stored, await self.record(stored, kind, part)
        except BaseException:
            await store.remove(self.services.storage, [stored])
            raise

    async def private_url(self, stored_key: str, ttl_seconds: int, filename: str | None) -> str:
        return await store.signed_url(self.services.storage, stored_key, ttl_seconds, filename)


def _model_reply(record: dict, file_url: str) -> dict:
    analysis = dict(record.get("analysis") or {})
    analysis.pop("format", None)
    return {"file_id": str(record["_id"]), "file_url": file_url, "file_size": record["size"],
            "file_format": record["format"], "original_name": record.get("original_name"),
            "preview_status": (record.get("preview") or {}).get("preview_status"),
            **analysis}


# --------------------------------------------------------------------------- models

class ModelFileUploadHandler(StreamedUpload):
    def file_specs(self) -> tuple[FileSpec, ...]:
        return (FileSpec(("file", "model", "model_file"), self.settings_.max_model_bytes,
                         label="model file"),)

    @multipart(file="the model file: GLB, GLTF, OBJ, STL, PLY, FBX or BLEND (≤ 100 MB)")
    @responds(UploadedModelOut, status=201)
    async def post(self) -> None:
        """Upload a model file (seed 000 §8, seed 001 §15): type checked by content, analysed
        (poly/vertex counts, animations, rigging, materials, textures; FBX/BLEND stored as not
        analysed). Its web preview (GLB) and, for a model that gets no thumbnail of its own, a
        rendered thumbnail are built in the background (`preview_status: "processing"`).
        201 ``{file_id, file_url (signed, private), file_size, file_format, preview_status,
        poly_count, vertex_count, analyzed, ...}``; 400 INVALID_FILE_TYPE /
        INVALID_MODEL_FILE, 413 FILE_TOO_LARGE."""
        await self.run(self.handle)

    async def handle(self, form: ReceivedForm) -> None:
        part = self.required_file(form)
        stored, record = await self.store_and_record(
            lambda: store.store_model(self.services, part), "model", part)
        await begin_preview(self.services, record)
        url = await self.private_url(stored.key, self.settings_.download_url_ttl_minutes * 60,
                                     record.get("original_name"))
        self.write_json(_model_reply(record, url), 201)


class AnalyzeHandler(StreamedUpload):
    def file_specs(self) -> tuple[FileSpec, ...]:
        return (FileSpec(("file", "model", "model_file"), self.settings_.max_model_bytes,
                         label="model file"),)

    @multipart(file="the model file to analyse (nothing is stored)")
    @responds(AnalysisOut)
    async def post(self) -> None:
        """Analyse a model file without storing it (seed 001 §6 "Analyze model").

        200
        ``{file_format, file_size, analyzed, poly_count, vertex_count, has_animations,
        has_rigging, has_materials, has_textures, material_count, texture_count,
        animation_count, texture_resolution, bounds}``. The temp file is removed."""
        await self.run(self.handle)

    async def handle(self, form: ReceivedForm) -> None:
        part = self.required_file(form)
        file_format, analysis = await store.check_model(self.services, part)
        analysis.pop("format", None)
        self.write_json({"file_format": file_format, "file_size": part.size, **analysis})


def _is_json(headers) -> bool:
    return headers.get("Content-Type", "").split(";")[0].strip().lower() == "application/json"


# --------------------------------------------------------------------------- images

class ImageUploadHandler(StreamedUpload):
    def file_specs(self) -> tuple[FileSpec, ...]:
        return (FileSpec(("file", "image"), self.settings_.max_image_bytes, label="image"),)

    @multipart(file="a PNG, JPEG or WEBP image (≤ 10 MB)")
    @responds(UploadedImageOut, status=201)
    async def post(self) -> None:
        """Upload an image (thumbnail, preview; seed 001 §15): metadata stripped, measured and
        thumbnailed. 201 ``{image_url, thumbnail_url, width, height, file_id, file_size,
        file_format}``."""
        await self.run(self.handle)

    async def handle(self, form: ReceivedForm) -> None:
        part = self.required_file(form)
        stored, record = await self.store_and_record(
            lambda: store.store_image(self.services, part), "image", part)
        self.write_json({"image_url": stored.url, "url": stored.url,
                         "thumbnail_url": stored.thumbnail.url if stored.thumbnail else None,
                         "width": stored.width, "height": stored.height,
                         "file_id": str(record["_id"]), "file_size": stored.size,
                         "file_format": stored.file_format}, 201)


class AvatarUploadHandler(StreamedUpload):
    def file_specs(self) -> tuple[FileSpec, ...]:
        return (FileSpec(("file", "avatar", "image"), self.settings_.max_avatar_bytes,
                         label="avatar"),)

    @multipart(file="a PNG, JPEG or WEBP image (≤ 2 MB)")
    @responds(AvatarOut)
    async def post(self) -> None:
        """Set the signed-in user's avatar (seed 001 §15): cropped and resized to 256×256,
        `avatar_url` saved on the user; the previous uploaded avatar is deleted. 200
        ``{avatar_url, file_id, width, height, user}``."""
        await self.run(self.handle)

    async def handle(self, form: ReceivedForm) -> None:
        part = self.required_file(form)
        stored, record = await self.store_and_record(
            lambda: store.store_avatar(self.services, part), "avatar", part)
        try:
            user = await users.update(self.db, self.current_user["_id"],
                                      {"avatar_url": stored.url})
        except BaseException:
            await files_db.delete(self.db, record["_id"])
            await store.remove(self.services.storage, [stored])
            raise
        await self._drop_old_avatars(record)
        self.write_json({"avatar_url": stored.url, "file_id": str(record["_id"]),
                         "width": stored.width, "height": stored.height,
                         "user": users.render_private(user)})

    async def _drop_old_avatars(self, keep: dict) -> None:
        for old in await files_db.list_by_owner(self.db, keep["owner_id"], "avatar"):
            if old["_id"] != keep["_id"] and await files_db.delete(self.db, old["_id"]):
                await store.delete_key(self.services.storage, old["key"])


# --------------------------------------------------------------------------- other files

class PrivateFileUpload(StreamedUpload):
    """Attachments and documents: stored privately, answered with a signed URL."""

    kind = "attachment"
    prefix = "attachments"
    formats: tuple[str, ...] = ATTACHMENT_FORMATS

    def file_specs(self) -> tuple[FileSpec, ...]:
        return (FileSpec(("file", self.kind), self.settings_.max_attachment_bytes,
                         label=self.kind),)

    async def handle(self, form: ReceivedForm) -> None:
        part = self.required_file(form)
        stored, record = await self.store_and_record(
            lambda: store.store_plain(self.services, part, prefix=self.prefix,
                                      formats=self.formats), self.kind, part)
        url = await self.private_url(stored.key, ATTACHMENT_URL_TTL, record.get("original_name"))
        self.write_json({"url": url, "file_url": url, "file_id": str(record["_id"]),
                         "file_size": stored.size, "file_format": stored.file_format,
                         "content_type": stored.content_type,
                         "original_name": record.get("original_name"),
                         "width": stored.width, "height": stored.height}, 201)


class AttachmentUploadHandler(PrivateFileUpload):
    @multipart(file="an image (PNG, JPEG, WEBP, GIF), PDF, TXT or ZIP")
    @responds(UploadedFileOut, status=201)
    async def post(self) -> None:
        """Upload a support attachment (seed 001 §9): stored privately; 201 ``{url (signed,
        7 days), file_id, file_size, file_format, content_type, original_name}``."""
        await self.run(self.handle)


class DocumentUploadHandler(PrivateFileUpload):
    kind = "document"
    prefix = "documents"
    formats = DOCUMENT_FORMATS

    @multipart(file="a PDF, TXT or ZIP document")
    @responds(UploadedFileOut, status=201)
    async def post(self) -> None:
        """Upload a document: stored privately; 201 ``{url (signed, 7 days), file_id,
        file_size, file_format, content_type, original_name}``."""
        await self.run(self.handle)


class UploadHandler(ApiHandler):
    @responds(status=204)
    async def delete(self, file_id: str) -> None:
        """Delete an uploaded file and its stored object (seed 000 §8): the owner or staff
        (403 otherwise, 404 for an unknown or invalid id; 409 FILE_IN_USE while a model uses
        it). An avatar in use is cleared from the profile. 204."""
        record = await files_db.get_owned(self.db, file_id, self.require_user())
        if await files_db.used_by_model(self.db, record):
            raise DomainError("This file belongs to a model; delete the model instead",
                              "FILE_IN_USE", status=409)
        if await files_db.delete(self.db, record["_id"]):
            await files_db.clear_avatar(self.db, record)
            await store.delete_key(self.services.storage, record["key"])
            await store.delete_key(self.services.storage, record.get("thumbnail_key"))
        self.no_content()


routes = [
    (r"/api/upload/model", ModelFileUploadHandler),
    (r"/api/upload/model-file", ModelFileUploadHandler),
    (r"/api/upload/image", ImageUploadHandler),
    (r"/api/upload/avatar", AvatarUploadHandler),
    (r"/api/upload/attachment", AttachmentUploadHandler),
    (r"/api/upload/document", DocumentUploadHandler),
    (r"/api/upload/([^/]+)", UploadHandler),
    (r"/api/users/me/avatar", AvatarUploadHandler),
    (r"/api/models/analyze", AnalyzeHandler),
]
