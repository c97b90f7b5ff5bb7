"""Conversation analytics: Rasa's events from RabbitMQ, stored once each in the database.

Run the consumer with ``tailor analytics`` (or ``python -m tailor.analytics``); the
production profile starts it for you. See :mod:`tailor.analytics.consumer`.
"""

from tailor.analytics.events import (
    ConversationEvent,
    EventBatch,
    ForgottenSender,
    InvalidEvent,
    event_key,
    parse_event,
    store_events,
)

__all__ = [
    "ConversationEvent",
    "EventBatch",
    "ForgottenSender",
    "InvalidEvent",
    "event_key",
    "parse_event",
    "store_events",
]
