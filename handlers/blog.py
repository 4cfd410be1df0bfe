"""Blog routes (seed 004 §3 and "Blog Listing", "Blog Post").

`post_id` in every path is a post's id or its slug. Public: `GET /api/blog/posts`,
`GET /api/blog/posts/{post_id}` (counts a view), `GET /api/blog/featured`,
`GET /api/blog/categories`, `GET /api/blog/posts/{post_id}/comments`,
`POST /api/blog/posts/{post_id}/share`. Signed in: `POST/DELETE /api/blog/posts/{post_id}/like`,
`POST /api/blog/posts/{post_id}/comments`. Staff with `content.manage`:
`POST /api/admin/blog/posts`, `PUT/DELETE /api/admin/blog/posts/{post_id}`; they also read
drafts (`status=draft|all` on the list, drafts by id). The rules live in `documents.blog`.
"""
from __future__ import annotations

from marshmallow import (
    ValidationError,
    fields,
    pre_load,
    validate,
    validates,
    validates_schema,
)

from documents import blog, engagement, users
from documents.catalog import TagsField
from documents.errors import Forbidden
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
from handlers.schemas import absolute_file_urls, strip_strings
from handlers.schemas_catalog import BlogCommentOut
from handlers.schemas_out import UserBriefOut

PERMISSION = "content.manage"
REF = r"([^/]+)"
SLUG_RE = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


# --------------------------------------------------------------------------- schemas

BLOG_TEXTS = ("content", "tags")  # kept as written


class PostUpdateBody(ApiSchema):
    """The editable fields of a post (all optional; at least one). `content` is Markdown of
    at most 100 KB; `excerpt` null or "" goes back to the automatic excerpt; `slug` is
    lower-case words joined by "-" (not 24 hex digits)."""

    title = fields.String(validate=validate.Length(min=3, max=200))
    content = fields.String(validate=validate.Length(min=1))
    excerpt = fields.String(allow_none=True, validate=validate.Length(max=500))
    featured_image = fields.String(allow_none=True, validate=validate.Length(max=500))
    category = fields.String(validate=validate.OneOf(blog.CATEGORIES))
    tags = TagsField()
    status = fields.String(validate=validate.OneOf(blog.STATUSES))
    is_featured = fields.Boolean()
    slug = fields.String(validate=[validate.Length(min=1, max=80), validate.Regexp(SLUG_RE)])

    @pre_load
    def _strip(self, data, **kwargs):
        return strip_strings(data, BLOG_TEXTS)

    @validates("content")
    def _content_size(self, value, **kwargs):
        if not value.strip():
            raise ValidationError("Content cannot be empty")
        problems = blog.content_problems(value)
        if problems:
            raise ValidationError(problems)

    @validates("slug")
    def _slug_not_an_id(self, value, **kwargs):
        if value != blog.slugify(value):
            raise ValidationError("A slug of 24 hex digits would read as an id")

    @validates_schema
    def _something(self, data, **kwargs):
        if not data and type(self) is PostUpdateBody:
            raise ValidationError("Nothing to change", "_schema")


class PostCreateBody(PostUpdateBody):
    """A new post: `title` (3–200) and `content` required; category defaults to "news",
    status to "draft"."""

    title = fields.String(required=True, validate=validate.Length(min=3, max=200))
    content = fields.String(required=True, validate=validate.Length(min=1))


class PostListQuery(PageQuery):
    """Filters of the post list. `status` other than "published" needs `content.manage`."""

    category = fields.String(validate=validate.OneOf(blog.CATEGORIES))
    tag = fields.String(validate=validate.Length(min=1, max=30))
    search = fields.String(validate=validate.Length(min=1, max=100))
    featured = fields.Boolean()
    status = fields.String(validate=validate.OneOf(blog.STATUSES + ("all",)))


class FeaturedQuery(ApiSchema):
    limit = fields.Integer(load_default=5, validate=validate.Range(min=1, max=20))


class CommentBody(ApiSchema):
    """A new comment: `content` 1–2000 characters after stripping; `parent_id` for a reply."""

    content = fields.String(required=True, validate=validate.Length(
        min=1, max=blog.MAX_COMMENT_LENGTH))
    parent_id = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(max=64))

    @pre_load
    def _strip(self, data, **kwargs):
        return strip_strings(data)


