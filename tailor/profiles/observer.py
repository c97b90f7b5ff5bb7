"""What every shopper message teaches us: who sent it, how they feel, what they value.

:meth:`Observer.observe` runs once per user message (the recommend action runs its steps -
:meth:`Observer.admit`, the sentiment, :meth:`Observer.record_message` - alongside its own work,
and ranks after ``admit``). It

1. resolves the identity from the channel metadata only — a valid signed customer token, or
   a messaging platform user id the store linked to a customer — never from the text;
2. adopts the visitor's anonymous profile and events into the customer's when they identify;
3. scores the message's sentiment and stores it with a ``message`` event;
4. stores preferences the shopper states about themselves ("I care about sustainability"),
   and updates their psychographic segment.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tailor.privacy.redaction import redact
from tailor.profiles.identity import Identity, identify
from tailor.profiles.psychographics import extract_preferences
from tailor.profiles.segments import psychographic_for
from tailor.runtime.batching import MicroBatcher
from tailor.store.events import event_rows
from tailor.store.models import Event, utcnow
from tailor.store.profiles import (
    add_preferences,
    customer_by_external_id,
    customer_for_channel_user,
    link_sender,
    profile_for,
)
from tailor.store.retry import with_retry
from tailor.store.segments import set_segments

log = logging.getLogger(__name__)

#: Channels whose sender id is a platform-verified user id (linkable to a customer), by the
#: names Rasa's connectors report: Messenger arrives as "facebook", WhatsApp as "twilio" with a
#: ``whatsapp:+…`` sender id.
PLATFORM_CHANNELS = frozenset({"telegram", "facebook", "slack", "twilio"})
#: Stored message text is cut to this many characters.
MAX_STORED_TEXT = 500
#: Message texts whose sentiment is kept (least recently used first out).
SCORE_CACHE_SIZE = 4096
#: Most messages :meth:`Observer.submit_score` scores in one model call.
SCORE_BATCH = 8


@dataclass(frozen=True)
class MessageSentiment:
    """The sentiment of one message."""

    label: str
    score: float
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Observation:
    """What :meth:`Observer.observe` learnt from one message."""

    identity: Identity
    customer_id: int | None = None
    customer_name: str | None = None
    sentiment: MessageSentiment | None = None
    preferences: tuple[dict[str, Any], ...] = ()
    linked: bool = False

    @property
    def identified(self) -> bool:
        """True when a verified customer is speaking."""
        return self.customer_id is not None


class Observer:
    """Identity, sentiment and stated preferences of each message (thread-safe)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        secret: str | bytes | None,
        sentiment_model: Any | None = None,
        score_cache_size: int = SCORE_CACHE_SIZE,
    ) -> None:
        if score_cache_size < 0:
            raise ValueError(f"score_cache_size must be >= 0, got {score_cache_size}")
        self.session_factory = session_factory
        self.score_cache_size = score_cache_size
        self.secret = secret or None
        self._model = sentiment_model
        self._lock = threading.Lock()
        #: Recent scores by exact text: quick replies and short answers ("cheaper", "yes",
        #: "show me more") recur across shoppers and need no second inference.
        self._scores: OrderedDict[str, MessageSentiment] = OrderedDict()
        self._scores_lock = threading.Lock()
        self._batcher: MicroBatcher[str, MessageSentiment | None] | None = None

    @property
    def sentiment_model(self) -> Any:
        """The sentiment model, loaded on first use (not at import or construction)."""
        with self._lock:
            if self._model is None:
                from tailor.config import Settings
                from tailor.sentiment import model_for

                self._model = model_for(Settings.load())
            return self._model

    def score(self, text: str) -> MessageSentiment | None:
        """Sentiment of ``text`` (None for empty text or button payloads)."""
        return self.score_many([text])[0]

    def score_many(self, texts: Sequence[str]) -> list[MessageSentiment | None]:
        """:meth:`score` of each text, in order, with one model call for the texts not
        cached (a repeated text is scored once)."""
        out: list[MessageSentiment | None] = [None] * len(texts)
        todo: dict[str, list[int]] = {}
        with self._scores_lock:
            for i, raw in enumerate(texts):
                text = (raw or "").strip()
                if not text or text.startswith("/"):
                    continue
                hit = self._scores.get(text)
                if hit is not None:
                    self._scores.move_to_end(text)
                    out[i] = replace(hit, scores=dict(hit.scores))
                else:
                    todo.setdefault(text, []).append(i)
        if not todo:
            return out
        keys = list(todo)
        results = self.sentiment_model(keys)
        with self._scores_lock:
            for text, s in zip(keys, results, strict=True):
                scored = MessageSentiment(s.label, float(s.score), dict(s.scores))
                self._scores[text] = scored
                for i in todo[text]:
                    out[i] = replace(scored, scores=dict(scored.scores))
            while len(self._scores) > self.score_cache_size:
                self._scores.popitem(last=False)
        return out

    def safe_score_many(self, texts: Sequence[str]) -> list[MessageSentiment | None]:
        """:meth:`score_many`, with a broken model logged rather than raised (no sentiment
        for these texts; the conversation goes on)."""
        try:
            return self.score_many(texts)
        except Exception:  # a broken model must not break the conversation
            log.exception("sentiment scoring failed")
            return [None] * len(texts)

    def submit_score(self, text: str) -> Future[MessageSentiment | None]:
        """Score ``text`` in the sentiment model's thread (:meth:`safe_score_many`): messages
        that wait while the model is busy are scored together, for less CPU per message
        (``tailor.runtime.batching``)."""
        if self._batcher is None:
            with self._lock:
                if self._batcher is None:
                    self._batcher = MicroBatcher(
                        self.safe_score_many, max_batch=SCORE_BATCH, name="tailor-sentiment"
                    )
        return self._batcher.submit(text)

    def resolve(
        self,
        session: Session,
        sender_id: str,
        channel: str | None,
        metadata: Mapping[str, Any] | None,
    ) -> tuple[Identity, int | None, str | None]:
        """The verified identity of a message and the customer's internal id and name."""
        ident = identify(sender_id, metadata, self.secret)
        if ident.kind == "customer" and ident.customer_id:
            customer = customer_by_external_id(session, ident.customer_id)
            if customer is None:
                # A valid token for a customer this store does not know: stay anonymous.
                return (
                    Identity(kind="anonymous", sender_id=sender_id, error="unknown customer"),
                    None,
                    None,
                )
            return ident, customer.id, customer.name
        if channel in PLATFORM_CHANNELS:
            linked = customer_for_channel_user(session, channel, sender_id)
            if linked is not None:
                return (
                    Identity(kind="customer", sender_id=sender_id, customer_id=linked.external_id),
                    linked.id,
                    linked.name,
                )
        return ident, None, None

    def identify_only(
        self, sender_id: str, channel: str | None, metadata: Mapping[str, Any] | None
    ) -> Observation:
        """Resolve identity without recording anything (for actions that only read)."""
        with self.session_factory() as session:
            ident, cid, name = self.resolve(session, sender_id, channel, metadata)
        return Observation(identity=ident, customer_id=cid, customer_name=name)

    def admit(
        self,
        sender_id: str,
        text: str,
        channel: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Observation:
        """What the ranking of this very turn must see before it starts: the verified
        identity, the visitor's anonymous profile adopted when they identify (an opt-out wins),
        and preferences the message states. No sentiment (see :meth:`record_message`)."""
        prefs = [
            {
                "kind": p.kind,
                "value": p.value,
                "positive": p.positive,
                "evidence": redact(p.evidence)[:200],
                "at": utcnow().isoformat(),
            }
            for p in extract_preferences(text or "")
        ]
        try:
            with self.session_factory.begin() as session:
                ident, cid, name = self.resolve(session, sender_id, channel, metadata)
                linked = link_sender(session, sender_id, cid) if cid is not None else False
                if prefs:
                    profile = profile_for(session, sender_id, cid)
                    assert profile is not None
                    add_preferences(session, profile, prefs)
                    if cid is not None:
                        session.flush()
                        segment = psychographic_for(session, cid)
                        set_segments(session, "psychographic", None, {cid: segment})
        except SQLAlchemyError:
            log.exception("could not store what a message from %s says", sender_id)
            with self.session_factory() as session:
                ident, cid, name = self.resolve(session, sender_id, channel, metadata)
            linked = False
        return Observation(
            identity=ident,
            customer_id=cid,
            customer_name=name,
            preferences=tuple(prefs),
            linked=linked,
        )

    def safe_score(self, text: str) -> MessageSentiment | None:
        """:meth:`score`, with a broken model logged rather than raised (the conversation
        goes on without a sentiment)."""
        return self.safe_score_many([text])[0]

    def message_rows(
        self,
        admitted: Observation,
        text: str,
        intent: str | None = None,
        channel: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        sentiment: MessageSentiment | None = None,
    ) -> list[dict[str, Any]]:
        """The ``message`` event's row (text, intent, sentiment, device context) for the
        identity :meth:`admit` resolved, to write now (:meth:`record_message`) or later."""
        ident, cid = admitted.identity, admitted.customer_id
        payload: dict[str, Any] = {
            "intent": intent,
            "text": redact(text or "")[:MAX_STORED_TEXT],
            "channel": channel,
        }
        if ident.error:
            payload["identity_error"] = ident.error
        if sentiment is not None:
            payload["sentiment"] = sentiment.label
            payload["sentiment_scores"] = {k: round(v, 4) for k, v in sentiment.scores.items()}
        for key in ("device", "local_hour", "tz"):
            if metadata and key in metadata:
                payload[key] = metadata[key]
        return event_rows(
            "message",
            ident.sender_id,
            [],
            payload,
            customer_id=cid,
            value=sentiment.score if sentiment is not None else None,
        )

    def record_message(
        self,
        admitted: Observation,
        text: str,
        intent: str | None = None,
        channel: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        sentiment: MessageSentiment | None = None,
    ) -> Observation:
        """Store the ``message`` event (see :meth:`message_rows`); returns ``admitted`` with
        the sentiment."""
        rows = self.message_rows(admitted, text, intent, channel, metadata, sentiment)

        def write() -> None:
            with self.session_factory.begin() as session:
                session.add_all(Event(**row) for row in rows)

        try:
            with_retry(write, "storing a message")
        except SQLAlchemyError:
            log.exception("could not store a message from %s", admitted.identity.sender_id)
        return dataclasses.replace(admitted, sentiment=sentiment)

    def observe(
        self,
        sender_id: str,
        text: str,
        intent: str | None = None,
        channel: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Observation:
        """Identify, score and remember one user message; storage errors are logged.

        The same as :meth:`admit`, :meth:`safe_score` and :meth:`record_message` in turn; the
        recommend action runs the scoring alongside its own work instead.
        """
        admitted = self.admit(sender_id, text, channel, metadata)
        return self.record_message(admitted, text, intent, channel, metadata, self.safe_score(text))
