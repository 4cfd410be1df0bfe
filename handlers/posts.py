"""Community post routes (seed 000 §5, seed 001 §8 "Community View").

    GET/POST   /api/communities/{id}/posts           feed (filter=recent|popular|media) / post
    GET/PUT/DELETE /api/posts/{post_id}              one post / edit (author) / remove
                                                     (author, community moderators, staff)
    PUT        /api/posts/{post_id}/pin              pin or unpin (community moderators, staff)
    POST/DELETE /api/posts/{post_id}/react           set / remove the caller's reaction
    GET/POST   /api/posts/{post_id}/comments         comments (flat, `parent_id`) / comment
    POST       /api/posts/{post_id}/share            count a share
    POST       /api/posts/{post_id}/report           report the post (once per user)
    POST       /api/posts/{post_id}/comments/{comment_id}/report   report a comment

Reading follows the community (public: anyone; private: members and staff). Posting,
commenting and reacting are for active members (and staff). Rules, bounds (500 comments,
5,000 reactions per post) and live events live in `documents.posts`.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from documents import communities, post_interactions, posts, reports
from documents.errors import Forbidden
from handlers.base import (
    ApiHandler,
    ApiSchema,
    PageQuery,
    body,
    public,
    query,
    responds,
)
from handlers.schemas_out import UserBriefOut

COMMUNITY_ID = r"(?P<community_id>[^/]+)"
POST_ID = r"(?P<post_id>[^/]+)"


# --------------------------------------------------------------------------- schemas

class CommunityPostFields(ApiSchema):
    """`content` 1–10,000 characters; `image_url` (an image uploaded to HWC3D), `model_id`
    (an approved model) or `model_url` (a model page ``/models/<id>`` or our file URL)."""

    content = fields.String(validate=validate.Length(min=1, max=posts.MAX_CONTENT))
    image_url = fields.String(allow_none=True, validate=validate.Length(max=2048))
    model_id = fields.String(allow_none=True, validate=validate.Length(max=64))
    model_url = fields.String(allow_none=True, validate=validate.Length(max=2048))

    @pre_load
    def _strip(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("content"), str):
            data = {**data, "content": data["content"].strip()}
        return data


class NewCommunityPostBody(CommunityPostFields):
    content = fields.String(required=True,
                            validate=validate.Length(min=1, max=posts.MAX_CONTENT))


class CommunityPostChangesBody(CommunityPostFields):
    """Any of `content`, `image_url`, `model_id`, `model_url`; at least one."""

    @validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("Nothing to change", "_schema")


class CommunityPostFeedQuery(PageQuery):
    filter = fields.String(load_default="recent", validate=validate.OneOf(posts.FILTERS))
    search = fields.String(validate=validate.Length(max=100))


class CommunityPostPinBody(ApiSchema):
    is_pinned = fields.Boolean(load_default=True)


class PostReactionBody(ApiSchema):
    reaction_type = fields.String(required=True, validate=validate.OneOf(posts.REACTION_TYPES))


class PostCommentCreateBody(ApiSchema):
    """`content` 1–2,000 characters; `parent_id` of the comment replied to (optional)."""

    content = fields.String(required=True, validate=validate.Length(min=1, max=posts.MAX_COMMENT))
    parent_id = fields.String(allow_none=True, validate=validate.Length(max=64))

    @pre_load
    def _strip(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("content"), str):
            data = {**data, "content": data["content"].strip()}
        return data


class ContentReportBody(ApiSchema):
    """`reason` from the list; `details` free text ≤ 500 characters."""

    reason = fields.String(required=True, validate=validate.OneOf(reports.REASONS))
    details = fields.String(allow_none=True, validate=validate.Length(max=reports.MAX_DETAILS))


class PostReactionCounts(ApiSchema):
    like = fields.Integer()
    love = fields.Integer()
    wow = fields.Integer()
    fire = fields.Integer()


class CommunityPostOut(ApiSchema):
    id = fields.String()
    community_id = fields.String()
    author_id = fields.String()
    author = fields.Nested(UserBriefOut, allow_none=True)
    content = fields.String()
    image_url = fields.String(allow_none=True)
    model_id = fields.String(allow_none=True)
    model_url = fields.String(allow_none=True)
    reactions = fields.Nested(PostReactionCounts)
    reaction_count = fields.Integer()
    my_reaction = fields.String(allow_none=True)
    comment_count = fields.Integer()
    share_count = fields.Integer()
    is_pinned = fields.Boolean()
    created_at = fields.String()
    updated_at = fields.String()


class PostReactionOut(ApiSchema):
    post_id = fields.String()
    my_reaction = fields.String(allow_none=True)
    previous_type = fields.String(allow_none=True)
    reactions = fields.Nested(PostReactionCounts)
    reaction_count = fields.Integer()


class PostCommentOut(ApiSchema):
    id = fields.String()
    post_id = fields.String()
    author_id = fields.String(allow_none=True)
    author = fields.Dict(allow_none=True)
    content = fields.String(allow_none=True)
    parent_id = fields.String(allow_none=True)
    created_at = fields.String()
    is_deleted = fields.Boolean()
    reply_count = fields.Integer()


class PostShareOut(ApiSchema):
    post_id = fields.String()
    share_count = fields.Integer()
    share_url = fields.String()


class ContentReportOut(ApiSchema):
    id = fields.String()
    content_type = fields.String()
    content_id = fields.String()
    reason = fields.String()
    details = fields.String(allow_none=True)
    status = fields.String()
    created_at = fields.String()
    action = fields.String(allow_none=True)
    community_id = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    post_id = fields.String(allow_none=True)
    reporter = fields.Nested(UserBriefOut, allow_none=True)
    reporter_id = fields.String(allow_none=True)
    resolved_at = fields.String(allow_none=True)
    resolved_by = fields.String(allow_none=True)
    resolver = fields.Nested(UserBriefOut, allow_none=True)


# --------------------------------------------------------------------------- helpers

def require_participant(community: dict, member: dict | None, user: dict) -> None:
    """Raise Forbidden NOT_A_MEMBER unless `user` may post, comment and react here."""
    if not posts.can_post(community, member, user):
        raise Forbidden("Join the community to take part", "NOT_A_MEMBER")


def reaction_reply(post: dict, mine: str | None, previous: str | None) -> dict:
    rendered = posts.render_post(post, {}, mine)
    return {"post_id": rendered["id"], "my_reaction": mine, "previous_type": previous,
            "reactions": rendered["reactions"], "reaction_count": rendered["reaction_count"]}


# --------------------------------------------------------------------------- handlers

class CommunityPostsHandler(ApiHandler):
    @public
    @query(CommunityPostFeedQuery)
    @responds(CommunityPostOut, paginated=True)
    async def get(self, community_id: str) -> None:
        """A community's posts, pinned first, each with author card, reaction counts, the
        caller's `my_reaction` and `comment_count` (comments: GET /api/posts/{id}/comments).
        `filter` recent (default), popular, media; `search` (0–100 characters) ranks the
        matching posts by relevance instead. Private community: members and staff (403)."""
        community = await communities.get_visible(self.db, community_id, self.current_user)
        user = self.current_user
        member = await communities.membership(self.db, community["_id"], user["_id"]) \
            if user else None
        communities.require_read(community, member, user)
        docs, meta = await posts.list_page(self.db, community, filter=self.query["filter"],
                                           page=self.query["page"], limit=self.query["limit"],
                                           search=self.query.get("search"))
        self.write_page(await posts.render_many(self.db, docs, user), meta)

    @body(NewCommunityPostBody)
    @responds(CommunityPostOut, status=201)
    async def post(self, community_id: str) -> None:
        """Post in a community (active members and staff; 403 NOT_A_MEMBER otherwise);
        published live as `new_post`. 422 for empty or oversized content or a bad
        attachment."""
        user = self.require_user()
        community = await communities.get_visible(self.db, community_id, user)
        member = await communities.membership(self.db, community["_id"], user["_id"])
        require_participant(community, member, user)
        rendered = await posts.create(self.db, self.services.hub, community, user, self.body,
                                      self.settings_)
        self.write_json(rendered, 201)


class CommunityPostHandler(ApiHandler):
    @public
    @responds(CommunityPostOut)
    async def get(self, post_id: str) -> None:
        """One post (as in the feed), for whoever may read its community.

        404 for an unknown post; 401 without a token and 403 otherwise for a post of a
        private community the caller is not a member of.
        """
        post, _c, _m = await posts.get_readable(self.db, post_id, self.current_user)
        self.write_json(await posts.render_one(self.db, post, self.current_user))

    @body(CommunityPostChangesBody)
    @responds(CommunityPostOut)
    async def put(self, post_id: str) -> None:
        """Edit a post (seed 000 §5: the author only; 403 NOT_POST_AUTHOR otherwise)."""
        post, _c, _m = await posts.get_readable(self.db, post_id, self.current_user)
        posts.require_author(post, self.current_user)
        after = await posts.update(self.db, post, self.body, self.settings_)
        self.write_json(await posts.render_one(self.db, after, self.current_user))

    @responds(None, status=204)
    async def delete(self, post_id: str) -> None:
        """Remove a post (soft delete; post_count fixed): its author, the community's
        admins/moderators or staff (403 otherwise). 204."""
        post, _c, member = await posts.get_readable(self.db, post_id, self.current_user)
        posts.require_remover(post, member, self.current_user)
        await posts.remove(self.db, post["_id"], self.current_user)
        self.no_content()


class PostPinHandler(ApiHandler):
    @body(CommunityPostPinBody)
    @responds(CommunityPostOut)
    async def put(self, post_id: str) -> None:
        """Pin (`is_pinned`: true, the default) or unpin a post: the community's
        admins/moderators and staff (403 otherwise). Pinned posts come first in the feed."""
        post, _c, member = await posts.get_readable(self.db, post_id, self.current_user)
        communities.require_manage(member, self.current_user)
        after = await posts.set_pinned(self.db, post, self.body["is_pinned"])
        self.write_json(await posts.render_one(self.db, after, self.current_user))


class PostReactHandler(ApiHandler):
    @body(PostReactionBody)
    @responds(PostReactionOut)
    async def post(self, post_id: str) -> None:
        """Set the caller's reaction (`reaction_type` like|love|wow|fire; 422 otherwise):
        one per user per post, a new type moves the count; `new_reaction` published.
        Members only (403). 409 POST_REACTIONS_FULL past 5,000 reactions."""
        post, community, member = await posts.get_readable(self.db, post_id, self.current_user)
        require_participant(community, member, self.current_user)
        kind = self.body["reaction_type"]
        after, previous = await post_interactions.react(self.db, self.services.hub, post,
                                                        self.current_user, kind)
        self.write_json(reaction_reply(after, kind, previous))

    @responds(PostReactionOut)
    async def delete(self, post_id: str) -> None:
        """Remove the caller's reaction (its count -1). 404 REACTION_NOT_FOUND."""
        post, _c, _m = await posts.get_readable(self.db, post_id, self.current_user)
        after, previous = await post_interactions.unreact(self.db, self.services.hub, post,
                                                          self.current_user)
        self.write_json(reaction_reply(after, None, previous))


