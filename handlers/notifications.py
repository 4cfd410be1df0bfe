"""Notification routes (seed 001 §18, seed 004 Notifications): list with `unread_count`,
mark one or all read, delete. Only the owner's notifications exist for a caller (others'
are 404). Notifications are created by `documents.notifications.notify`."""
from __future__ import annotations

from marshmallow import fields, validate

from documents import notifications
from handlers.base import ApiHandler, PageQuery, query, responds
from handlers.schemas_out import NotificationOut, NotificationPageOut, ReadAllOut


class NotificationsQuery(PageQuery):
    filter = fields.String(load_default="all", validate=validate.OneOf(("all", "unread")))
    type = fields.String(validate=validate.OneOf(notifications.TYPES))


class NotificationsHandler(ApiHandler):
    @query(NotificationsQuery)
    @responds(NotificationPageOut)
    async def get(self) -> None:
        """The caller's notifications, newest first: ``{notifications, items (the same list),
        unread_count, total, page, limit, pages}`` (seed 001 §18); `filter=all|unread`,
        optional `type`."""
        q, user_id = self.query, self.current_user["_id"]
        docs, meta = await notifications.list_for(
            self.db, user_id, unread_only=q["filter"] == "unread", page=q["page"],
            limit=q["limit"], type=q.get("type"))
        items = [notifications.render_notification(d) for d in docs]
        self.write_page(items, meta, notifications=items,
                        unread_count=await notifications.unread_count(self.db, user_id))


class NotificationReadHandler(ApiHandler):
    @responds(NotificationOut)
    async def put(self, notification_id: str) -> None:
        """Mark one notification read: 200 with it and the caller's new `unread_count`."""
        user_id = self.current_user["_id"]
        doc = await notifications.mark_read(self.db, user_id, notification_id)
        out = notifications.render_notification(doc)
        out["unread_count"] = await notifications.unread_count(self.db, user_id)
        self.write_json(out)


class NotificationsReadAllHandler(ApiHandler):
    @responds(ReadAllOut)
    async def put(self) -> None:
        """Mark every notification of the caller read: ``{"updated": n, "unread_count": 0}``."""
        updated = await notifications.mark_all_read(self.db, self.current_user["_id"])
        self.write_json({"updated": updated, "unread_count": 0})


class NotificationHandler(ApiHandler):
    @responds(status=204)
    async def delete(self, notification_id: str) -> None:
        """Delete one of the caller's notifications: 204; 404 for anyone else's."""
        await notifications.delete(self.db, self.current_user["_id"], notification_id)
        self.no_content()


routes = [
    (r"/api/notifications", NotificationsHandler),
    (r"/api/users/me/notifications", NotificationsHandler),
    (r"/api/dashboard/notifications", NotificationsHandler),
    (r"/api/notifications/read-all", NotificationsReadAllHandler),
    (r"/api/notifications/([^/]+)/read", NotificationReadHandler),
    (r"/api/notifications/([^/]+)", NotificationHandler),
]
