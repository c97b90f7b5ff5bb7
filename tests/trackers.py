"""Trackers as the Rasa server sends them to the action server, for in-process action tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rasa_sdk import Tracker

from tailor.recommend.criteria import CRITERIA_SLOTS

#: Every slot of the domain that the actions read.
SLOTS = (*CRITERIA_SLOTS, "shown", "seen")


def sdk_tracker(
    text: str,
    intent: str,
    sender: str,
    entities: Sequence[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    channel: str = "rest",
    message_id: str | None = None,
) -> Tracker:
    """The tracker after one user message (every slot present, unset ones ``None``)."""
    values: dict[str, Any] = {name: None for name in SLOTS}
    values.update(slots or {})
    latest: dict[str, Any] = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.99},
        "entities": list(entities or []),
        "metadata": metadata or {},
    }
    if message_id is not None:
        latest["message_id"] = message_id
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": values,
            "latest_message": latest,
            "events": [
                {
                    "event": "user",
                    "text": text,
                    "parse_data": latest,
                    "input_channel": channel,
                    "metadata": metadata or {},
                },
            ],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )
