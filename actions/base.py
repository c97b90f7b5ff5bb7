"""The base of every Tailor action: a turn starts once its conversation's earlier turns have
finished what they left for after their replies (``tailor.runtime.after_reply``)."""

from __future__ import annotations

import abc
import asyncio
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from tailor.runtime.after_reply import AFTER_REPLY
from tailor.runtime.hints import Pending

#: Work started for a message from the Rasa server's hints, by (sender id, message id),
#: until its action takes it (``actions.actions.Ahead``; ``tailor.runtime.hints``).
AHEAD: Pending[Any] = Pending(size=256, ttl=30.0)


def hinted_key(tracker: Tracker) -> tuple[str, str] | None:
    """The key of the tracker's latest message among the hinted ones."""
    message_id = (tracker.latest_message or {}).get("message_id")
    return (tracker.sender_id, message_id) if isinstance(message_id, str) else None


async def hinted_work_admitted(key: tuple[str, str]) -> None:
    """Wait until the hinted observation of the message under ``key``, if one was started,
    has admitted it: its writes (a sign-in's profile link, stated preferences) land before the
    action's own (a deletion must not miss them)."""
    ahead = AHEAD.get(key)
    if ahead is not None:
        await asyncio.wait({ahead.observing.admitted})


class SettledAction(Action, abc.ABC):
    """Abstract, so the SDK's executor does not register it; subclasses implement
    :meth:`act` instead of ``run``."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Wait for the log writes earlier turns of this conversation deferred (this turn
        reads that log; an export must show it, a deletion must not miss it), then
        :meth:`act`."""
        key = hinted_key(tracker)
        if key is not None:
            AHEAD.claim(key)  # a hint arriving from now on is too late to start anything
        await AFTER_REPLY.settle(tracker.sender_id)
        if key is not None:
            await hinted_work_admitted(key)
        try:
            return await self.act(dispatcher, tracker, domain)
        finally:
            if key is not None:
                AHEAD.discard(key)  # what this action did not take (a privacy action's)

    @abc.abstractmethod
    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """The action's turn (see :meth:`run`)."""
