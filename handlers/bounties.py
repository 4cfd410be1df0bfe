"""Bounty routes (seed 000 "Additional Features" Bounties, seed 001 §10).

`GET /api/bounties` (public, filters, paginated), `POST /api/bounties` (any signed-in user),
`GET /api/bounties/{id}` (public; the owner and staff also see the applications, an
applicant sees their own), `POST /api/bounties/{id}/apply` (creators only),
`PUT /api/bounties/{id}/select-winner` (the owner). Rules live in `documents.bounties`.
"""
from __future__ import annotations

from datetime import UTC

from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from documents import bounties, users
from handlers.base import (
    ApiHandler,
    ApiSchema,
    PageQuery,
    body,
    public,
    query,
    responds,
)
from handlers.schemas import MoneyAmount, drop_blanks, strip_strings
from handlers.schemas_out import UserBriefOut

BOUNTY_ID = r"([^/]+)"


# --------------------------------------------------------------------------- fields

Tags = fields.List(fields.String(validate=validate.Length(min=1, max=30)),
                   validate=validate.Length(max=10))


# --------------------------------------------------------------------------- schemas

class BountyFields(ApiSchema):
    """The editable fields of a bounty, all optional (edits)."""

    title = fields.String(validate=validate.Length(min=3, max=200))
    description = fields.String(validate=validate.Length(min=1, max=10_000))
    requirements = fields.String(validate=validate.Length(max=10_000))
    budget_cents = MoneyAmount(max_cents=bounties.MAX_BUDGET_CENTS, data_key="budget")
    deadline = fields.AwareDateTime(format="iso", default_timezone=UTC)
    category = fields.String(allow_none=True, validate=validate.Length(max=60))
    tags = Tags

    @pre_load
    def _strip(self, data, **kwargs):
        return strip_strings(data)


class NewBountyBody(BountyFields):
    """`title` 3–200, `description`, `requirements`, `budget` (decimal > 0, ≤ 100000, two
    places), `deadline` (ISO 8601, in the future), optional `category` (an existing one) and
    `tags` (≤ 10)."""

    title = fields.String(required=True, validate=validate.Length(min=3, max=200))
    description = fields.String(required=True, validate=validate.Length(min=1, max=10_000))
    budget_cents = MoneyAmount(required=True, max_cents=bounties.MAX_BUDGET_CENTS,
                               data_key="budget")
    deadline = fields.AwareDateTime(required=True, format="iso",
                                   default_timezone=UTC)


class BountyListQuery(PageQuery):
    """Filters of seed 001 §10: `status`, `category`, `min_budget`, `max_budget`, `search`,
    `mine=true` (the caller's own bounties, cancelled included; needs a token), `sort`."""

    status = fields.String(validate=validate.OneOf(bounties.PUBLIC_STATUSES))
    category = fields.String(validate=validate.Length(min=1, max=60))
    min_budget_cents = MoneyAmount(min_cents=0, max_cents=bounties.MAX_BUDGET_CENTS,
                                   data_key="min_budget")
    max_budget_cents = MoneyAmount(min_cents=0, max_cents=bounties.MAX_BUDGET_CENTS,
                                   data_key="max_budget")
    search = fields.String(validate=validate.Length(max=100))
    mine = fields.Boolean(load_default=False)
    sort = fields.String(load_default="newest", validate=validate.OneOf(tuple(bounties.SORTS)))

    @pre_load
    def _blanks(self, data, **kwargs):
        return drop_blanks(data)

    @validates_schema
    def _range(self, data, **kwargs):
        low, high = data.get("min_budget_cents"), data.get("max_budget_cents")
        if low is not None and high is not None and low > high:
            raise ValidationError("Must not be below min_budget", "max_budget")


class ApplyBody(ApiSchema):
    """`proposal` 1–5000 characters, optional `price` (counter-offer, decimal > 0) and
    `portfolio_model_ids` (≤ 10 of the applicant's own published models)."""

    proposal = fields.String(required=True,
                             validate=validate.Length(min=1, max=bounties.MAX_PROPOSAL))
    price_cents = MoneyAmount(max_cents=bounties.MAX_BUDGET_CENTS, data_key="price",
                              allow_none=True)
    portfolio_model_ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                                      validate=validate.Length(max=bounties.MAX_PORTFOLIO_MODELS))

    @pre_load
    def _strip(self, data, **kwargs):
        return strip_strings(data)


