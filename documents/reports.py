"""Content reports (seed 000 §7 `ContentReport`, "Reports"; seed 001 §13 "Community
Management").

A report (`content_reports`)::

    {_id, reporter_id, content_type: "post"|"comment"|"model", content_id, post_id (comments),
     community_id (posts, comments), reason (one of REASONS), details (free text ≤ 500),
     status: "pending"|"resolved"|"dismissed", action: None|"remove"|"dismiss", notes,
     resolved_by, resolved_at, created_at}

One report per reporter and piece of content (unique index; 409 ALREADY_REPORTED). Staff
holding `reports.resolve` list them and resolve each once (conditional pending → resolved
or dismissed; 409 REPORT_NOT_PENDING otherwise). `action: "remove"` hides the content — a
post or comment is soft-deleted (counters fixed), a model is unpublished — and closes every
other pending report about the same content as resolved; `dismiss` closes this one only.
Each resolution is recorded as an admin action (`report_remove`, `report_dismiss`).
"""
from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents import admin_actions, catalog, model_writes, post_interactions, posts, users
from documents.common import paginate, render, require_id, utcnow
from documents.errors import Conflict, NotFound

REPORTS = "content_reports"
CONTENT_TYPES = ("post", "comment", "model")
STATUSES = ("pending", "resolved", "dismissed")
ACTIONS = ("remove", "dismiss")
REASONS = ("Spam/Self-promotion", "Harassment or bullying", "Hate speech",
           "Nudity or sexual content", "Violence or dangerous content",
           "Copyright infringement", "Misinformation", "Other")
MAX_DETAILS = 500
MAX_NOTES = 1000
PERMISSION = "reports.resolve"