class PostCommentsHandler(ApiHandler):
    @public
    @query(PageQuery)
    @responds(PostCommentOut, paginated=True)
    async def get(self, post_id: str) -> None:
        """A post's comments, oldest first, flat with `parent_id` and `reply_count`.

        404 for an unknown post; 401 without a token and 403 otherwise for a post of a
        private community the caller is not a member of.
        """
        post, _c, _m = await posts.get_readable(self.db, post_id, self.current_user)
        items, meta = await post_interactions.comments_page(self.db, post, page=self.query["page"],
                                                            limit=self.query["limit"])
        self.write_page(items, meta)

    @body(PostCommentCreateBody)
    @responds(PostCommentOut, status=201)
    async def post(self, post_id: str) -> None:
        """Comment (1–2,000 characters), optionally replying to `parent_id`; members only
        (403); `new_comment` published. 404 COMMENT_NOT_FOUND for an unknown parent, 409
        POST_THREAD_FULL past 500 comments."""
        post, community, member = await posts.get_readable(self.db, post_id, self.current_user)
        require_participant(community, member, self.current_user)
        comment = await post_interactions.add_comment(self.db, self.services.hub, post, self.current_user,
                                                      self.body["content"], self.body.get("parent_id"))
        self.write_json(comment, 201)


class PostShareHandler(ApiHandler):
    @responds(PostShareOut)
    async def post(self, post_id: str) -> None:
        """Count a share of a post the caller can read; answers the new `share_count` and
        the link to share."""
        post, _c, _m = await posts.get_readable(self.db, post_id, self.current_user)
        count = await posts.share(self.db, post)
        self.write_json({"post_id": str(post["_id"]), "share_count": count,
                         "share_url": f"/community/{post['community_id']}?post={post['_id']}"})


