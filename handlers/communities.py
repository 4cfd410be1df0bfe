"""Community routes (seed 000 §5, seed 001 §8 "Community Hub"/"Community View").

    GET/POST   /api/communities                          list (search, category, status,
                                                         member_of=me) / create (pending)
    GET/POST   /api/communities/messages                 community chat (`community_id`)
    GET/PUT/DELETE /api/communities/{id}                 details / edit (community admins,
                                                         moderators, staff) / delete (owner,
                                                         staff)
    POST/DELETE /api/communities/{id}/join, DELETE .../leave   join (201, or 202 pending) / leave
    GET        /api/communities/{id}/members             members with roles (`status=pending`:
                                                         join requests, for managers)
    PUT/DELETE /api/communities/{id}/members/{user_id}   change a role / remove (community
                                                         admins, staff)
    PUT        /api/communities/{id}/members/{user_id}/approve   accept a join request

Posts of a community are in `handlers.posts`; staff routes in `handlers.admin.communities`.
The rules (visibility, pending requests, the last admin) live in `documents.communities`.
`/api/communities/messages` is listed before `/api/communities/{id}` so that it wins.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from documents import communities, community_removal
from documents.errors import Forbidden, Unauthorized
from handlers.base import (
    ApiHandler,
    ApiSchema,
    PageQuery,
    body,
    public,
    query,
    responds,
)
from handlers.schemas import strip_strings
from handlers.schemas_out import UserBriefOut

COMMUNITY_ID = r"(?P<community_id>[^/]+)"
USER_ID = r"(?P<user_id>[^/]+)"


# --------------------------------------------------------------------------- schemas

class CommunityFields(ApiSchema):
    """Fields a community's managers may change (seed 000 §5 `Community`)."""

    name = fields.String(validate=validate.Length(min=3, max=80))
    description = fields.String(validate=validate.Length(max=2000))
    icon = fields.String(validate=validate.Length(max=200))
    banner_gradient = fields.String(validate=validate.Length(max=300))
    category = fields.String(validate=validate.Length(max=50))
    is_private = fields.Boolean()
    require_approval = fields.Boolean()
    rules = fields.List(fields.String(validate=validate.Length(min=1, max=300)),
                        validate=validate.Length(max=20))

    @pre_load
    def _strip(self, data, **kwargs):
        return strip_strings(data)


class NewCommunityBody(CommunityFields):
    """`name` 3–80 characters (unique), `description` ≤ 2000, `icon`, `banner_gradient`,
    `category`, `is_private`, `require_approval`, `rules` (≤ 20)."""

    name = fields.String(required=True, validate=validate.Length(min=3, max=80))


class CommunityChangesBody(CommunityFields):
    """Any field of a community; at least one."""

    @validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("Nothing to change", "_schema")


class CommunityListQuery(PageQuery):
    """`search` (name/description), `category`, `status` (staff: pending, suspended),
    `member_of=me` (the caller's communities), `sort` popular|newest|name."""

    search = fields.String(validate=validate.Length(max=100))
    category = fields.String(validate=validate.Length(max=50))
    status = fields.String(validate=validate.OneOf(communities.STATUSES))
    member_of = fields.String(validate=validate.OneOf(("me",)))
    sort = fields.String(load_default="popular", validate=validate.OneOf(tuple(communities.SORTS)))


class CommunityMembersQuery(PageQuery):
    """`status` active (default) or pending (join requests: managers only), `role`."""

    status = fields.String(load_default="active", validate=validate.OneOf(("active", "pending")))
    role = fields.String(validate=validate.OneOf(communities.ROLES))


class CommunityRoleBody(ApiSchema):
    role = fields.String(required=True, validate=validate.OneOf(communities.ROLES))


class CommunityChatQuery(PageQuery):
    community_id = fields.String(validate=validate.Length(min=1, max=64))


class CommunityChatBody(ApiSchema):
    """`community_id`, `content` (1–5000 characters), `attachments` (≤ 5 of our URLs)."""

    community_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    content = fields.String(required=True)
    attachments = fields.List(fields.String(), load_default=list)


class CommunityMembershipOut(ApiSchema):
    role = fields.String()
    status = fields.String()
    joined_at = fields.String()


class CommunityOut(ApiSchema):
    id = fields.String()
    name = fields.String()
    slug = fields.String()
    description = fields.String()
    icon = fields.String()
    banner_gradient = fields.String()
    category = fields.String()
    member_count = fields.Integer()
    post_count = fields.Integer()
    status = fields.String()
    is_private = fields.Boolean()
    require_approval = fields.Boolean()
    rules = fields.List(fields.String())
    creator = fields.Nested(UserBriefOut, allow_none=True)
    is_member = fields.Boolean()
    membership = fields.Nested(CommunityMembershipOut, allow_none=True)
    approved_at = fields.String(allow_none=True)
    approved_by = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    creator_id = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)