class PostOut(ApiSchema):
    """A blog post as the API shows it."""

    id = fields.String()
    slug = fields.String()
    title = fields.String()
    content = fields.String(metadata={"description": "Markdown; left out of lists"})
    excerpt = fields.String()
    category = fields.String()
    tags = fields.List(fields.String())
    read_time = fields.Integer(metadata={"description": "Minutes"})
    views = fields.Integer()
    likes = fields.Integer()
    comment_count = fields.Integer()
    shares = fields.Integer()
    status = fields.String()
    published_at = fields.String(allow_none=True)
    author = fields.Nested(UserBriefOut, allow_none=True)
    liked = fields.Boolean()
    author_id = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    featured_image = fields.String(allow_none=True)
    is_featured = fields.Boolean(allow_none=True)
    updated_at = fields.String(allow_none=True)


class LikeOut(ApiSchema):
    post_id = fields.String()
    liked = fields.Boolean()
    likes = fields.Integer()


class ShareOut(ApiSchema):
    post_id = fields.String()
    shares = fields.Integer()
    share_url = fields.String()
    model_id = fields.String(allow_none=True)


class CategoryOut(ApiSchema):
    name = fields.String()
    count = fields.Integer()
    created_at = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    icon = fields.String(allow_none=True)
    order = fields.Integer(allow_none=True)
    updated_at = fields.String(allow_none=True)


# --------------------------------------------------------------------------- base

class BlogHandler(ApiHandler):
    def can_manage(self) -> bool:
        """True for staff holding `content.manage` (they see drafts)."""
        return users.has_permission(self.current_user, PERMISSION)

    async def published_post(self, post_id: str) -> dict:
        """The post for an engagement; a draft is 404 (409 for staff), see `blog.get_published`."""
        return await blog.get_published(self.db, post_id, staff=self.can_manage())

    async def rendered(self, post: dict) -> dict:
        out = (await blog.render_posts(self.db, [post]))[0]
        out["liked"] = await blog.has_liked(self.db, self.current_user, post)
        return out


# --------------------------------------------------------------------------- public reads

class PostsHandler(BlogHandler):
    @public
    @query(PostListQuery)
    @responds(PostOut, paginated=True)
    async def get(self) -> None:
        """Published posts, newest first, without `content` (seed 004 "Blog Listing"):
        filters category, tag, search (literal, in title, excerpt or content), featured.
        `status=draft|all` needs `content.manage` (403 otherwise)."""
        page, limit = self.query.pop("page"), self.query.pop("limit")
        if self.query.get("status", "published") != "published" and not self.can_manage():
            raise Forbidden(f"Missing permission: {PERMISSION}")
        docs, meta = await blog.list_posts(self.db, self.query, page=page, limit=limit)
        self.write_page(await blog.render_posts(self.db, docs), meta)


class PostHandler(BlogHandler):
    @public
    @responds(PostOut)
    async def get(self, post_id: str) -> None:
        """One post by id or slug, with `content` and `liked`; counts a view once per viewer
        per 30 minutes (published posts only). A draft is 404 unless `content.manage`."""
        post = await blog.get_visible(self.db, post_id, staff=self.can_manage())
        key = engagement.viewer_key(self.current_user, self.request.remote_ip,
                                    self.settings_.jwt_secret_key)
        post["views"], _counted = await blog.record_view(self.db, post, key)
        self.write_json(await self.rendered(post))


class FeaturedHandler(BlogHandler):
    @public
    @query(FeaturedQuery)
    @responds(PostOut, items=True)
    async def get(self) -> None:
        """Featured published posts, newest first (`limit` 1–20, default 5): ``{"items"}``."""
        docs = await blog.list_featured(self.db, self.query["limit"])
        self.write_json({"items": await blog.render_posts(self.db, docs)})


class CategoriesHandler(BlogHandler):
    @public
    @responds(CategoryOut, items=True)
    async def get(self) -> None:
        """Every blog category with its number of published posts: ``{"items": [{name, count}]}``."""
        self.write_json({"items": await blog.category_counts(self.db)})


# --------------------------------------------------------------------------- engagement

