"""Admin user management (seed 000 §7, seed 001 §13 `/app/admin/users`).

- `GET /api/admin/users` — the filtered list (same as `GET /api/users`)
- `GET/PUT/DELETE /api/admin/users/{ref}` — details with recent admin actions, change, delete
- `POST /api/admin/users/{ref}/ban` (reason), `/unban`, `/verify` (verified creator)

Every verb needs `users.manage` (admins, superadmins; moderators lack it); deleting needs
`users.delete` (superadmin). Each change is recorded in `admin_actions`.
"""
from __future__ import annotations

from marshmallow import fields, validate

from documents import account_lifecycle, admin_actions, user_admin, users
from documents.errors import BadRequest
from handlers.base import ApiHandler, ApiSchema, body, query, responds, staff
from handlers.schemas_out import UserOut
from handlers.users import (
    UserListQuery,
    UserPatchSchema,
    delete_user,
    disconnect_if_deactivated,
    user_page,
)


class BanSchema(ApiSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class AdminUsersHandler(ApiHandler):
    @staff("users.manage")
    @query(UserListQuery)
    @responds(UserOut, paginated=True)
    async def get(self):
        """Users with filters page, limit, search, user_type, is_verified, status (seed 000 §7)."""
        items, meta = await user_page(self)
        self.write_page(items, meta)


class AdminUserHandler(ApiHandler):
    @staff("users.manage")
    @responds(UserOut)
    async def get(self, user_id_or_username):
        """One user in the admin view (email, status, ban) with its latest 20 admin actions."""
        user = await users.find_existing(self.db, user_id_or_username)
        out = users.render_private(user)
        out["recent_actions"] = await admin_actions.recent_for(self.db, "user", user["_id"])
        self.write_json(out)

    @staff("users.manage")
    @body(UserPatchSchema)
    @responds(UserOut)
    async def put(self, user_id_or_username):
        """Change profile and account fields (is_active, is_verified, is_verified_creator,
        user_type; staff_role by a superadmin); recorded as `user_updated`. 409
        USERNAME_ALREADY_EXISTS for a taken username."""
        target = await users.find_existing(self.db, user_id_or_username)
        user = await account_lifecycle.apply_changes(self.db, self.current_user, target, self.body)
        await disconnect_if_deactivated(self, target, user)
        self.write_json(users.render_private(user))

    @staff("users.delete")
    @responds(status=204)
    async def delete(self, user_id_or_username):
        """Delete (anonymise) the account: superadmin only (204).

        400 CANNOT_DELETE_SELF for your own account; 404 for an unknown one.
        """
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
    @responds(UserOut)
    async def post(self, user_id_or_username):
        """Ban with a reason: refresh tokens revoked, access tokens answered 403 from the next
        request; 409 ALREADY_BANNED. Recorded as `user_banned`."""
        target = await _target(self, user_id_or_username)
        user = await account_lifecycle.ban(self.db, target["_id"], self.current_user, self.body["reason"])
        await self.services.hub.disconnect(user["_id"], reason="Account banned")
        self.write_json(users.render_private(user))


class UnbanHandler(ApiHandler):
    @staff("users.manage")
    @body(ApiSchema)
    @responds(UserOut)
    async def post(self, user_id_or_username):
        """Lift a ban (the user signs in again); 409 NOT_BANNED. Recorded as `user_unbanned`."""
        target = await _target(self, user_id_or_username)
        user = await user_admin.unban(self.db, target["_id"], self.current_user)
        self.write_json(users.render_private(user))


class VerifyHandler(ApiHandler):
    @staff("users.manage")
    @body(ApiSchema)
    @responds(UserOut)
    async def post(self, user_id_or_username):
        """Mark a creator as verified creator (idempotent); 400 NOT_A_CREATOR for buyers.
        Recorded as `user_verified` when it changed."""
        target = await users.find_existing(self.db, user_id_or_username)
        user, _changed = await user_admin.verify_creator(self.db, target["_id"], self.current_user)
        self.write_json(users.render_private(user))


routes = [
    (r"/api/admin/users", AdminUsersHandler),
    (r"/api/admin/users/([^/]+)", AdminUserHandler),
    (r"/api/admin/users/([^/]+)/ban", BanHandler),
    (r"/api/admin/users/([^/]+)/unban", UnbanHandler),
    (r"/api/admin/users/([^/]+)/verify", VerifyHandler),
]