INDEXES = {
    REPORTS: [
        IndexModel([("reporter_id", ASCENDING), ("content_type", ASCENDING),
                    ("content_id", ASCENDING)], unique=True),
        IndexModel([("status", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("content_type", ASCENDING), ("content_id", ASCENDING),
                    ("status", ASCENDING)]),
        IndexModel([("community_id", ASCENDING), ("status", ASCENDING)]),
    ]
}


async def create(db, reporter: dict, content_type: str, content_id: Any, *, reason: str,
                 details: str | None = None, community_id: Any = None,
                 post_id: Any = None) -> dict:
    """Store a pending report of `reporter` about one piece of content (the caller has
    checked that the content exists and is visible to the reporter). Returns it rendered.
    Raises Conflict ALREADY_REPORTED (409) when this reporter reported it before."""
    doc = {"reporter_id": reporter["_id"], "content_type": content_type,
           "content_id": content_id, "post_id": post_id, "community_id": community_id,
           "reason": reason, "details": details or None, "status": "pending", "action": None,
           "notes": None, "resolved_by": None, "resolved_at": None, "created_at": utcnow()}
    try:
        doc["_id"] = (await db[REPORTS].insert_one(doc)).inserted_id
    except DuplicateKeyError:
        raise Conflict("You have already reported this", "ALREADY_REPORTED") from None
    return render_report(doc, {reporter["_id"]: reporter})


def render_report(doc: dict, people: dict, content: dict | None = None) -> dict:
    """A report in API form with `reporter` (and `resolver`) cards and, when given, a
    `content` preview."""
    out = render(doc)
    out["reporter"] = users.render_brief(people.get(doc["reporter_id"]))
    out["resolver"] = users.render_brief(people.get(doc.get("resolved_by")))
    if content is not None:
        out["content"] = content
    return out


async def _previews(db, docs: list[dict]) -> dict:
    """``{(content_type, content_id): preview}`` for the listed reports: the reported text
    (post or comment) or model title, its author and whether it is still visible."""
    out: dict = {}
    post_ids = [d["content_id"] for d in docs if d["content_type"] == "post"]
    for p in await posts.get_many_brief(db, post_ids):
        out[("post", p["_id"])] = {"text": p["content"][:280], "author_id": str(p["author_id"]),
                                   "is_removed": bool(p.get("is_deleted"))}
    for d in docs:
        if d["content_type"] == "comment" and d.get("post_id"):
            comment = await post_interactions.comment_of(db, d["post_id"], d["content_id"])
            if comment:
                out[("comment", d["content_id"])] = {
                    "text": comment["content"][:280], "author_id": str(comment["author_id"]),
                    "is_removed": bool(comment.get("is_deleted"))}
    model_ids = [d["content_id"] for d in docs if d["content_type"] == "model"]
    for m in (await catalog.get_many(db, model_ids)).values():
        out[("model", m["_id"])] = {"text": m["title"], "author_id": str(m["creator_id"]),
                                    "is_removed": not catalog.is_public(m)}
    return out


async def list_page(db, *, page: int, limit: int, status: str | None = None,
                    content_type: str | None = None) -> tuple[list[dict], dict]:
    """One page of reports, newest first, filtered by `status` and `content_type`; each with
    reporter/resolver cards and a `content` preview (None once the content is gone)."""
    query: dict = {}
    if status:
        query["status"] = status
    if content_type:
        query["content_type"] = content_type
    docs, meta = await paginate(db[REPORTS], query, page=page, limit=limit,
                                sort=[("created_at", DESCENDING), ("_id", DESCENDING)])
    people = await users.get_many(db, [d["reporter_id"] for d in docs]
                                  + [d.get("resolved_by") for d in docs])
    previews = await _previews(db, docs)
    return [render_report(d, people, previews.get((d["content_type"], d["content_id"])))
            for d in docs], meta


async def _hide(db, report: dict, moderator: dict) -> None:
    """Hide the reported content: soft-delete a post or comment, unpublish a model."""
    kind, cid = report["content_type"], report["content_id"]
    if kind == "post":
        await posts.remove(db, cid, moderator)
    elif kind == "comment":
        holder = report.get("post_id")
        if holder is None:
            holder = (await post_interactions.find_comment_anywhere(db, cid) or {}).get("_id")
        if holder is not None:
            await post_interactions.remove_comment(db, holder, cid)
    elif kind == "model":
        model = await catalog.find_model(db, cid)
        if model is not None and model.get("is_published"):
            await model_writes.toggle_publish(db, model)


async def resolve(db, report_id: Any, moderator: dict, action: str,
                  notes: str | None = None) -> dict:
    """Resolve a pending report (seed 000 §7 PUT /api/admin/reports/{id}/resolve).

    `action` "remove": the content is hidden, this report and every other pending report of
    the same content become `resolved`; "dismiss": this report becomes `dismissed`. Then
    the admin action ``report_<action>`` ``{content_type, content_id}`` is recorded (a
    failure is logged). Returns the report rendered. Raises NotFound REPORT_NOT_FOUND,
    Conflict REPORT_NOT_PENDING.
    """
    oid = require_id(report_id, "Report")
    now = utcnow()
    closing = {"status": "resolved" if action == "remove" else "dismissed", "action": action,
               "notes": notes or None, "resolved_by": moderator["_id"], "resolved_at": now}
    doc = await db[REPORTS].find_one_and_update({"_id": oid, "status": "pending"},
                                                {"$set": closing},
                                                return_document=ReturnDocument.AFTER)
    if doc is None:
        if await db[REPORTS].find_one({"_id": oid}, {"_id": 1}) is None:
            raise NotFound("Report not found", "REPORT_NOT_FOUND")
        raise Conflict("This report has already been handled", "REPORT_NOT_PENDING")
    if action == "remove":
        await _hide(db, doc, moderator)
        await db[REPORTS].update_many(
            {"content_type": doc["content_type"], "content_id": doc["content_id"],
             "status": "pending"}, {"$set": closing})
    report = render_report(doc, await users.get_many(db, [doc["reporter_id"], moderator["_id"]]))
    await admin_actions.record_after(db, moderator, f"report_{action}", "report", doc["_id"],
                                     {"content_type": report["content_type"],
                                      "content_id": report["content_id"]})
    return report



async def count_pending(db, *, community_id) -> int:
    """How many reports about content of `community_id` are still pending."""
    return await db[REPORTS].count_documents({"community_id": community_id, "status": "pending"})


async def dismiss_for_community(db, community_id, notes: str) -> int:
    """Dismiss the pending reports about content of `community_id` (which is gone) with
    `notes`; returns how many."""
    result = await db[REPORTS].update_many(
        {"community_id": community_id, "status": "pending"},
        {"$set": {"status": "dismissed", "action": "dismiss", "resolved_at": utcnow(),
                  "notes": notes}})
    return result.modified_count