class LikeHandler(BlogHandler):
    @responds(LikeOut, status=201)
    async def post(self, post_id: str) -> None:
        """Like a published post: 201 ``{post_id, liked, likes}``; 409 ALREADY_LIKED."""
        post = await self.published_post(post_id)
        likes = await blog.like(self.db, post, self.require_user())
        self.write_json({"post_id": str(post["_id"]), "liked": True, "likes": likes}, 201)

    @responds(LikeOut)
    async def delete(self, post_id: str) -> None:
        """Take back a like: 200 ``{post_id, liked: false, likes}``; 404 NOT_LIKED, 409
        POST_NOT_PUBLISHED for a draft."""
        post = await self.published_post(post_id)
        likes = await blog.unlike(self.db, post, self.require_user())
        self.write_json({"post_id": str(post["_id"]), "liked": False, "likes": likes})


class CommentsHandler(BlogHandler):
    @public
    @query(PageQuery)
    @responds(BlogCommentOut, paginated=True)
    async def get(self, post_id: str) -> None:
        """Top-level comments, newest first, each with `replies` (oldest first)."""
        post = await blog.get_visible(self.db, post_id, staff=self.can_manage())
        items, meta = await blog.comment_page(self.db, post, page=self.query["page"],
                                              limit=self.query["limit"])
        self.write_page(items, meta)

    @body(CommentBody)
    @responds(BlogCommentOut, status=201)
    async def post(self, post_id: str) -> None:
        """Comment on a published post (`parent_id` for a reply): 201 with the comment.

        422 for an unknown parent; 409 POST_NOT_PUBLISHED for a draft.
        """
        post = await self.published_post(post_id)
        user = self.require_user()
        doc = await blog.add_comment(self.db, post, user, self.body["content"],
                                     self.body.get("parent_id"))
        self.write_json(blog.render_comment(doc, {user["_id"]: user}), 201)


class ShareHandler(BlogHandler):
    @public
    @responds(ShareOut)
    async def post(self, post_id: str) -> None:
        """Count a share of a published post: ``{post_id, shares, share_url}``.

        404 for an unknown post; 409 POST_NOT_PUBLISHED for a draft.
        """
        post = await self.published_post(post_id)
        shares = await blog.share(self.db, post)
        self.write_json({"post_id": str(post["_id"]), "shares": shares,
                         "share_url": f"{self.settings_.public_url}/blog/{post['slug']}"})


# --------------------------------------------------------------------------- staff writes

class AdminPostsHandler(BlogHandler):
    @staff(PERMISSION)
    @body(PostCreateBody)
    @responds(PostOut, status=201)
    async def post(self) -> None:
        """Write a post (draft unless `status: published`, which sets `published_at`); the
        slug comes from the title unless given (409 SLUG_TAKEN when a given one is taken)."""
        post = await blog.create_post(self.db, self.require_user(),
                                      absolute_file_urls(self.body, self.settings_))
        self.write_json(await self.rendered(post), 201)


class AdminPostHandler(BlogHandler):
    @staff(PERMISSION)
    @body(PostUpdateBody)
    @responds(PostOut)
    async def put(self, post_id: str) -> None:
        """Change a post; content changes recompute read_time; publishing sets published_at.

        404 for an unknown post; 409 SLUG_TAKEN or CONCURRENT_UPDATE.
        """
        post = await blog.update_post(self.db, post_id, absolute_file_urls(self.body, self.settings_))
        self.write_json(await self.rendered(post))

    @staff(PERMISSION)
    @responds(status=204)
    async def delete(self, post_id: str) -> None:
        """Delete a post with its comments and likes: 204."""
        await blog.delete_post(self.db, post_id)
        self.no_content()


routes = [
    (r"/api/blog/posts", PostsHandler),
    (rf"/api/blog/posts/{REF}", PostHandler),
    (rf"/api/blog/posts/{REF}/like", LikeHandler),
    (rf"/api/blog/posts/{REF}/comments", CommentsHandler),
    (rf"/api/blog/posts/{REF}/share", ShareHandler),
    (r"/api/blog/featured", FeaturedHandler),
    (r"/api/blog/categories", CategoriesHandler),
    (r"/api/admin/blog/posts", AdminPostsHandler),
    (rf"/api/admin/blog/posts/{REF}", AdminPostHandler),
]
