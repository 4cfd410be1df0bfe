"""Admin user management (seed 000 §7, seed 001 §13 `/app/admin/users`).

- `GET /api/admin/users` — the filtered list (same as `GET /api/users`)
- `GET/PUT/DELETE /api/admin/users/{ref}` — details with recent admin actions, change, delete
- `POST /api/admin/users/{ref}/ban` (reason), `/unban`, `/verify` (verified creator)

Every verb needs `users.manage` (admins, superadmins; moderators lack it); deleting needs
`users.delete` (superadmin). Each change is recorded in `admin_actions`.
"""
from __future__ import annotations

from marshmallow import fields, validate

from documents import admin_actions, users
from documents.errors import BadRequest
from handlers.base import ApiHandler, ApiSchema, body, query, responds, staff
from handlers.users import UserListQuery, UserPatchSchema, delete_user, list_users


class BanSchema(ApiSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class AdminUsersHandler(ApiHandler):
    @staff("users.manage")
    @query(UserListQuery)
    @responds(paginated=True)
    async def get(self):
        """Users with filters page, limit, search, user_type, is_verified, status (seed 000 §7)."""
        await list_users(self)


class AdminUserHandler(ApiHandler):
    @staff("users.manage")
    @responds()
    async def get(self, user_id_or_username):
        """One user in the admin view (email, status, ban) with its latest 20 admin actions."""
        user = await users.find_existing(self.db, user_id_or_username)
        out = users.render_private(user)
        out["recent_actions"] = await admin_actions.recent_for(self.db, "user", user["_id"])
        self.write_json(out)

    @staff("users.manage")
    @body(UserPatchSchema)
    @responds()
    async def put(self, user_id_or_username):
        """Change profile and account fields (is_active, is_verified, is_verified_creator,
        user_type; staff_role by a superadmin); recorded as `user_updated`."""
        target = await users.find_existing(self.db, user_id_or_username)
        user = await users.apply_changes(self.db, self.current_user, target, self.body)
        await admin_actions.record(self.db, self.current_user, "user_updated", "user",
                                   user["_id"], {"fields": sorted(self.body)})
        self.write_json(users.render_private(user))

    @staff("users.delete")
    async def delete(self, user_id_or_username):
        """Delete (anonymise) the account: superadmin only, never yourself (204)."""
        await delete_user(self, user_id_or_username)
        self.no_content()


async def _target(handler: ApiHandler, ref: str) -> dict:
    """The user to act on: exists, is not the admin, and is not staff unless `staff.manage`."""
    target = await users.find_existing(handler.db, ref)
    if target["_id"] == handler.current_user["_id"]:
        raise BadRequest("You cannot do this to your own account", "CANNOT_TARGET_SELF")
    users.check_changes(handler.current_user, target, {})
    return target


class BanHandler(ApiHandler):
    @staff("users.manage")
    @body(BanSchema)
    @responds()
    async def post(self, user_id_or_username):
        """Ban with a reason: refresh tokens revoked, access tokens answered 403 from the next
        request; 409 ALREADY_BANNED. Recorded as `user_banned`."""
        target = await _target(self, user_id_or_username)
        user = await users.ban(self.db, target["_id"], self.current_user, self.body["reason"])
        await admin_actions.record(self.db, self.current_user, "user_banned", "user",
                                   user["_id"], {"reason": self.body["reason"]})
        self.write_json(users.render_private(user))


class UnbanHandler(ApiHandler):
    @staff("users.manage")
    @body(ApiSchema)
    @responds()
    async def post(self, user_id_or_username):
        """Lift a ban (the user signs in again); 409 NOT_BANNED. Recorded as `user_unbanned`."""
        target = await _target(self, user_id_or_username)
        user = await users.unban(self.db, target["_id"])
        await admin_actions.record(self.db, self.current_user, "user_unbanned", "user",
                                   user["_id"])
        self.write_json(users.render_private(user))


class VerifyHandler(ApiHandler):
    @staff("users.manage")
    @body(ApiSchema)
    @responds()
    async def post(self, user_id_or_username):
        """Mark a creator as verified creator (idempotent); 400 NOT_A_CREATOR for buyers.
        Recorded as `user_verified` when it changed."""
        target = await users.find_existing(self.db, user_id_or_username)
        user, changed = await users.verify_creator(self.db, target["_id"])
        if changed:
            await admin_actions.record(self.db, self.current_user, "user_verified", "user",
                                       user["_id"])
        self.write_json(users.render_private(user))


routes = [
    (r"/api/admin/users", AdminUsersHandler),
    (r"/api/admin/users/([^/]+)", AdminUserHandler),
    (r"/api/admin/users/([^/]+)/ban", BanHandler),
    (r"/api/admin/users/([^/]+)/unban", UnbanHandler),
    (r"/api/admin/users/([^/]+)/verify", VerifyHandler),
]
