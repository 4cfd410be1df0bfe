"""User routes: own profile and settings, public profiles, follows, user administration.

Issue 2 item 7; seed 000 §2 (User Management), seed 001 §7 (Settings, Social) and §13.

- `GET/PUT /api/users/me`, `PUT /api/users/me/password`, `DELETE /api/users/me/account`
- `GET /api/users/{ref}` (public profile; `ref` is an id or a username)
- `POST/DELETE /api/users/{ref}/follow`, `GET /api/users/{ref}/followers|following`,
  `GET /api/users/me/followers|following`
- administration: `GET/POST /api/users`, `PATCH/DELETE /api/users/{ref}`

A password change ends every other session and answers with a fresh token pair (the
caller stays signed in, like a login response): old access and refresh tokens stop working.
"""
from __future__ import annotations

from marshmallow import fields, pre_load, validate

from documents import admin_actions, follows, notifications, sessions, users
from documents.errors import BadRequest
from handlers.base import (
    ApiHandler,
    ApiSchema,
    PageQuery,
    body,
    public,
    query,
    responds,
    staff,
)

URL = {"schemes": {"http", "https"}, "require_tld": False}


def _url(**kw) -> fields.Url:
    return fields.Url(allow_none=True, validate=validate.Length(max=500), **URL, **kw)


def _text(max_len: int) -> fields.String:
    return fields.String(allow_none=True, validate=validate.Length(max=max_len))


def _tags() -> fields.List:
    return fields.List(fields.String(validate=validate.Length(min=1, max=50)),
                       validate=validate.Length(max=30))


HANDLE = r"^@?[A-Za-z0-9_.]{1,30}$|^https?://\S{1,480}$"


