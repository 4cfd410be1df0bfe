"""Preview state of model files and of the models that show them (seed 000 `Model.file_url`,
docs/architecture.md §7).

A model file's `files` record carries ``preview: {preview_status, preview_url, preview_key,
preview_faces, preview_vertices, preview_simplified, thumbnails, thumbnail_keys,
preview_error, updated_at}`` (see `storage.preview`). A model copies the public part of it:

    preview_status: "ready" | "processing" | "failed" | "unsupported"
    preview_url, file_url (= preview_url: what a browser viewer loads; the original file
    stays private), and, when the creator gave no thumbnail, the rendered
    thumbnail_url (640×480) and thumbnails {thumbnail, card, detail} with thumbnail_auto: true.

A creator's own thumbnail always wins: a rendered one is only written where the model has no
thumbnail or an automatic one. A file that replaces the live one of an approved model waits
in `pending_file` (with its own preview fields) until staff approve it.
"""
from __future__ import annotations

from documents import catalog, files
from documents.common import utcnow

FILES = files.COLLECTION
BUILD_JOB = "build_preview"  # the job that builds a preview (README "Background jobs")


def job_key(file_id) -> str:
    """The job key of the preview build of file record `file_id` (one file version): a
    second enqueue while the build waits or runs is a no-op."""
    return f"preview:{file_id}"


def model_fields(preview: dict | None) -> dict:
    """The fields a model shows of its file's `preview` (None: not built yet)."""
    preview = preview or {"preview_status": "processing"}
    url = preview.get("preview_url") if preview.get("preview_status") == "ready" else None
    return {"preview_status": preview.get("preview_status", "processing"),
            "preview_url": url, "file_url": url}


def thumbnail_fields(preview: dict | None) -> dict:
    """The automatic thumbnail fields of a model from its file's `preview`, or {}."""
    thumbs = (preview or {}).get("thumbnails")
    if not thumbs:
        return {}
    return {"thumbnail_url": thumbs.get("thumbnail"), "thumbnails": thumbs,
            "thumbnail_auto": True}


async def mark(db, file_id, preview: dict) -> None:
    """Store `preview` (fields of `storage.preview`) on the file record `file_id`."""
    await db[FILES].update_one({"_id": file_id},
                               {"$set": {"preview": {**preview, "updated_at": utcnow()}}})


async def apply(db, file_id, preview: dict) -> bool:
    """Record a finished `preview` of file `file_id` on the file and on every model showing
    it: live (`file_id`) or waiting for review (`pending_file.file_id`). False when the file
    record is gone (its upload was undone), so the caller can drop what it stored."""
    result = await db[FILES].update_one(
        {"_id": file_id}, {"$set": {"preview": {**preview, "updated_at": utcnow()}}})
    if result.matched_count == 0:
        return False
    await catalog.show_preview(db, file_id, model_fields(preview), thumbnail_fields(preview))
    return True


async def resync(db, file_id) -> None:
    """Copy the file's preview onto its models again when it finished before they were
    written (a small file's preview can beat the insert of its model)."""
    preview = await preview_of(db, file_id)
    if preview and preview.get("preview_status") != "processing":
        await apply(db, file_id, preview)


async def preview_of(db, file_id) -> dict | None:
    """The `preview` of the file record `file_id`, or None."""
    doc = await db[FILES].find_one({"_id": file_id}, {"preview": 1})
    return (doc or {}).get("preview")


async def to_build(db, file_id) -> dict | None:
    """The model file record `file_id` (``{_id, key, format, preview}``) while its preview is
    still "processing", else None (built already, failed for good, or the upload was undone):
    what the preview job (README "Background jobs") builds, so that a re-run builds nothing
    twice."""
    return await db[FILES].find_one(
        {"_id": file_id, "kind": "model", "preview.preview_status": "processing"},
        {"key": 1, "format": 1, "preview": 1})


async def unfinished(db, limit: int = 500, *, older_than=None) -> list[dict]:
    """Model file records whose preview never finished (its job was lost with the process
    or given up by the queue), marked before `older_than` (a UTC datetime; None: any):
    ``[{_id, key, format, preview}]`` to build again."""
    query = {"kind": "model", "preview.preview_status": "processing"}
    if older_than is not None:
        query["preview.updated_at"] = {"$lt": older_than}
    cursor = db[FILES].find(query, {"key": 1, "format": 1, "preview": 1}).limit(limit)
    return await cursor.to_list(length=limit)
