"""Creating a model (seed 000 §3 `POST /api/models`, seed 001 §6 "Upload Model").

`POST /api/models` and `POST /api/models/upload` take either the one-shot multipart form
(fields and files together) or a JSON body that references files uploaded before through
`POST /api/upload/model` and `/image` (the upload page's two steps): ``file_id`` (or the
``file_url`` that upload returned), ``thumbnail_id`` / ``thumbnail_url``, and
``preview_image_ids`` / ``preview_images`` (URLs). Only the uploader can attach a file, and
only once (`documents.files.claim`).

Routing note: Tornado takes the first pattern that matches a path, whatever the method, so
one class owns `/api/models`: `ModelsHandler` here, which inherits `GET` (the catalog list)
from `handlers.models.ModelListHandler` and adds the `POST`.
"""
from __future__ import annotations

from bson import ObjectId

from documents import catalog, categories, model_writes
from documents import files as files_db
from documents import previews as previews_db
from documents.errors import Invalid
from handlers.base import multipart, responds, roles
from handlers.models import ModelListHandler
from handlers.previews import begin as begin_preview
from handlers.schemas_catalog import ModelOut
from handlers.uploads import CREATOR_ROLES, MAX_PREVIEWS, StreamedUpload
from storage import store
from storage.receive import FileSpec, ReceivedForm
from storage.validate import ANALYZABLE_FORMATS


