"""Starting the preview build of a model file after its upload was answered
(docs/architecture.md §7, README "Background jobs").

`begin(services, record, thumbnail=...)` marks the `files` record `record` as "processing"
(or "unsupported" for FBX/BLEND) and enqueues the `build_preview` job (`jobs.work`) under
the key of that file version (`documents.previews.job_key`), so a second enqueue is a no-op.
The job builds the preview in the preview worker, is retried with backoff, and ends with
`preview_status: "failed"` after its last try; a job lost with a killed instance is run
again by the queue. `resume(services)` enqueues again the previews left "processing" when
the queue is the in-process one (its jobs end with the process).
"""
from __future__ import annotations

import logging
from typing import Any

from documents import previews as previews_db
from storage import preview as preview_store

log = logging.getLogger("hwc3d.preview")


async def begin(services: Any, record: dict, *, thumbnail: bool = True) -> dict:
    """Mark `record` (a model file) and enqueue the build of its preview; returns the preview
    fields as they are now (``{"preview_status": "processing" | "unsupported"}``)."""
    state = preview_store.pending(record.get("format"))
    await previews_db.mark(services.db, record["_id"], state)
    record["preview"] = state
    if state["preview_status"] == "processing":
        await enqueue(services, record["_id"], thumbnail=thumbnail)
    return state


async def enqueue(services: Any, file_id, *, thumbnail: bool = True) -> bool:
    """Enqueue the preview build of file record `file_id`; False when one waits or runs, or
    when the queue cannot be reached (Redis away: the file stays "processing" and the
    periodic `reclaim_stranded` job enqueues it later). Never raises."""
    try:
        return await services.jobs.enqueue(previews_db.BUILD_JOB,
                                           key=previews_db.job_key(file_id),
                                           file_id=str(file_id), thumbnail=thumbnail)
    except Exception:
        log.warning("could not queue the preview of file %s; it waits for the reclaim job",
                    file_id, exc_info=True)
        return False


async def resume(services: Any) -> None:
    """Enqueue again the previews left "processing" by a stopped process. Only the
    in-process queue needs it: with Redis the jobs outlive the process, and the periodic
    `reclaim_stranded` job enqueues those whose job was given up."""
    if services.jobs.redis is not None:
        return
    for record in await previews_db.unfinished(services.db):
        await enqueue(services, record["_id"])