class CommunityMemberOut(CommunityMembershipOut):
    user_id = fields.String()
    user = fields.Nested(UserBriefOut, allow_none=True)


class CommunityChatMessageOut(ApiSchema):
    id = fields.String()
    community_id = fields.String()
    sender_id = fields.String()
    content = fields.String()
    attachments = fields.List(fields.String())
    sender = fields.Nested(UserBriefOut, allow_none=True)
    created_at = fields.String()


# --------------------------------------------------------------------------- helpers

class CommunityBase(ApiHandler):
    """Lookups shared by the community routes."""

    async def community_and_member(self, community_id: str) -> tuple[dict, dict | None]:
        """(community visible to the caller, the caller's membership or None)."""
        community = await communities.get_visible(self.db, community_id, self.current_user)
        user = self.current_user
        member = await communities.membership(self.db, community["_id"], user["_id"]) \
            if user else None
        return community, member

    async def reply_community(self, community: dict, status: int = 200) -> None:
        self.write_json(await communities.render_one(self.db, community, self.current_user),
                        status)


# --------------------------------------------------------------------------- handlers

class CommunitiesHandler(CommunityBase):
    @public
    @query(CommunityListQuery)
    @responds(CommunityOut, paginated=True)
    async def get(self) -> None:
        """Communities with the caller's membership, paginated.

        Seed 000 §5: active ones for everyone, each with the caller's
        `is_member`/`membership`; `member_of=me` (401 without a token) lists the caller's
        own, any status; `status` other than active is for staff (403)."""
        q = self.query
        mine = q.get("member_of") == "me"
        viewer = self.require_user() if mine else self.current_user
        docs, meta = await communities.list_page(
            self.db, viewer, page=q["page"], limit=q["limit"], search=q.get("search"),
            category=q.get("category"), status=q.get("status"), member_of_me=mine,
            sort=q["sort"], staff_view=communities.is_moderator(viewer))
        self.write_page(await communities.render_many(self.db, docs, viewer), meta)

    @body(NewCommunityBody)
    @responds(CommunityOut, status=201)
    async def post(self) -> None:
        """Create a community; it is `pending` until staff approve it, and the caller is its
        admin (member_count 1). 409 COMMUNITY_NAME_TAKEN (case-insensitive)."""
        doc = await communities.create(self.db, self.require_user(), self.body)
        await self.reply_community(doc, 201)


class CommunityMessagesHandler(CommunityBase):
    @query(CommunityChatQuery)
    @responds(CommunityChatMessageOut, paginated=True)
    async def get(self) -> None:
        """Chat messages of `community_id`, newest first (seed 001 §8). Anyone signed in
        reads a public community's chat; a private one's is for members (403). Without
        `community_id`: the messages of every community the caller is an active member of."""
        community = None
        if "community_id" in self.query:
            community, _access = await self._access(self.query["community_id"])
        items, meta = await communities.chat_page(self.db, community, page=self.query["page"],
                                                  limit=self.query["limit"],
                                                  member=self.current_user)
        self.write_page(items, meta)

    @body(CommunityChatBody)
    @responds(CommunityChatMessageOut, status=201)
    async def post(self) -> None:
        """Send a chat message to `community_id` (active members and staff; 403 otherwise);
        published live as `message_received` on ``community:<id>``."""
        community, access = await self._access(self.body["community_id"])
        if access != "write":
            raise Forbidden("Join the community to chat", "NOT_A_MEMBER")
        message = await communities.add_chat_message(
            self.db, self.services.hub, community, self.current_user, self.body["content"],
            self.body["attachments"], settings=self.settings_)
        self.write_json(message, 201)

    async def _access(self, community_id: str) -> tuple[dict, str]:
        community = await communities.require(self.db, community_id)
        member = await communities.membership(self.db, community["_id"], self.current_user["_id"])
        return community, communities.chat_access(community, member, self.current_user)


class CommunityHandler(CommunityBase):
    @public
    @responds(CommunityOut)
    async def get(self, community_id: str) -> None:
        """One community with the caller's membership. A private community's card is public
        (its posts and members are not); pending/suspended ones exist for staff and their
        creator only (404)."""
        community, _member = await self.community_and_member(community_id)
        await self.reply_community(community)

    @body(CommunityChangesBody)
    @responds(CommunityOut)
    async def put(self, community_id: str) -> None:
        """Edit a community (seed 000 §5: its admins/moderators, or staff; 403 otherwise).
        409 COMMUNITY_NAME_TAKEN."""
        community, member = await self.community_and_member(community_id)
        communities.require_manage(member, self.current_user)
        await self.reply_community(await communities.update(self.db, community, self.body))

    @responds(None, status=204)
    async def delete(self, community_id: str) -> None:
        """Delete a community with its members, posts and chat (its owner or staff; 403
        otherwise). 204."""
        community, _member = await self.community_and_member(community_id)
        communities.require_owner_or_staff(community, self.current_user)
        await community_removal.remove_community(self.db, community)
        self.no_content()