class ProfileSchema(ApiSchema):
    """PUT /api/users/me: the fields a user changes on themselves (seed 000 §2 `UserProfile`).

    Every field is optional (a partial update); `null` or `""` clears an optional field.
    """

    full_name = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    bio = _text(500)
    avatar_url = _url()
    username = fields.String(validate=validate.Regexp(
        users.USERNAME_RE, error="3–30 letters, digits, '_', '.' or '-'"))
    user_type = fields.String(validate=validate.OneOf(users.USER_TYPES))
    phone = fields.String(allow_none=True, validate=validate.Regexp(
        r"^\+?[0-9 ()\-.]{5,32}$", error="Not a phone number"))
    country = _text(64)
    city = _text(64)
    website = _url()
    twitter = fields.String(allow_none=True, validate=validate.Regexp(
        HANDLE, error="A handle (@name) or an http(s) URL"))
    instagram = fields.String(allow_none=True, validate=validate.Regexp(
        HANDLE, error="A handle (@name) or an http(s) URL"))
    portfolio_url = _url()
    skills = _tags()
    software = _tags()

    @pre_load
    def blank_is_null(self, data, **_kw):
        """Strip strings; an empty optional string means "clear it" (null)."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, value in data.items():
            if isinstance(value, str):
                value = value.strip()
                out[name] = None if value == "" and name not in ("username", "user_type") else value
        return out


class UserPatchSchema(ProfileSchema):
    """PATCH /api/users/{ref}, PUT /api/admin/users/{ref}: profile fields plus account fields
    that only admins change (seed 000 §7): user_type, staff_role, is_active, is_verified,
    is_verified_creator."""

    staff_role = fields.String(allow_none=True, validate=validate.OneOf(users.STAFF_ROLES))
    is_active = fields.Boolean()
    is_verified = fields.Boolean()
    is_verified_creator = fields.Boolean()


class PasswordChangeSchema(ApiSchema):
    current_password = fields.String(required=True, validate=validate.Length(min=1, max=200))
    new_password = fields.String(required=True, validate=validate.Length(min=1, max=200))


class AccountDeleteSchema(ApiSchema):
    """DELETE /api/users/me/account: `password`, or `confirm: "DELETE"` for OAuth-only accounts."""

    password = fields.String(validate=validate.Length(min=1, max=200))
    confirm = fields.String(validate=validate.Length(max=20))


class UserListQuery(PageQuery):
    """GET /api/users, /api/admin/users (seed 000 §7: page, limit, search, user_type,
    is_verified, status)."""

    search = fields.String(validate=validate.Length(max=100))
    user_type = fields.String(validate=validate.OneOf(users.USER_TYPES))
    is_verified = fields.Boolean()
    status = fields.String(validate=validate.OneOf(("active", "banned", "inactive")))


class UserCreateSchema(ApiSchema):
    """POST /api/users (admin): a new account with a password."""

    email = fields.Email(required=True, validate=validate.Length(max=254))
    username = fields.String(required=True, validate=validate.Regexp(
        users.USERNAME_RE, error="3–30 letters, digits, '_', '.' or '-'"))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200))
    full_name = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    user_type = fields.String(load_default="buyer", validate=validate.OneOf(users.USER_TYPES))
    staff_role = fields.String(allow_none=True, validate=validate.OneOf(users.STAFF_ROLES))
    is_verified = fields.Boolean(load_default=False)


# --------------------------------------------------------------------------- own account

class MeHandler(ApiHandler):
    @responds()
    async def get(self):
        """The current user with private fields (email, account state, `profile`)."""
        self.write_json(users.render_private(self.current_user))

    @body(ProfileSchema)
    @responds()
    async def put(self):
        """Update own profile fields (partial); buyer → creator allowed, never to staff.

        409 USERNAME_ALREADY_EXISTS for a taken username, 403 for creator → buyer.
        """
        user = await users.apply_changes(self.db, self.current_user, self.current_user, self.body)
        self.write_json(users.render_private(user))


class PasswordHandler(ApiHandler):
    rate_limit = "auth"

    @body(PasswordChangeSchema)
    @responds()
    async def put(self):
        """Change the password (same policy as registration: 8–72 bytes, a letter and a digit).

        Ends every session of the user, then answers `{"detail", "user", access_token,
        refresh_token, token_type, expires_in}` for a fresh one. 400 INVALID_PASSWORD for a
        wrong current password, 422 for a weak new one, 400 NO_PASSWORD for OAuth-only accounts.
        """
        user = await users.change_password(
            self.db, self.current_user, self.body["current_password"],
            self.body["new_password"], self.settings_.bcrypt_rounds)
        await sessions.end_all_sessions(self.db, user["_id"])
        await sessions.revoke_access_token(self.db, self.claims)
        pair = await sessions.start_session(self.db, self.settings_, user)
        self.write_json({"detail": "Password changed", "user": users.render_private(user), **pair})


class AccountHandler(ApiHandler):
    rate_limit = "auth"

    @body(AccountDeleteSchema)
    async def delete(self):
        """Delete the own account after confirmation; personal data removed, sessions ended (204)."""
        user = self.current_user
        await users.confirm_deletion(user, self.body.get("password"), self.body.get("confirm"))
        await users.delete_account(self.db, user["_id"])
        await sessions.revoke_access_token(self.db, self.claims)
        self.no_content()


class MyFollowersHandler(ApiHandler):
    direction = "followers"

    @query(PageQuery)
    @responds(paginated=True)
    async def get(self):
        """Own followers (or followings) as brief user cards with `followed_at`, newest first
        (seed 001 §7 Social)."""
        cards, meta = await follows.page_of(self.db, self.current_user["_id"], self.direction,
                                            page=self.query["page"], limit=self.query["limit"])
        self.write_page(cards, meta)


class MyFollowingHandler(MyFollowersHandler):
    direction = "following"


# --------------------------------------------------------------------------- public profiles, follows

class UserHandler(ApiHandler):
    @public
    @responds()
    async def get(self, user_id_or_username):
        """A public profile by id or username (no email, phone or account state); 404 when
        unknown, deleted, deactivated or banned. `is_following` tells whether the caller follows."""
        user = await users.find_visible(self.db, user_id_or_username)
        out = users.render_public(user)
        me = self.current_user
        out["is_following"] = (await follows.is_following(self.db, me["_id"], user["_id"])
                               if me else None)
        self.write_json(out)

    @body(UserPatchSchema)
    @responds()
    async def patch(self, user_id_or_username):
        """Change a user: own profile fields by the user; account fields by admins, staff roles
        by superadmins (403 otherwise). Admin changes are recorded as `user_updated`."""
        target = await users.find_existing(self.db, user_id_or_username)
        user = await users.apply_changes(self.db, self.current_user, target, self.body)
        if target["_id"] != self.current_user["_id"]:
            await admin_actions.record(self.db, self.current_user, "user_updated", "user",
                                       target["_id"], {"fields": sorted(self.body)})
        self.write_json(users.render_private(user))

    @staff("users.delete")
    async def delete(self, user_id_or_username):
        """Delete (anonymise) another account: superadmin only, never yourself (204)."""
        await delete_user(self, user_id_or_username)
        self.no_content()


async def delete_user(handler: ApiHandler, ref: str) -> None:
    """Shared by DELETE /api/users/{ref} and /api/admin/users/{ref}: delete, record."""
    target = await users.find_existing(handler.db, ref)
    if target["_id"] == handler.current_user["_id"]:
        raise BadRequest("Delete your own account with DELETE /api/users/me/account",
                         "CANNOT_DELETE_SELF")
    users.check_changes(handler.current_user, target, {})
    await users.delete_account(handler.db, target["_id"])
    await admin_actions.record(handler.db, handler.current_user, "user_deleted", "user",
                               target["_id"], {"username": target["username"]})


class FollowHandler(ApiHandler):
    @responds(status=201)
    async def post(self, user_id_or_username):
        """Follow a user (seed 000 §2): 201 `{is_following, user, followers_count}`;
        400 CANNOT_FOLLOW_SELF, 409 ALREADY_FOLLOWING, 404 unknown user. The followed user
        gets a `new_follower` notification."""
        me = self.current_user
        target = await users.find_visible(self.db, user_id_or_username)
        await follows.follow(self.db, me, target)
        await notifications.notify(
            self.db, self.services.hub, target["_id"], "new_follower", "New follower",
            f"{me['username']} started following you",
            data={"follower_id": str(me["_id"]), "follower_username": me["username"],
                  "follower": users.render_brief(me)},
            action_url=f"/profile/{me['username']}")
        await self._answer(target["_id"], True, 201)

    @responds()
    async def delete(self, user_id_or_username):
        """Unfollow a user: 200 `{is_following: false, user, followers_count}`;
        404 NOT_FOLLOWING when the caller did not follow them."""
        target = await users.find(self.db, user_id_or_username)
        await follows.unfollow(self.db, self.current_user, target)
        await self._answer(target["_id"], False, 200)

    async def _answer(self, user_id, following: bool, status: int) -> None:
        user = await users.get(self.db, user_id)
        self.write_json({"is_following": following, "user": users.render_brief(user),
                         "followers_count": user.get("followers_count", 0)}, status)


class FollowersHandler(ApiHandler):
    direction = "followers"

    @public
    @query(PageQuery)
    @responds(paginated=True)
    async def get(self, user_id_or_username):
        """Followers (or followings) of a public profile as brief user cards, newest first."""
        user = await users.find_visible(self.db, user_id_or_username)
        cards, meta = await follows.page_of(self.db, user["_id"], self.direction,
                                            page=self.query["page"], limit=self.query["limit"])
        self.write_page(cards, meta)


class FollowingHandler(FollowersHandler):
    direction = "following"


# --------------------------------------------------------------------------- administration

class UsersHandler(ApiHandler):
    @staff("users.manage")
    @query(UserListQuery)
    @responds(paginated=True)
    async def get(self):
        """The admin user list: search (username, email, full name), user_type, is_verified,
        status active|banned|inactive; newest first, admin view of each user."""
        await list_users(self)

    @staff("users.manage")
    @body(UserCreateSchema)
    @responds(status=201)
    async def post(self):
        """Create an account with a password (201); `staff_role` only by a superadmin (403)."""
        user = await users.create_by_admin(self.db, self.current_user, self.body,
                                           self.settings_.bcrypt_rounds)
        await admin_actions.record(self.db, self.current_user, "user_created", "user",
                                   user["_id"], {"staff_role": user.get("staff_role")})
        self.write_json(users.render_private(user), 201)


async def list_users(handler: ApiHandler) -> None:
    """Shared by GET /api/users and /api/admin/users: one page of the filtered user list."""
    filters = {k: handler.query[k] for k in ("search", "user_type", "is_verified", "status")
               if k in handler.query}
    items, meta = await users.list_page(handler.db, filters, page=handler.query["page"],
                                        limit=handler.query["limit"])
    handler.write_page(items, meta)


routes = [
    (r"/api/users", UsersHandler),
    (r"/api/users/me", MeHandler),
    (r"/api/users/me/password", PasswordHandler),
    (r"/api/users/me/account", AccountHandler),
    (r"/api/users/me/followers", MyFollowersHandler),
    (r"/api/users/me/following", MyFollowingHandler),
    (r"/api/users/([^/]+)", UserHandler),
    (r"/api/users/([^/]+)/follow", FollowHandler),
    (r"/api/users/([^/]+)/followers", FollowersHandler),
    (r"/api/users/([^/]+)/following", FollowingHandler),
]
