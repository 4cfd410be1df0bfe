"""Response shapes of the accounts, commerce and messaging areas.

Shared by the routes that answer them: a response schema lists every field of the answer;
the body is rendered through it (`handlers.rendering`: a field it does not declare is not
sent) and `/openapi.json` publishes it closed. Fields a document may lack or hold null are
`allow_none`.

- users: `UserBriefOut` (the card next to content), `UserOut` (profile, own or admin view),
  `FollowerCardOut`, `FollowOut`, `PasswordChangedOut`;
- cart and checkout: `CartOut`, `CartAddedOut`, `CheckoutOut`, `PaymentMethodsOut`;
- support: `TicketOut`, `TicketMessageOut`, `TicketPageOut`;
- notifications and messages: `NotificationOut`, `NotificationPageOut`, `ReadAllOut`,
  `ConversationOut`, `DirectMessageOut`, `ConversationPageOut`, `MessageThreadOut`,
  `MessagesReadOut`.
"""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields


class OpenOut(Schema):
    """Base of the response schemas (never loaded from input: `unknown` only matters to
    marshmallow; what is sent is what they declare, `handlers.rendering`)."""

    class Meta:
        unknown = EXCLUDE


def _text() -> fields.String:
    return fields.String(allow_none=True)


def _number() -> fields.Float:
    return fields.Float(allow_none=True)


# --------------------------------------------------------------------------- users

class UserBriefOut(OpenOut):
    """``{id, username, full_name, avatar_url, is_verified_creator}``."""

    id = fields.String(required=True)
    username = fields.String(required=True)
    full_name = _text()
    avatar_url = _text()
    is_verified_creator = fields.Boolean()


class FollowerCardOut(UserBriefOut):
    """A brief user card with `followed_at` (ISO 8601)."""

    followed_at = fields.String()


class UserOut(OpenOut):
    """A user: the public profile, and for the user themselves or staff also email, roles
    and account state (snake_case plus the camelCase contract's names)."""

    id = fields.String(required=True)
    username = fields.String(required=True)
    email = _text()
    full_name = _text()
    first_name = _text()
    last_name = _text()
    firstName = _text()
    lastName = _text()
    user_type = fields.String()
    avatar_url = _text()
    bio = _text()
    profile = fields.Dict(allow_none=True)
    roles = fields.List(fields.String())
    is_staff = fields.Boolean()
    is_active = fields.Boolean(allow_none=True)
    isActive = fields.Boolean(allow_none=True)
    is_verified = fields.Boolean(allow_none=True)
    is_verified_creator = fields.Boolean(allow_none=True)
    has_password = fields.Boolean()
    two_factor_enabled = fields.Boolean()
    is_following = fields.Boolean(allow_none=True)
    followers_count = fields.Integer(allow_none=True)
    following_count = fields.Integer(allow_none=True)
    created_at = _text()
    createdAt = _text()
    updated_at = _text()
    updatedAt = _text()
    last_login = _text()
    stats = fields.Dict()
    recent_actions = fields.List(fields.Dict())
    ban_reason = fields.String(allow_none=True)
    banned_at = fields.String(allow_none=True)
    banned_by = fields.String(allow_none=True)
    email_notifications = fields.Boolean(allow_none=True)
    is_banned = fields.Boolean(allow_none=True)
    rating = fields.Float(allow_none=True)
    staff_role = fields.String(allow_none=True)
    total_models = fields.Integer(allow_none=True)
    total_sales = fields.Float(allow_none=True)


class FollowOut(OpenOut):
    """``{is_following, user: brief card, followers_count}``."""

    is_following = fields.Boolean(required=True)
    user = fields.Nested(UserBriefOut, allow_none=True)
    followers_count = fields.Integer()


class PasswordChangedOut(OpenOut):
    """``{detail, user, access_token, refresh_token, token_type, expires_in}``."""

    detail = fields.String(required=True)
    user = fields.Nested(UserOut)
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    accessToken = fields.String(allow_none=True)
    refreshToken = fields.String(allow_none=True)


# --------------------------------------------------------------------------- cart, checkout

class CartLineOut(OpenOut):
    """``{id, model_id, added_at, available, model, price, discount, amount}``."""

    id = fields.String(required=True)
    model_id = fields.String(required=True)
    added_at = _text()
    available = fields.Boolean()
    model = fields.Dict(allow_none=True)
    price = fields.Float()
    discount = fields.Float()
    amount = fields.Float()


class CartOut(OpenOut):
    """``{items, item_count, subtotal, discount, total, platform_fee, currency, coupon}``."""

    items = fields.List(fields.Nested(CartLineOut), required=True)
    item_count = fields.Integer()
    subtotal = fields.Float()
    discount = fields.Float()
    total = fields.Float()
    platform_fee = fields.Float()
    currency = fields.String()
    coupon = fields.Dict(allow_none=True)


class CartAddedOut(CartOut):
    """The cart with the new line ``item: {id, model_id}``."""

    item = fields.Dict()


class CheckoutPurchaseOut(OpenOut):
    model_id = fields.String()
    transaction_id = _text()
    title = _text()
    amount = _number()
    download_url = _text()