class PostReportHandler(ApiHandler):
    @body(ContentReportBody)
    @responds(ContentReportOut, status=201)
    async def post(self, post_id: str) -> None:
        """Report a post (seed 000 §5) for staff review at GET /api/admin/reports. 409
        ALREADY_REPORTED on a second report by the same user."""
        post, _c, _m = await posts.get_readable(self.db, post_id, self.current_user)
        report = await reports.create(
            self.db, self.current_user, "post", post["_id"], reason=self.body["reason"],
            details=self.body.get("details"), community_id=post["community_id"])
        self.write_json(report, 201)


class PostCommentReportHandler(ApiHandler):
    @body(ContentReportBody)
    @responds(ContentReportOut, status=201)
    async def post(self, post_id: str, comment_id: str) -> None:
        """Report a comment of a post. 404 COMMENT_NOT_FOUND, 409 ALREADY_REPORTED."""
        post, _c, _m = await posts.get_readable(self.db, post_id, self.current_user)
        _post, comment = await post_interactions.find_comment(self.db, post["_id"], comment_id)
        report = await reports.create(
            self.db, self.current_user, "comment", comment["_id"], reason=self.body["reason"],
            details=self.body.get("details"), community_id=post["community_id"],
            post_id=post["_id"])
        self.write_json(report, 201)


routes = [
    (rf"/api/communities/{COMMUNITY_ID}/posts", CommunityPostsHandler),
    (rf"/api/posts/{POST_ID}", CommunityPostHandler),
    (rf"/api/posts/{POST_ID}/pin", PostPinHandler),
    (rf"/api/posts/{POST_ID}/react", PostReactHandler),
    (rf"/api/posts/{POST_ID}/comments", PostCommentsHandler),
    (rf"/api/posts/{POST_ID}/comments/(?P<comment_id>[^/]+)/report", PostCommentReportHandler),
    (rf"/api/posts/{POST_ID}/share", PostShareHandler),
    (rf"/api/posts/{POST_ID}/report", PostReportHandler),
]
