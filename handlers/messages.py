"""Direct-message routes (seed 001 `/dashboard/messages`, seed 004 Dashboard Messages).

Conversations exist only for their two participants: anyone else gets 404. The rules live in
`documents.messages`; each new message is delivered live on the recipient's
``notifications:<id>`` channel as a `direct_message` event.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from documents import messages
from documents.common import object_id
from documents.errors import Invalid
from handlers.base import ApiHandler, ApiSchema, PageQuery, body, query, responds
from handlers.schemas_out import ConversationPageOut, DirectMessageOut, MessagesReadOut, MessageThreadOut
from handlers.support import MessageSchema


class NewMessageSchema(MessageSchema):
    recipient_id = fields.String(validate=validate.Length(min=1, max=64))
    recipient_username = fields.String(validate=validate.Length(min=1, max=64))

    @validates_schema
    def _one_recipient(self, data, **_):
        if ("recipient_id" in data) == ("recipient_username" in data):
            raise ValidationError("Give exactly one of recipient_id or recipient_username.",
                                  "recipient_id")


class HistoryQuery(ApiSchema):
    before = fields.String(validate=validate.Length(min=1, max=64))
    limit = fields.Integer(load_default=30, validate=validate.Range(min=1, max=100))


class ConversationsHandler(ApiHandler):
    @query(PageQuery)
    @responds(ConversationPageOut)
    async def get(self) -> None:
        """The caller's conversations, newest activity first, each with the other
        participant's brief card, the last message and the caller's `unread_count`; the body
        adds `unread_total`."""
        items, meta, unread = await messages.list_conversations(
            self.db, self.current_user, page=self.query["page"], limit=self.query["limit"])
        self.write_page(items, meta, unread_total=unread)

    @body(NewMessageSchema)
    @responds(DirectMessageOut, status=201)
    async def post(self) -> None:
        """Send a message to `recipient_id` or `recipient_username` (the conversation is
        created on first use): 201 with the message (including `conversation_id`). 400
        CANNOT_MESSAGE_SELF; 404 USER_NOT_FOUND; 422 on empty/oversized content."""
        b = self.body
        recipient = await messages.find_recipient(
            self.db, recipient_id=b.get("recipient_id"),
            recipient_username=b.get("recipient_username"))
        message = await messages.send(self.db, self.services.hub, self.current_user, recipient,
                                      b["content"], b["attachments"], settings=self.settings_)
        self.write_json(message, 201)


class ConversationListHandler(ApiHandler):
    """`/api/messages/conversations`: the list only (sending goes to `POST /api/messages`)."""

    get = ConversationsHandler.get


class ConversationHandler(ApiHandler):
    @query(HistoryQuery)
    @responds(MessageThreadOut)
    async def get(self, conversation_id: str) -> None:
        """Messages of a conversation, newest first: ``{items, next_cursor, has_more}``;
        pass `before=<next_cursor>` for older ones. 404 for non-participants."""
        conversation = await messages.conversation_for(self.db, conversation_id,
                                                       self.current_user)
        before = self.query.get("before")
        if before is not None and object_id(before) is None:
            raise Invalid({"before": ["Not a message id."]})
        page = await messages.history(self.db, conversation, before=object_id(before),
                                      limit=self.query["limit"])
        page["conversation_id"] = str(conversation["_id"])
        self.write_json(page)


class ConversationSendHandler(ApiHandler):
    @body(MessageSchema)
    @responds(DirectMessageOut, status=201)
    async def post(self, conversation_id: str) -> None:
        """Send into an existing conversation (participants only, else 404): 201 with it."""
        message = await messages.send_in(self.db, self.services.hub, self.current_user,
                                         conversation_id, self.body["content"],
                                         self.body["attachments"], settings=self.settings_)
        self.write_json(message, 201)


class MessageReadHandler(ApiHandler):
    @responds(MessagesReadOut)
    async def put(self, message_id: str) -> None:
        """Mark a message and the earlier ones to the caller read (recipient only; 404 for
        strangers, 403 for its sender): ``{conversation_id, marked, unread_count}``."""
        self.write_json(await messages.mark_read(self.db, self.current_user, message_id))


routes = [
    (r"/api/messages", ConversationsHandler),
    (r"/api/messages/conversations", ConversationListHandler),
    (r"/api/messages/([^/]+)/send", ConversationSendHandler),
    (r"/api/messages/([^/]+)/read", MessageReadHandler),
    (r"/api/messages/([^/]+)", ConversationHandler),
]
