"""User routes: own profile and settings, public profiles, follows, user administration.

From seed 000 §2 (User Management), seed 001 §7 (Settings, Social) and §13.

- `GET/PUT /api/users/me`, `PUT /api/users/me/password`, `DELETE /api/users/me/account`
- `GET /api/users/{ref}` (public profile; `ref` is an id or a username)
- `POST/DELETE /api/users/{ref}/follow`, `GET /api/users/{ref}/followers|following`,
  `GET /api/users/me/followers|following`
- administration: `GET/POST /api/users`, `PATCH/DELETE /api/users/{ref}`

A password change ends every other session and answers with a fresh token pair (the
caller stays signed in, like a login response): old access and refresh tokens stop working.
"""
from __future__ import annotations

from urllib.parse import urlencode

from marshmallow import fields, post_load, pre_load, validate

from documents import account_lifecycle, follows, sessions, user_admin, users
from documents.errors import BadRequest
from handlers.auth import MessageReply
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
from handlers.schemas_out import FollowerCardOut, FollowOut, PasswordChangedOut, UserOut

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
    `firstName`/`lastName` (the camelCase contract) also rebuild `full_name` unless it is given.
    """

    full_name = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    first_name = fields.String(data_key="firstName", allow_none=True,
                               validate=validate.Length(max=50))
    last_name = fields.String(data_key="lastName", allow_none=True,
                              validate=validate.Length(max=50))
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
    # false: no non-transactional email (followers, comments, announcements; README "Emails")
    email_notifications = fields.Boolean()

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
    that only admins change (seed 000 §7): user_type, staff_role, is_active (or the camelCase
    `isActive`), is_verified, is_verified_creator."""

    staff_role = fields.String(allow_none=True, validate=validate.OneOf(users.STAFF_ROLES))
    is_active = fields.Boolean()
    is_active_camel = fields.Boolean(data_key="isActive")
    is_verified = fields.Boolean()
    is_verified_creator = fields.Boolean()

    @post_load
    def one_is_active(self, data, **_kw):
        """`isActive` is `is_active` under the camelCase contract's name."""
        if "is_active_camel" in data:
            camel = data.pop("is_active_camel")
            data.setdefault("is_active", camel)
        return data


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
    """POST /api/users (admin): a new account with a password.

    The camelCase contract's `firstName`, `lastName` and `roles` (e.g. ``["user", "admin"]``;
    staff roles need a superadmin, unknown names are a 422) are accepted beside ours.
    """

    email = fields.Email(required=True, validate=validate.Length(max=254))
    username = fields.String(required=True, validate=validate.Regexp(
        users.USERNAME_RE, error="3–30 letters, digits, '_', '.' or '-'"))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200))
    full_name = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    user_type = fields.String(load_default="buyer", validate=validate.OneOf(users.USER_TYPES))
    staff_role = fields.String(allow_none=True, validate=validate.OneOf(users.STAFF_ROLES))
    is_verified = fields.Boolean(load_default=False)
    first_name = fields.String(data_key="firstName", allow_none=True,
                               validate=validate.Length(max=50))
    last_name = fields.String(data_key="lastName", allow_none=True,
                              validate=validate.Length(max=50))
    roles = fields.List(fields.String(validate=validate.Length(min=1, max=30)),
                        validate=validate.Length(max=10))


# --------------------------------------------------------------------------- own account

class MeHandler(ApiHandler):
    @responds(UserOut)
    async def get(self):
        """The current user with private fields (email, account state, `profile`)."""
        self.write_json(users.render_private(self.current_user))

    @body(ProfileSchema)
    @responds(UserOut)
    async def put(self):
        """Update own profile fields (partial); buyer → creator allowed, never to staff.

        409 USERNAME_ALREADY_EXISTS for a taken username, 403 for creator → buyer.
        """
        user = await account_lifecycle.apply_changes(self.db, self.current_user, self.current_user, self.body)
        self.write_json(users.render_private(user))


class PasswordHandler(ApiHandler):
    rate_limit = "auth"

    @body(PasswordChangeSchema)
    @responds(PasswordChangedOut)
    async def put(self):
        """Change the password (same policy as registration: 8–72 bytes, a letter and a digit).

        Ends every session of the user, then answers `{"detail", "user", access_token,
        refresh_token, token_type, expires_in}` for a fresh one. 400 INVALID_PASSWORD for a
        wrong current password, 422 for a weak new one, 400 NO_PASSWORD for OAuth-only accounts,
        409 when the password was changed meanwhile.
        """
        user = await users.change_password(
            self.db, self.current_user, self.body["current_password"],
            self.body["new_password"], self.settings_.bcrypt_rounds)
        await sessions.end_all_sessions(self.db, user["_id"])
        await sessions.revoke_access_token(self.db, self.claims)
        await self.services.hub.disconnect(user["_id"], reason="Password changed")
        pair = await sessions.start_session(self.db, self.settings_, user)
        self.write_json({"detail": "Password changed", "user": users.render_private(user), **pair})


class AccountHandler(ApiHandler):
    rate_limit = "auth"

    @body(AccountDeleteSchema)
    @responds(status=204)
    async def delete(self):
        """Delete the own account after confirmation; personal data removed, sessions ended (204)."""
        user = self.current_user
        await users.confirm_deletion(user, self.body.get("password"), self.body.get("confirm"))
        await account_lifecycle.delete_account(self.db, user["_id"])
        await sessions.revoke_access_token(self.db, self.claims)
        await self.services.hub.disconnect(user["_id"], reason="Account deleted")
        self.no_content()