class ModelCreateHandler(StreamedUpload):
    """`POST /api/models/upload` (and, through `ModelsHandler`, `POST /api/models`): create a
    model from a multipart form with its files (seed 000 §3)."""

    strict_form = True
    form_fields = tuple(catalog.NewModelSchema().fields)

    def file_specs(self) -> tuple[FileSpec, ...]:
        image = self.settings_.max_image_bytes
        return (FileSpec(("file", "model", "model_file"), self.settings_.max_model_bytes,
                         label="model file"),
                FileSpec(("thumbnail",), image, label="thumbnail"),
                FileSpec(("preview_images", "preview_images[]"), image, MAX_PREVIEWS,
                         label="preview image"))

    accepts_json = True

    @roles(*CREATOR_ROLES)
    @multipart(title="3–120 characters", description="text", price="decimal, e.g. 29.99",
               is_free="true/false", category="a category name",
               tags='JSON list or comma-separated', file="the model file (required)",
               thumbnail="an image (optional)", preview_images="0–8 images")
    @responds(ModelOut, status=201)
    async def post(self) -> None:
        """Create a model (seed 000 §3 `POST /api/models`): creators and staff only (403 for
        buyers, who switch with PUT /api/users/me). Fields validated with
        `documents.catalog.ModelFieldsSchema` (422), files checked, analysed and stored; the
        new model starts "pending". 201 with the model (owner's view).

        Or a JSON body (seed 001 §6, the upload page's two steps): the same fields plus
        ``file_id`` (or ``file_url``) of a `POST /api/upload/model`, ``thumbnail_id`` (or
        ``thumbnail_url``) and ``preview_image_ids`` (or ``preview_images``, URLs) of
        `POST /api/upload/image`. 422 for an unknown file, 403 FILE_NOT_OWNED for another
        user's upload, 409 FILE_ALREADY_ATTACHED for a file another model uses."""
        if self.json_chunks is not None:
            await self.create_from_json(self.json_body())
        else:
            await self.run(self.handle)

    async def create_from_json(self, body: dict) -> None:
        refs = await files_db.resolve_references(self.db, body, require_file=True)
        data = {k: v for k, v in body.items() if k not in files_db.REFERENCE_FIELDS}
        catalog.validate_fields(data, new=True)
        if await categories.get_active_by_name(self.db, data["category"]) is None:
            raise Invalid({"category": ["Unknown category"]})
        user, model_id = self.current_user, ObjectId()
        try:
            model_file = await files_db.claim(self.db, refs["file_id"], user, ("model",),
                                              model_id, "file_id")
            thumbnail = None
            if refs.get("thumbnail_id"):
                thumbnail = await files_db.claim(self.db, refs["thumbnail_id"], user,
                                                 files_db.IMAGE_KINDS, model_id, "thumbnail_id")
            previews = [await files_db.claim(self.db, ref, user, files_db.IMAGE_KINDS,
                                             model_id, "preview_image_ids")
                        for ref in refs.get("preview_image_ids", ())]
            if not model_file.get("preview"):
                await begin_preview(self.services, model_file, thumbnail=thumbnail is None)
            model = await model_writes.create_model(self.db, creator=user, data=data,
                                                    model_file=model_file, thumbnail=thumbnail,
                                                    previews=previews, model_id=model_id)
        except BaseException:
            await files_db.release(self.db, model_id)
            raise
        await previews_db.resync(self.db, model_file["_id"])
        model = await catalog.get_model(self.db, model_id)
        rendered = await catalog.render_models(self.db, [model], user)
        self.write_json(rendered[0], 201)

    async def handle(self, form: ReceivedForm) -> None:
        data = _form_data(form)
        catalog.validate_fields(data, new=True)
        if await categories.get_active_by_name(self.db, data["category"]) is None:
            raise Invalid({"category": ["Unknown category"]})
        part = self.required_file(form)
        stored, records = [], []
        try:
            model_file = await self._keep(stored, records, "model", part,
                                          lambda: store.store_model(self.services, part))
            thumbnail = await self._thumbnail(form, stored, records)
            previews = [await self._keep(stored, records, "image", p,
                                         self._image_maker(p, thumbnail=False))
                        for p in form.files.get("preview_images", [])]
            await begin_preview(self.services, model_file, thumbnail=thumbnail is None)
            model = await model_writes.create_model(self.db, creator=self.current_user, data=data,
                                                    model_file=model_file, thumbnail=thumbnail,
                                                    previews=previews)
        except BaseException:
            await self._undo(stored, records)
            raise
        await files_db.attach(self.db, [r["_id"] for r in records], model["_id"])
        analysis = model_file.get("analysis") or {}
        if not analysis.get("analyzed") and model_file["format"] in ANALYZABLE_FORMATS:
            # cut short (time limit, busy pool): analysed again in the background
            await self.services.jobs.enqueue("analyse_model", key=f"analyse:{model['_id']}",
                                             model_id=str(model["_id"]))
        await previews_db.resync(self.db, model_file["_id"])
        model = await catalog.get_model(self.db, model["_id"])
        rendered = await catalog.render_models(self.db, [model], self.current_user)
        self.write_json(rendered[0], 201)

    def _image_maker(self, part, *, thumbnail: bool, prefix: str = "images"):
        return lambda: store.store_image(self.services, part, prefix=prefix, thumbnail=thumbnail)

    async def _thumbnail(self, form: ReceivedForm, stored: list, records: list) -> dict | None:
        part = form.file("thumbnail")
        if part is None:
            return None
        return await self._keep(stored, records, "thumbnail", part,
                                self._image_maker(part, thumbnail=False, prefix="thumbnails"))

    async def _keep(self, stored: list, records: list, kind: str, part, make) -> dict:
        obj = await make()
        stored.append(obj)
        records.append(await self.record(obj, kind, part))
        return records[-1]

    async def _undo(self, stored: list, records: list) -> None:
        for record in records:
            await files_db.delete(self.db, record["_id"])
        await store.remove(self.services.storage, stored)


class ModelsHandler(ModelCreateHandler, ModelListHandler):
    """`/api/models`: GET lists (`handlers.models.ModelListHandler`), POST creates."""


def _form_data(form: ReceivedForm) -> dict:
    """Form fields as the schema's input: one value each, `tags` may repeat (a list)."""
    data: dict = {}
    for name, values in form.fields.items():
        data[name] = values if name == "tags" and len(values) > 1 else values[-1]
    return data



routes = [
    (r"/api/models", ModelsHandler),
    (r"/api/models/upload", ModelCreateHandler),
]
