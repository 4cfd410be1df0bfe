"""The names of the real-time contract: channels and the events published on them
(docs/architecture.md §6; README "WebSocket protocol").

A channel is ``<kind>:<id>`` with `id` the 24-hex ObjectId of the thing it follows:

=================  ==========================  ============================================
channel            socket                      events (``type`` of a server frame)
=================  ==========================  ============================================
``community:<id>`` ``/ws/community/{id}``      `COMMUNITY_EVENTS`
``support:<id>``   ``/ws/support/{ticket_id}`` `SUPPORT_EVENTS`
``notifications:`` ``/ws/notifications``       `NOTIFICATION_EVENTS` (one per stored
``<user_id>``                                  notification type) and `DIRECT_MESSAGE`
=================  ==========================  ============================================

Control frames that are not channel events (``connected``, ``presence``, ``pong``,
``resync``...) belong to the hub (`realtime.hub`, `realtime.connection`).
"""
from __future__ import annotations

from typing import Any

COMMUNITY, SUPPORT, NOTIFICATIONS = "community", "support", "notifications"

# community channels
NEW_POST = "new_post"
NEW_COMMENT = "new_comment"
NEW_REACTION = "new_reaction"
MEMBER_JOINED = "member_joined"
MESSAGE_RECEIVED = "message_received"      # community chat and support ticket messages
TYPING_INDICATOR = "typing_indicator"      # not kept in history: offset null
COMMUNITY_EVENTS = (NEW_POST, NEW_COMMENT, NEW_REACTION, MEMBER_JOINED, MESSAGE_RECEIVED,
                    TYPING_INDICATOR)

# support ticket channels
TICKET_STATUS_CHANGED = "ticket_status_changed"
SUPPORT_EVENTS = (MESSAGE_RECEIVED, TYPING_INDICATOR, TICKET_STATUS_CHANGED)

# a user's notifications channel: each stored notification is published under its type
NEW_FOLLOWER = "new_follower"
MODEL_LIKED = "model_liked"
MODEL_PURCHASED = "model_purchased"
COMMENT_RECEIVED = "comment_received"
BOUNTY_APPLICATION = "bounty_application"
MODEL_APPROVED = "model_approved"
MODEL_REJECTED = "model_rejected"
TICKET_REPLY = "ticket_reply"
COMMUNITY_APPROVED = "community_approved"
ANNOUNCEMENT = "announcement"
DIRECT_MESSAGE = "direct_message"          # live only: a conversation keeps its own unread count
NOTIFICATION_EVENTS = (COMMUNITY_APPROVED, NEW_FOLLOWER, MODEL_LIKED, MODEL_PURCHASED,
                       COMMENT_RECEIVED, BOUNTY_APPLICATION, MODEL_APPROVED, MODEL_REJECTED,
                       TICKET_REPLY, DIRECT_MESSAGE, ANNOUNCEMENT)


def community(community_id: Any) -> str:
    """``community:<id>``: the channel of a community's posts, reactions, members and chat."""
    return f"{COMMUNITY}:{community_id}"


def support(ticket_id: Any) -> str:
    """``support:<id>``: the channel of one support ticket's conversation."""
    return f"{SUPPORT}:{ticket_id}"


def notifications(user_id: Any) -> str:
    """``notifications:<id>``: the private channel of one user's notifications."""
    return f"{NOTIFICATIONS}:{user_id}"


def kind_of(channel: str) -> str:
    """The kind of `channel` (``community``, ``support`` or ``notifications``)."""
    return channel.partition(":")[0]