class MyFollowersHandler(ApiHandler):
    direction = "followers"

    @query(PageQuery)
    @responds(FollowerCardOut, paginated=True)
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
    @responds(UserOut)
    async def get(self, user_id_or_username):
        """A public profile by id or username (no email, phone or account state); 404 when
        unknown, deleted, deactivated or banned. `is_following` tells whether the caller follows.

        Staff with `users.manage` also get `email`, `roles` and `isActive`/`is_active`.
        """
        user = await users.find_visible(self.db, user_id_or_username)
        admin = users.has_permission(self.current_user, "users.manage")
        out = users.render_for_admin(user) if admin else users.render_public(user)
        me = self.current_user
        out["is_following"] = (await follows.is_following(self.db, me["_id"], user["_id"])
                               if me else None)
        self.write_json(out)

    @body(UserPatchSchema)
    @responds(UserOut)
    async def patch(self, user_id_or_username):
        """Change a user: own profile fields by the user; account fields by admins, staff roles
        by superadmins (403 otherwise).

        409 USERNAME_ALREADY_EXISTS for a taken username. Admin changes are recorded as
        `user_updated`."""
        target = await users.find_existing(self.db, user_id_or_username)
        user = await account_lifecycle.apply_changes(self.db, self.current_user, target, self.body)
        await disconnect_if_deactivated(self, target, user)
        self.write_json(users.render_private(user))

    @staff("users.delete")
    @responds(MessageReply)
    async def delete(self, user_id_or_username):
        """Delete (anonymise) another account: superadmin only; 200 ``{message}``.

        400 CANNOT_DELETE_SELF for your own account; 404 for an unknown one.
        """
        await delete_user(self, user_id_or_username)
        self.write_json({"message": "User deleted"})


async def disconnect_if_deactivated(handler: ApiHandler, before: dict, after: dict) -> None:
    """An account just deactivated loses its open sockets on every instance (4401)."""
    if before.get("is_active", True) and not after.get("is_active", True):
        await handler.services.hub.disconnect(after["_id"], reason="Account deactivated")


async def delete_user(handler: ApiHandler, ref: str) -> None:
    """Shared by DELETE /api/users/{ref} and /api/admin/users/{ref}: delete, record."""
    target = await users.find_existing(handler.db, ref)
    if target["_id"] == handler.current_user["_id"]:
        raise BadRequest("Delete your own account with DELETE /api/users/me/account",
                         "CANNOT_DELETE_SELF")
    users.check_changes(handler.current_user, target, {})
    await account_lifecycle.delete_account(handler.db, target["_id"], by=handler.current_user)
    await handler.services.hub.disconnect(target["_id"], reason="Account deleted")


class FollowHandler(ApiHandler):
    @responds(FollowOut, status=201)
    async def post(self, user_id_or_username):
        """Follow a user (seed 000 §2): 201 `{is_following, user, followers_count}`;
        400 CANNOT_FOLLOW_SELF, 409 ALREADY_FOLLOWING, 404 unknown user. The followed user
        gets a `new_follower` notification and, unless they turned emails off, an email."""
        me = self.current_user
        target = await users.find_visible(self.db, user_id_or_username)
        await follows.follow(self.db, self.services.hub, me, target,
                             mailer=self.services.mailer)
        await self._answer(target["_id"], True, 201)

    @responds(FollowOut)
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
    @responds(FollowerCardOut, paginated=True)
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
    @responds(UserOut, many=True)
    async def get(self):
        """The admin user list as a bare array, with `X-Total-Count` and `Link` headers for pages.

        Filters: search (username, email, full name), user_type, is_verified, status
        active|banned|inactive; newest first, admin view of each user. `GET /api/admin/users`
        answers the same users in the `{items, total, page, limit, pages}` envelope.
        """
        items, meta = await user_page(self)
        self.set_header("X-Total-Count", str(meta["total"]))
        self.set_header("Link", page_links(self.request.path, self.query, meta))
        self.write_json(items)

    @staff("users.manage")
    @body(UserCreateSchema)
    @responds(UserOut, status=201)
    async def post(self):
        """Create an account with a password (201); a staff role only by a superadmin (403).

        409 EMAIL_ALREADY_EXISTS / USERNAME_ALREADY_EXISTS; 422 for bad fields or roles.
        """
        user = await user_admin.create_by_admin(self.db, self.current_user, self.body,
                                                self.settings_.bcrypt_rounds)
        self.write_json(users.render_private(user), 201)


async def user_page(handler: ApiHandler) -> tuple[list[dict], dict]:
    """Shared by GET /api/users and /api/admin/users: one page of the filtered user list."""
    filters = {k: handler.query[k] for k in ("search", "user_type", "is_verified", "status")
               if k in handler.query}
    return await user_admin.list_page(handler.db, filters, page=handler.query["page"],
                                      limit=handler.query["limit"])


def page_links(path: str, params: dict, meta: dict) -> str:
    """An RFC 8288 `Link` value with the first, prev, next and last pages of a list."""
    pages, page = max(meta["pages"], 1), meta["page"]
    wanted = {"first": 1, "prev": page - 1 if page > 1 else None,
              "next": page + 1 if page < pages else None, "last": pages}
    plain = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
    return ", ".join(f'<{path}?{urlencode({**plain, "page": number})}>; rel="{rel}"'
                     for rel, number in wanted.items() if number is not None)


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