class JoinHandler(CommunityBase):
    @responds(CommunityOut, status=201)
    async def post(self, community_id: str) -> None:
        """Join (seed 000 §5): 201 with the community as an active member (`member_joined`
        published), or 202 with a pending membership for a private community that requires
        approval. 409 ALREADY_MEMBER / JOIN_REQUEST_PENDING."""
        community, _member = await self.community_and_member(community_id)
        member, after = await communities.join(self.db, self.services.hub, community,
                                               self.require_user())
        await self.reply_community(after, 202 if member["status"] == "pending" else 201)

    @responds(CommunityOut)
    async def delete(self, community_id: str) -> None:
        """Leave (or withdraw a join request); answers the community. 404 NOT_A_MEMBER,
        409 LAST_ADMIN (hand the admin role over first)."""
        await leave(self, community_id)


class LeaveHandler(CommunityBase):
    @responds(CommunityOut)
    async def delete(self, community_id: str) -> None:
        """Leave (seed 000 §5 DELETE .../leave); same as DELETE .../join.

        409 LAST_ADMIN for the community's last admin, or CONCURRENT_UPDATE.
        """
        await leave(self, community_id)


async def leave(handler: CommunityBase, community_id: str) -> None:
    """Take the caller out of the community and answer it (member_count fixed)."""
    community = await communities.require(handler.db, community_id)
    after = await communities.remove_member(handler.db, community, handler.require_user()["_id"])
    await handler.reply_community(after)


class MembersHandler(CommunityBase):
    @public
    @query(CommunityMembersQuery)
    @responds(CommunityMemberOut, paginated=True)
    async def get(self, community_id: str) -> None:
        """Members with their roles, oldest first. Private community: members and staff only
        (401 without a token, 403 otherwise). `status=pending` lists join requests, for its
        admins/moderators and staff."""
        community, member = await self.community_and_member(community_id)
        if self.query["status"] == "pending":
            if self.current_user is None:
                raise Unauthorized("Authentication required")
            communities.require_manage(member, self.current_user)
        communities.require_read(community, member, self.current_user)
        items, meta = await communities.members_page(
            self.db, community, page=self.query["page"], limit=self.query["limit"],
            status=self.query["status"], role=self.query.get("role"))
        self.write_page(items, meta)


class MemberHandler(CommunityBase):
    async def _managed(self, community_id: str) -> dict:
        """The community, when the caller is one of its admins or staff (403 otherwise)."""
        community, member = await self.community_and_member(community_id)
        user = self.current_user
        if not (communities.is_moderator(user) or (communities.is_active_member(member)
                                                   and member["role"] == "admin")):
            raise Forbidden("Only the community's admins can manage members",
                            "NOT_A_COMMUNITY_ADMIN")
        return community

    @body(CommunityRoleBody)
    @responds(CommunityMemberOut)
    async def put(self, community_id: str, user_id: str) -> None:
        """Give an active member the `role` member, moderator or admin (community admins,
        staff). 404 NOT_A_MEMBER, 409 LAST_ADMIN when demoting the last admin."""
        community = await self._managed(community_id)
        member = await communities.set_role(self.db, community, user_id, self.body["role"])
        self.write_json({"user_id": str(member["user_id"]),
                         **communities.render_membership(member)})

    @responds(None, status=204)
    async def delete(self, community_id: str, user_id: str) -> None:
        """Remove a member or decline a join request (community admins, staff). 204; 404
        NOT_A_MEMBER, 409 LAST_ADMIN when it is the community's last admin."""
        community = await self._managed(community_id)
        await communities.remove_member(self.db, community, user_id)
        self.no_content()


class ApproveMemberHandler(CommunityBase):
    @responds(CommunityMemberOut)
    async def put(self, community_id: str, user_id: str) -> None:
        """Accept a pending join request (community admins/moderators, staff): the member
        becomes active, member_count +1, `member_joined` published. 404
        JOIN_REQUEST_NOT_FOUND."""
        community, member = await self.community_and_member(community_id)
        communities.require_manage(member, self.current_user)
        approved, _after = await communities.approve_member(self.db, self.services.hub,
                                                            community, user_id)
        self.write_json({"user_id": str(approved["user_id"]),
                         **communities.render_membership(approved)})


routes = [
    (r"/api/communities", CommunitiesHandler),
    (r"/api/communities/messages", CommunityMessagesHandler),
    (rf"/api/communities/{COMMUNITY_ID}", CommunityHandler),
    (rf"/api/communities/{COMMUNITY_ID}/join", JoinHandler),
    (rf"/api/communities/{COMMUNITY_ID}/leave", LeaveHandler),
    (rf"/api/communities/{COMMUNITY_ID}/members", MembersHandler),
    (rf"/api/communities/{COMMUNITY_ID}/members/{USER_ID}", MemberHandler),
    (rf"/api/communities/{COMMUNITY_ID}/members/{USER_ID}/approve", ApproveMemberHandler),
]
