"""The base of every Tailor action: a turn starts once its conversation's earlier turns have
finished what they left for after their replies (``tailor.runtime.after_reply``)."""

from __future__ import annotations

import abc
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from tailor.runtime.after_reply import AFTER_REPLY


class SettledAction(Action, abc.ABC):
    """Abstract, so the SDK's executor does not register it; subclasses implement
    :meth:`act` instead of ``run``."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Wait for the log writes earlier turns of this conversation deferred (this turn
        reads that log; an export must show it, a deletion must not miss it), then
        :meth:`act`."""
        await AFTER_REPLY.settle(tracker.sender_id)
        return await self.act(dispatcher, tracker, domain)

    @abc.abstractmethod
    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """The action's turn (see :meth:`run`)."""
