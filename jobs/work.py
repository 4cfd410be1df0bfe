"""The job functions. Each takes saq's context (``ctx["services"]``: the instance's
`composition.Services`; ``ctx["job"]``: the saq job) and keyword arguments, calls the
`documents/` and `storage/` functions that hold the rules, and is safe to run again after a
crash (each step is idempotent there)."""
from __future__ import annotations

import logging
import tempfile
from datetime import timedelta
from pathlib import Path

from bson import ObjectId

from documents import (
    catalog,
    earnings,
    email_notices,
    files,
    model_writes,
    notifications,
    orphan_files,
    previews,
    reclaim,
    renewals,
    users,
)
from documents.common import utcnow
from storage import preview as preview_store
from storage.store import delete_key

log = logging.getLogger("hwc3d.jobs")


def _last_try(ctx) -> bool:
    job = ctx.get("job")
    return job is None or job.attempts >= job.retries


async def deliver_email(ctx, *, email_id: str) -> int:
    """Deliver one queued email (`documents.outbox.Mailer.deliver`); raises to retry."""
    return await ctx["services"].mailer.deliver([email_id], last_try=_last_try(ctx))


async def deliver_batch(ctx, *, email_ids: list[str]) -> int:
    """Deliver a batch of a bulk send over one connection; raises to retry the rest."""
    return await ctx["services"].mailer.deliver(email_ids, last_try=_last_try(ctx))


async def analyse_model(ctx, *, model_id: str) -> bool:
    """Analyse the stored file of model `model_id` again (trimesh, in the analysis pool) and
    store the figures on the file and the model. False when the model or file is gone."""
    from storage.analysis import analyze_model

    services = ctx["services"]
    db = services.db
    model = await catalog.find_model(db, ObjectId(model_id))
    record = await files.find(db, model.get("file_id")) if model else None
    if record is None:
        return False
    with tempfile.TemporaryDirectory(dir=services.settings.data_dir) as workdir:
        path = Path(workdir) / f"model.{record['format'].lower()}"
        await services.storage.download_to(record["key"], path)
        analysis = await analyze_model(services, path, record["format"])
    await files.set_analysis(db, record["_id"], analysis)
    await model_writes.show_analysis(db, model["_id"], {**record, "analysis": analysis})
    return True


class PreviewFailed(Exception):
    """A preview build that failed: retried with backoff; after the last try (recorded as
    `preview_status: "failed"`) the job is a dead letter."""


async def build_preview(ctx, *, file_id: str, thumbnail: bool = True) -> str:
    """Build the web preview of model file record `file_id` (24-hex) and, with `thumbnail`,
    its rendered thumbnails, in the preview worker process (`storage.preview.make_preview`,
    docs/architecture.md §7), and record them on the file and its models
    (`documents.previews.apply`). Returns the `preview_status` written ("ready",
    "unsupported"), or "skipped" when the file is gone or no longer "processing" (a re-run
    after a crash builds nothing twice). A failed try raises `PreviewFailed` (or the storage
    error) to be retried; the last one records ``{"preview_status": "failed",
    "preview_error": <reason>, "preview_tries": n}`` and raises `PreviewFailed` too, so the
    job is a dead letter (`GET /api/admin/jobs`)."""
    services = ctx["services"]
    record = await previews.to_build(services.db, ObjectId(file_id))
    if record is None:
        return "skipped"
    try:
        result = await preview_store.make_preview(services, record["key"], record["format"],
                                                  thumbnail=thumbnail)
    except Exception as exc:  # the stored file could not be read
        if not _last_try(ctx):
            raise
        log.exception("preview of %s failed", record["key"])
        result = {"preview_status": "failed", "preview_error": type(exc).__name__}
    failed = result["preview_status"] == "failed"
    if failed:
        if not _last_try(ctx):
            raise PreviewFailed(result["preview_error"])
        job = ctx.get("job")
        result["preview_tries"] = job.attempts if job is not None else 1
    if not await previews.apply(services.db, record["_id"], result):
        for key in [result.get("preview_key"), *(result.get("thumbnail_keys") or ())]:
            await delete_key(services.storage, key)
    elif failed:  # recorded; the job itself ends as a dead letter
        raise PreviewFailed(result["preview_error"])
    return result["preview_status"]


async def renew_subscriptions(ctx) -> dict:
    """Charge the subscriptions whose period ended (`documents.renewals`)."""
    services = ctx["services"]
    s = services.settings
    return await renewals.renew_due(services.db, services.payments, services.mailer,
                                    tries=s.renewal_tries,
                                    retry_after=timedelta(hours=s.renewal_retry_hours))


async def release_earnings(ctx) -> int:
    """Release matured earnings of every seller, then tell each seller whose funds became
    available (a `funds_available` notification and an email), once per released line."""
    services = ctx["services"]
    db = services.db
    moved = await earnings.release_all(db)
    for seller_id, cents in await earnings.claim_funds_notices(db):
        amount = f"{cents / 100:.2f} USD"
        await notifications.notify(
            db, services.hub, seller_id, "funds_available", "Funds available",
            f"{amount} of your earnings can now be paid out.",
            data={"amount": cents / 100}, action_url="/dashboard/earnings")
        await email_notices.funds_available(services.mailer, await users.get(db, seller_id),
                                            amount)
    return moved


async def reclaim_stranded(ctx) -> dict:
    """Give back coupon uses and payout amounts that a crash stranded (`documents.reclaim`),
    and queue again the emails whose delivery job was lost (`Mailer.requeue_lost`) and the
    previews left "processing" for 30 min (a no-op while their job waits or runs)."""
    services = ctx["services"]
    stale = await previews.unfinished(services.db, older_than=utcnow() - timedelta(minutes=30))
    requeued = 0
    for record in stale:
        requeued += await services.jobs.enqueue(
            previews.BUILD_JOB, key=previews.job_key(record["_id"]), file_id=str(record["_id"]))
    return {"coupon_uses": await reclaim.reclaim_coupons(services.db),
            "payout_cents": await reclaim.reclaim_payouts(services.db),
            "emails": await services.mailer.requeue_lost(), "previews": requeued}


async def delete_unattached(ctx) -> int:
    """Delete uploads that nothing uses after UNATTACHED_UPLOAD_HOURS (`documents.orphan_files`)."""
    services = ctx["services"]
    return await orphan_files.delete_unattached(
        services.db, services.storage,
        older_than=timedelta(hours=services.settings.unattached_upload_hours), now=utcnow())
