"""User administration: unban and creator verification, the admin user list, accounts
created by admins (banning is in `documents.account_lifecycle`).

`list_page` (GET /api/users, /api/admin/users) and `create_by_admin` (POST /api/users), whose
`roles` (the camelCase auth contract's names) map to our staff role by `staff_role_of_roles`.
Same collection and rules as `documents.users`.
"""
from __future__ import annotations

from documents import admin_actions, search_kinds
from documents.common import paginate, search_regex, utcnow
from documents.errors import BadRequest, Conflict, Forbidden, Invalid
from documents.users import (
    COLLECTION,
    has_permission,
    hash_password,
    insert,
    new_user,
    password_problems,
    render_private,
    require_account,
)

# --------------------------------------------------------------------------- bans

async def unban(db, user_id, admin: dict) -> dict:
    """Lift a ban; access tokens issued before now stay invalid. Recorded as `user_unbanned`
    in the admin log by `admin`. Raises Conflict NOT_BANNED, NotFound."""
    now = utcnow()
    user = await db[COLLECTION].find_one_and_update(
        {"_id": user_id, "is_banned": True},
        {"$set": {"is_banned": False, "ban_reason": None, "banned_at": None, "banned_by": None,
                  "tokens_valid_after": now, "updated_at": now}}, return_document=True)
    if user is None:
        await require_account(db, user_id)
        raise Conflict("This account is not banned", "NOT_BANNED")
    await admin_actions.record(db, admin, "user_unbanned", "user", user_id)
    await search_kinds.index_user(db, user)
    return user


async def verify_creator(db, user_id, admin: dict) -> tuple[dict, bool]:
    """Mark a creator as a verified creator; returns (user, changed). A change is recorded
    as `user_verified` in the admin log by `admin`.

    Raises BadRequest NOT_A_CREATOR when the account is not a creator, NotFound.
    """
    user = await db[COLLECTION].find_one_and_update(
        {"_id": user_id, "user_type": "creator", "is_verified_creator": {"$ne": True}},
        {"$set": {"is_verified_creator": True, "updated_at": utcnow()}}, return_document=True)
    if user is not None:
        await admin_actions.record(db, admin, "user_verified", "user", user_id)
        return user, True
    user = await require_account(db, user_id)
    if user.get("user_type") != "creator":
        raise BadRequest("Only creators can be verified", "NOT_A_CREATOR")
    return user, False


# --------------------------------------------------------------------------- accounts by admins

# The camelCase auth contract's role names → our staff role (None: no staff role).
ROLE_NAMES = {"user": None, "buyer": None, "creator": None, "moderator": "moderator",
              "admin": "admin", "superadmin": "superadmin", "super_admin": "superadmin"}
_RANK = (None, "moderator", "admin", "superadmin")


def list_query(search: str | None = None, user_type: str | None = None,
               is_verified: bool | None = None, status: str | None = None) -> dict:
    """The filter of the admin user list (seed 000 §7 GET /api/admin/users).

    `search` matches username, email or full_name literally (case-insensitive); `status`
    is active (active, not banned), banned, or inactive (deactivated or deleted).
    """
    query: dict = {}
    if search:
        rx = search_regex(search)
        query["$or"] = [{"username": rx}, {"email": rx}, {"full_name": rx}]
    if user_type:
        query["user_type"] = user_type
    if is_verified is not None:
        query["is_verified"] = is_verified
    if status == "active":
        query.update({"is_active": True, "is_banned": {"$ne": True}})
    elif status == "banned":
        query["is_banned"] = True
    elif status == "inactive":
        query["is_active"] = False
    return query


async def list_page(db, filters: dict, *, page: int, limit: int) -> tuple[list[dict], dict]:
    """One page of users matching `list_query(**filters)`, newest first, in the admin view."""
    docs, meta = await paginate(db[COLLECTION], list_query(**filters), page=page, limit=limit,
                                sort=[("created_at", -1), ("_id", -1)])
    return [render_private(d) for d in docs], meta


def staff_role_of_roles(roles: list[str]) -> str | None:
    """The staff role that a `roles` list names (the highest one), or None.

    ``["user", "admin"]`` → "admin"; ``["super_admin"]`` → "superadmin"; ``["user"]`` →
    None. Raises Invalid (422, field `roles`) for a name outside `ROLE_NAMES`.
    """
    unknown = sorted({name for name in roles if name not in ROLE_NAMES})
    if unknown:
        raise Invalid({"roles": [f"Unknown role: {name}" for name in unknown]})
    return max((ROLE_NAMES[name] for name in roles), key=_RANK.index, default=None)


async def create_by_admin(db, actor: dict, data: dict, rounds: int) -> dict:
    """An account created by an admin (POST /api/users) with a password, recorded as
    `user_created` in the admin log; returns the document.

    `data`: email, username, password, and optional full_name, first_name, last_name,
    user_type, staff_role, roles (the camelCase contract's list, mapped by
    `staff_role_of_roles`; "creator" in it makes a creator), is_verified. Raises Forbidden
    when a staff role is asked for without `staff.manage` (superadmin), Invalid for a weak
    password, an unknown role or roles that contradict `staff_role`, Conflict for a taken
    email or username.
    """
    staff_role, user_type = data.get("staff_role"), data.get("user_type", "buyer")
    if data.get("roles") is not None:
        from_roles = staff_role_of_roles(data["roles"])
        if "staff_role" in data and from_roles != staff_role:
            raise Invalid({"roles": ["Contradicts staff_role"]})
        staff_role = from_roles
        if "creator" in data["roles"]:
            user_type = "creator"
    if staff_role and not has_permission(actor, "staff.manage"):
        raise Forbidden("Only a superadmin can create staff accounts")
    problems = password_problems(data["password"])
    if problems:
        raise Invalid({"password": problems})
    password_hash = await hash_password(data["password"], rounds)
    doc = new_user(data["email"], data["username"], password_hash,
                   full_name=data.get("full_name"), first_name=data.get("first_name"),
                   last_name=data.get("last_name"), user_type=user_type,
                   staff_role=staff_role, is_verified=data.get("is_verified", False))
    user = await insert(db, doc)
    await admin_actions.record(db, actor, "user_created", "user", user["_id"],
                               {"staff_role": user.get("staff_role")})
    return user
