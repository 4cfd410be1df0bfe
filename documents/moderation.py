"""Staff decisions on models, with what each decision causes (seed 000 §7, seed 001 §13;
docs/architecture.md §4 "Side effects beside the write").

A decision is the conditional state change of `model_writes` (a model: pending or rejected →
approved, pending or approved → rejected) or of `revisions` (a new file waiting for review on
a listed model). Once it is stored, the creator gets a notification (event
`model_approved`/`model_rejected` on their notifications channel) and an email, and the
decision is recorded as an admin action. Those follow-ups never undo or fail a stored
decision: a failure is logged. A staff removal (`remove`) is recorded the same way. A
decision reaches models, notifications, emails and the audit trail, so it lives above those
modules.
"""
from __future__ import annotations

import logging

from documents import (
    admin_actions,
    catalog,
    email_notices,
    model_removal,
    model_writes,
    notifications,
    revisions,
)
from realtime import channels

log = logging.getLogger("hwc3d.moderation")


async def approve(db, hub, mailer, model_id, moderator: dict, note: str | None = None) -> dict:
    """Approve a pending or rejected model, or the new file waiting for review on a listed
    model (which then replaces the live file); returns the model after the change. Raises
    NotFound MODEL_NOT_FOUND, Conflict INVALID_STATE (already approved with nothing waiting,
    also for the loser of two racing approvals)."""
    current = await catalog.get_model(db, model_id)
    if current["status"] == "approved" and current.get("pending_file"):
        model = await revisions.approve_file(db, current, moderator)
        await _decided(db, hub, mailer, model, moderator, channels.MODEL_APPROVED,
                       "Your new model file was approved",
                       f'The new file of "{model["title"]}" is now live.',
                       {"note": note, "file": True})
        return model
    model = await model_writes.approve(db, model_id, moderator)
    await _decided(db, hub, mailer, model, moderator, channels.MODEL_APPROVED,
                   "Your model was approved",
                   f'"{model["title"]}" is now live on the marketplace.', {"note": note})
    return model


async def reject(db, hub, mailer, model_id, moderator: dict, reason: str) -> dict:
    """Reject a pending or approved model with `reason`; on a listed model with a new file
    waiting for review, only that file is rejected (the model stays live). Returns the model
    after the change. Raises NotFound MODEL_NOT_FOUND, Conflict INVALID_STATE."""
    current = await catalog.get_model(db, model_id)
    if current["status"] == "approved" and current.get("pending_file"):
        model = await revisions.reject_file(db, current, reason)
        await _decided(db, hub, mailer, model, moderator, channels.MODEL_REJECTED,
                       "Your new model file was rejected",
                       f'The new file of "{model["title"]}" was not approved: {reason}',
                       {"reason": reason, "file": True})
        return model
    model = await model_writes.reject(db, model_id, moderator, reason)
    await _decided(db, hub, mailer, model, moderator, channels.MODEL_REJECTED,
                   "Your model was rejected", f'"{model["title"]}" was not approved: {reason}',
                   {"reason": reason})
    return model


async def remove(db, model_id, moderator: dict) -> tuple[dict, list[str]]:
    """Take a model off the platform as staff (seed 001 §13 "Delete model"; buyers do not
    stop staff: `model_removal.remove_model`) and record `model_deleted` with its title.
    Returns (the deleted model, storage keys of its media for the caller to delete). Raises
    NotFound MODEL_NOT_FOUND."""
    model, media_keys = await model_removal.remove_model(db, model_id, by_staff=True)
    await record(db, moderator, "model_deleted", model, {"title": model["title"]})
    return model, media_keys


async def record(db, moderator: dict, action_type: str, model: dict, details: dict) -> None:
    """Record a staff action on `model` (seed 000 §7 `AdminAction`); a failure is logged,
    the action itself stays stored."""
    await admin_actions.record_after(db, moderator, action_type, "model", model["_id"], details)


async def _decided(db, hub, mailer, model: dict, moderator: dict, kind: str, title: str,
                   message: str, details: dict) -> None:
    """Tell the creator (notification and email) and record the decision (module doc)."""
    try:
        await notifications.notify(
            db, hub, model["creator_id"], kind, title, message,
            data={"model_id": str(model["_id"])}, action_url=f"/model/{model['_id']}")
        await email_notices.model_decision(
            db, mailer, model, approved=kind == channels.MODEL_APPROVED,
            reason=details.get("reason"), note=details.get("note"),
            file=bool(details.get("file")))
    except Exception:
        log.exception("could not notify the creator of model %s", model["_id"])
    await record(db, moderator, kind, model, details)
