"""Rasa SDK actions for the shopper's own data: "what do you know about me?" and "forget me".

Thin: who is asking comes from the channel metadata (a verified customer token or a linked
messaging account, never the text), the work is in ``tailor.privacy``. Forgetting is a two-step
dialogue: ``action_ask_forget`` says what will be deleted and asks; the rules run
``action_forget_me`` only when the very next message affirms.

Importing this module installs the redaction of personal data from the action server's logs
(:func:`tailor.privacy.install_log_redaction`): the SDK imports every module of the package
when it starts, before any message is logged.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import AllSlotsReset, EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session, sessionmaker

from actions.base import SettledAction
from tailor.config import Settings
from tailor.privacy import (
    ConversationOwned,
    Subject,
    TrackerStore,
    export_data,
    forget,
    install_log_redaction,
    summary_text,
)
from tailor.profiles.observer import Observation, Observer

install_log_redaction()

log = logging.getLogger(__name__)

#: Background deletions of conversations forgotten during their own turn (kept referenced).
_PENDING: set[asyncio.Task[int]] = set()

SIGN_IN = (
    "This conversation also holds the data of a signed-in customer, so I can only show or "
    "delete it when you're signed in as them."
)


class PrivacyAction(SettledAction):
    """Shared plumbing; abstract so the executor does not register it."""

    def __init__(
        self,
        session_factory: sessionmaker[Session] | None = None,
        tracker_store: TrackerStore | None = None,
        secret: str | None = None,
    ) -> None:
        self._factory = session_factory
        self._tracker_store = tracker_store
        self._secret = secret
        self._observer: Observer | None = None

    def _settings(self) -> Settings:
        return Settings.load()

    @property
    def session_factory(self) -> sessionmaker[Session]:
        """The database's sessions, built on first use."""
        if self._factory is None:
            from tailor.store import make_session_factory

            self._factory = make_session_factory(self._settings().database_url)
        return self._factory

    @property
    def tracker_store(self) -> TrackerStore:
        """Rasa's tracker store (the conversations), as this deployment runs it."""
        if self._tracker_store is None:
            self._tracker_store = TrackerStore.from_settings(self._settings())
        return self._tracker_store

    @property
    def observer(self) -> Observer:
        """Identity resolution only (no sentiment model is loaded for these actions)."""
        if self._observer is None:
            secret = (
                self._secret if self._secret is not None else self._settings().customer_token_secret
            )
            self._observer = Observer(self.session_factory, secret)
        return self._observer

    async def who(self, tracker: Tracker) -> tuple[Subject, Observation]:
        """The verified subject of the latest message."""
        meta = (tracker.latest_message or {}).get("metadata")
        obs = await asyncio.to_thread(
            self.observer.identify_only,
            tracker.sender_id,
            tracker.get_latest_input_channel(),
            dict(meta) if isinstance(meta, dict) else {},
        )
        return Subject(sender_id=tracker.sender_id, customer_id=obs.customer_id), obs

    @abc.abstractmethod
    def name(self) -> str:
        """The action name declared in the domain."""


class ActionMyData(PrivacyAction):
    """ "What do you know about me?": a readable summary of what is kept, and how to get the
    full export or be forgotten."""

    def name(self) -> str:
        return "action_my_data"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        subject, _ = await self.who(tracker)

        def summarise() -> str:
            with self.session_factory() as session:
                return summary_text(export_data(session, subject, self.tracker_store))

        try:
            text = await asyncio.to_thread(summarise)
        except ConversationOwned:
            text = SIGN_IN
        dispatcher.utter_message(text=text)
        return []


class ActionAskForget(PrivacyAction):
    """Say what "forget me" deletes and ask to confirm (yes / no buttons)."""

    def name(self) -> str:
        return "action_ask_forget"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        subject, obs = await self.who(tracker)
        if subject.identified:
            first = (obs.customer_name or "").split()[0] if obs.customer_name else ""
            text = (
                f"Just to be sure{', ' + first if first else ''}: this deletes everything I "
                "keep about you — your profile and preferences, your order and browsing "
                "history, your customer groups, linked messaging accounts and all your "
                "conversations with me. Personal suggestions start from scratch, and it "
                "can't be undone. Shall I forget you?"
            )
        else:
            text = (
                "Just to be sure: this deletes everything I keep from this conversation — "
                "what you said, the products you looked at and your choices. It can't be "
                "undone. Shall I forget it?"
            )
        dispatcher.utter_message(
            text=text,
            buttons=[
                {"title": "Yes, forget me", "payload": "/affirm"},
                {"title": "No, keep it", "payload": "/deny"},
            ],
        )
        return []


class ActionForgetMe(PrivacyAction):
    """Confirmed: delete the shopper's data, including this conversation in Rasa."""

    def name(self) -> str:
        return "action_forget_me"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        subject, _ = await self.who(tracker)
        store = self.tracker_store

        def erase() -> int:
            with self.session_factory.begin() as session:
                return forget(session, subject, store).total

        try:
            deleted = await asyncio.to_thread(erase)
        except ConversationOwned:
            dispatcher.utter_message(text=SIGN_IN)
            return []
        # Rasa writes this turn back when it saves it (after this action): delete it then.
        task = asyncio.create_task(asyncio.to_thread(store.delete_after_save, tracker.sender_id))
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)
        who = "you" if subject.identified else "this conversation"
        dispatcher.utter_message(
            text=f"Done — I've deleted everything I kept about {who} ({deleted} records), "
            "and this conversation is erased once this message is sent. If you write again, "
            "we start afresh."
        )
        return [AllSlotsReset()]