class SelectWinnerBody(ApiSchema):
    """`application_id` of a pending application to this bounty."""

    application_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class BountyOut(ApiSchema):
    id = fields.String()
    title = fields.String()
    budget = fields.Float()
    currency = fields.String()
    deadline = fields.String()
    status = fields.String()
    application_count = fields.Integer()
    creator = fields.Nested(UserBriefOut, allow_none=True)
    winner = fields.Dict(allow_none=True)
    applicants = fields.Integer(allow_none=True)
    applications = fields.List(fields.Raw(), allow_none=True)
    category = fields.String(allow_none=True)
    completed_at = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    creator_id = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    is_accepting_applications = fields.Boolean(allow_none=True)
    my_application = fields.Dict(allow_none=True)
    requirements = fields.String(allow_none=True)
    tags = fields.List(fields.String(), allow_none=True)
    updated_at = fields.String(allow_none=True)
    winner_id = fields.String(allow_none=True)
    winning_application_id = fields.String(allow_none=True)


class ApplicationOut(ApiSchema):
    id = fields.String()
    bounty_id = fields.String()
    applicant = fields.Nested(UserBriefOut, allow_none=True)
    proposal = fields.String()
    price = fields.Float(allow_none=True)
    status = fields.String()
    applicant_id = fields.String(allow_none=True)
    application_count = fields.Integer(allow_none=True)
    created_at = fields.String(allow_none=True)
    decided_at = fields.String(allow_none=True)
    portfolio_model_ids = fields.List(fields.String(), allow_none=True)


# --------------------------------------------------------------------------- handlers

class BountiesHandler(ApiHandler):
    @public
    @query(BountyListQuery)
    @responds(BountyOut, paginated=True)
    async def get(self) -> None:
        """Bounties, newest first by default, paginated and filtered.

        Seed 001 §10: filters `status`
        (open, in_progress, completed), `category`, `min_budget`/`max_budget`, `search`;
        cancelled bounties are hidden except from `mine=true` (401 without a token)."""
        filters = dict(self.query)
        if filters.pop("mine"):
            filters["creator_id"] = self.require_user()["_id"]
        docs, meta = await bounties.list_page(
            self.db, filters, page=filters.pop("page"), limit=filters.pop("limit"),
            sort=filters.pop("sort"), all_statuses="creator_id" in filters)
        self.write_page(await bounties.render_bounties(self.db, docs), meta)

    @body(NewBountyBody)
    @responds(BountyOut, status=201)
    async def post(self) -> None:
        """Post a bounty (any signed-in user): 201 with it, status `open`. 422 for a past
        deadline, a bad budget or an unknown category."""
        doc = await bounties.create(self.db, self.require_user(), self.body)
        self.write_json((await bounties.render_bounties(self.db, [doc]))[0], 201)


class BountyHandler(ApiHandler):
    @public
    @responds(BountyOut)
    async def get(self, bounty_id: str) -> None:
        """One bounty with `application_count`; the owner and staff (`bounties.moderate`)
        also get `applications`, an applicant `my_application`. 404 BOUNTY_NOT_FOUND."""
        viewer = self.current_user
        bounty = await bounties.get(self.db, bounty_id)
        sees_all = bounties.is_owner(viewer, bounty) or users.has_permission(
            viewer, "bounties.moderate")
        self.write_json(await bounties.render_detail(self.db, bounty, viewer, sees_all=sees_all))


class ApplyHandler(ApiHandler):
    @body(ApplyBody)
    @responds(ApplicationOut, status=201)
    async def post(self, bounty_id: str) -> None:
        """Apply to an open bounty before its deadline (creators only, seed 001 §10): 201
        with the application; the owner gets a `bounty_application` notification. 403
        CREATORS_ONLY, 400 CANNOT_APPLY_OWN_BOUNTY, 409 BOUNTY_CLOSED / ALREADY_APPLIED."""
        user = self.require_user()
        application, bounty = await bounties.apply(self.db, self.services.hub, bounty_id, user,
                                                    self.body)
        out = bounties.render_application(application, {user["_id"]: user})
        out["application_count"] = bounty["application_count"]
        self.write_json(out, 201)


class SelectWinnerHandler(ApiHandler):
    @body(SelectWinnerBody)
    @responds(BountyOut)
    async def put(self, bounty_id: str) -> None:
        """The owner picks the winning application: the bounty becomes `completed` with
        `winner`; other applications are rejected; the winner is notified. 403
        NOT_BOUNTY_OWNER, 404 APPLICATION_NOT_FOUND, 409 BOUNTY_CLOSED (already decided)."""
        user = self.require_user()
        bounty = await bounties.select_winner(self.db, self.services.hub, bounty_id, user,
                                              self.body["application_id"])
        self.write_json(await bounties.render_detail(self.db, bounty, user, sees_all=True))


routes = [
    (r"/api/bounties", BountiesHandler),
    (rf"/api/bounties/{BOUNTY_ID}", BountyHandler),
    (rf"/api/bounties/{BOUNTY_ID}/apply", ApplyHandler),
    (rf"/api/bounties/{BOUNTY_ID}/select-winner", SelectWinnerHandler),
]