class CheckoutOut(OpenOut):
    """``{transaction_id, transaction_ids, order_id, order_number, status, subtotal,
    discount, total_amount, platform_fee, currency, coupon_code, purchases}``, plus
    ``{payment_intent_id, client_secret, next_action}`` while 3-D Secure is pending."""

    transaction_id = _text()
    transaction_ids = fields.List(fields.String())
    order_id = fields.String(required=True)
    order_number = _text()
    status = fields.String(required=True)
    subtotal = _number()
    discount = _number()
    total_amount = _number()
    platform_fee = _number()
    currency = fields.String()
    coupon_code = _text()
    purchases = fields.List(fields.Nested(CheckoutPurchaseOut))
    payment_intent_id = _text()
    client_secret = _text()
    next_action = fields.Raw(allow_none=True)


class PaymentMethodOut(OpenOut):
    id = fields.String()
    type = fields.String()
    name = fields.String()
    enabled = fields.Boolean()
    accepts = fields.List(fields.String())


class PaymentMethodsOut(OpenOut):
    """``{payment_methods: [{id, type, name, enabled, accepts}], currency, provider,
    test_mode}``."""

    payment_methods = fields.List(fields.Nested(PaymentMethodOut), required=True)
    currency = fields.String()
    provider = fields.String()
    test_mode = fields.Boolean()


# --------------------------------------------------------------------------- support

class TicketMessageOut(OpenOut):
    """A support message with the sender's brief card under `sender`."""

    id = fields.String(required=True)
    ticket_id = _text()
    sender_id = _text()
    sender_type = _text()
    content = _text()
    attachments = fields.List(fields.Raw())
    sender = fields.Nested(UserBriefOut, allow_none=True)
    created_at = _text()


class TicketOut(OpenOut):
    """A ticket with the owner's card under `user` (email for staff), `unread_count`, and
    on the detail routes its `messages`."""

    id = fields.String(required=True)
    subject = _text()
    category = _text()
    priority = _text()
    status = _text()
    user_id = _text()
    assigned_to = _text()
    assignee_id = _text()
    message_count = fields.Integer()
    unread_count = fields.Integer()
    user = fields.Dict(allow_none=True)
    messages = fields.List(fields.Nested(TicketMessageOut))
    created_at = _text()
    updated_at = _text()
    resolved_at = _text()
    last_message_at = fields.String(allow_none=True)
    staff_read_at = fields.String(allow_none=True)
    unread_by_staff = fields.Integer(allow_none=True)
    unread_by_user = fields.Integer(allow_none=True)
    user_read_at = fields.String(allow_none=True)


class TicketPageOut(OpenOut):
    """The staff desk's page: the envelope plus ``status_counts``."""

    items = fields.List(fields.Nested(TicketOut), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    pages = fields.Integer(required=True)
    status_counts = fields.Dict(keys=fields.String(), values=fields.Integer())


# --------------------------------------------------------------------------- notifications

class NotificationOut(OpenOut):
    """``{id, user_id, type, title, message, data, action_url, is_read, created_at}`` (and
    `unread_count` when one was just marked read)."""

    id = fields.String(required=True)
    user_id = _text()
    type = fields.String()
    title = _text()
    message = _text()
    data = fields.Dict(allow_none=True)
    action_url = _text()
    is_read = fields.Boolean()
    created_at = _text()
    unread_count = fields.Integer()


class NotificationPageOut(OpenOut):
    """``{notifications, items (the same list), unread_count, total, page, limit, pages}``."""

    notifications = fields.List(fields.Nested(NotificationOut), required=True)
    items = fields.List(fields.Nested(NotificationOut), required=True)
    unread_count = fields.Integer()
    total = fields.Integer()
    page = fields.Integer()
    limit = fields.Integer()
    pages = fields.Integer()


class ReadAllOut(OpenOut):
    """``{updated, unread_count}``."""

    updated = fields.Integer(required=True)
    unread_count = fields.Integer(required=True)


# --------------------------------------------------------------------------- messages

class DirectMessageOut(OpenOut):
    """A direct message with `conversation_id` and the sender's card."""

    id = fields.String(required=True)
    conversation_id = fields.String()
    sender_id = fields.String()
    recipient_id = _text()
    content = _text()
    attachments = fields.List(fields.Raw())
    sender = fields.Nested(UserBriefOut, allow_none=True)
    read_at = _text()
    created_at = _text()


class ConversationOut(OpenOut):
    """A conversation: the other participant's card, the last message, `unread_count`."""

    id = fields.String(required=True)
    participant = fields.Nested(UserBriefOut, allow_none=True)
    last_message = fields.Dict(allow_none=True)
    last_message_at = _text()
    unread_count = fields.Integer()
    created_at = _text()


class ConversationPageOut(OpenOut):
    """The envelope of conversations plus `unread_total`."""

    items = fields.List(fields.Nested(ConversationOut), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    pages = fields.Integer(required=True)
    unread_total = fields.Integer()


class MessageThreadOut(OpenOut):
    """``{conversation_id, items, next_cursor, has_more}``: messages newest first."""

    conversation_id = fields.String()
    items = fields.List(fields.Nested(DirectMessageOut), required=True)
    next_cursor = _text()
    has_more = fields.Boolean()


class MessagesReadOut(OpenOut):
    """``{conversation_id, marked, unread_count}``."""

    conversation_id = fields.String()
    marked = fields.Integer()
    unread_count = fields.Integer()
