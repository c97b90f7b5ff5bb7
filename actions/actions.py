"""Rasa SDK custom actions: read the tracker, call the recommendation service, emit events.

Thin by design: the logic lives in ``tailor.recommend`` and ``tailor.nlu``. The SDK builds
actions with no arguments, so the service arrives through a constructor default and is
built lazily on first use (never at import time).
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import AHEAD, SettledAction, hinted_key
from tailor.config import Settings
from tailor.marketing.triggers import Offer, TriggerEngine, get_default_engine, offer_replies
from tailor.nlu.ordinals import parse_ordinals
from tailor.nlu.reactions import parse_reaction
from tailor.nlu.understand import Understanding
from tailor.privacy.redaction import redact
from tailor.profiles.observer import SCORE_CACHE_SIZE, MessageSentiment, Observation, Observer
from tailor.recommend.criteria import (
    CRITERIA_SLOTS,
    Criteria,
    Entity,
    ShownProduct,
    TurnResult,
    apply_turn,
    merge_entities,
    shown_from_slot,
)
from tailor.recommend.personal import ShopperContext
from tailor.recommend.render import (
    RICH_CHANNELS,
    Reply,
    comparison_replies,
    details_replies,
    quick,
    recommendation_replies,
)
from tailor.recommend.scope import is_bare_product_phrase, is_grounded, is_product_request
from tailor.recommend.service import (
    ProductDetails,
    Recommendation,
    Recommender,
    get_default_recommender,
    loaded_recommender,
)
from tailor.runtime import hints
from tailor.runtime.after_reply import AFTER_REPLY, AfterReply
from tailor.runtime.hints import on_hint
from tailor.store.events import event_rows

#: Words that carry no shopping meaning; a request made only of them gets a question back.
_GENERIC = frozenset(
    """a an any anything buy can could do find for gift good have help i id i'd im i'm like
    looking me need please product products recommend recommendation recommendations show
    some something stuff suggest suggestion suggestions to want what would you""".split()  # noqa: SIM905
)

log = logging.getLogger(__name__)


def _is_generic(text: str) -> bool:
    words = re.findall(r"[a-z']+", text.lower())
    return all(w in _GENERIC for w in words)


_observer: Observer | None = None


def _default_observer(recommender: Recommender) -> Observer:
    global _observer
    if _observer is None:
        settings = Settings.load()
        _observer = Observer(
            recommender.session_factory,
            settings.customer_token_secret,
            score_cache_size=SCORE_CACHE_SIZE if settings.text_caches else 0,
        )
    return _observer


class Observing:
    """The observation of one user message, run alongside an action's own work.

    :meth:`Observer.admit` (identity, the anonymous profile adopted on sign-in, stated
    preferences: what this turn's ranking reads) starts in a worker thread at once. The
    sentiment model starts when the score is first wanted: by the turn itself (a negative
    reaction, feedback: :meth:`scored`), or else after the reply, to store the ``message``
    event (:meth:`log_after_reply`). On two cores, a model running beside the turn took the
    core its query embedding and search need (measured: the recommend action 1-2 ms slower).
    """

    def __init__(
        self,
        observer: Observer,
        tracker: Tracker,
        log_later: Callable[[Sequence[dict[str, Any]]], Awaitable[None]],
        after_reply: AfterReply = AFTER_REPLY,
    ) -> None:
        intent, text, _ = TailorAction.latest(tracker)
        self._start(
            observer,
            log_later,
            after_reply,
            tracker.sender_id,
            intent,
            text,
            tracker.get_latest_input_channel(),
            TailorAction.metadata(tracker),
        )

    @classmethod
    def ahead(
        cls,
        observer: Observer,
        log_later: Callable[[Sequence[dict[str, Any]]], Awaitable[None]],
        sender_id: str,
        text: str,
        channel: str | None,
        metadata: dict[str, Any],
        after_reply: AfterReply = AFTER_REPLY,
    ) -> Observing:
        """The observation of a message the action server was told about before its action
        call (``tailor.runtime.hints``): admitted once the conversation's earlier turns have
        settled, as an action would; the intent is set when an action adopts it."""
        self = cls.__new__(cls)
        self._start(
            observer, log_later, after_reply, sender_id, "", text, channel, metadata, settle=True
        )
        return self

    def _start(
        self,
        observer: Observer,
        log_later: Callable[[Sequence[dict[str, Any]]], Awaitable[None]],
        after_reply: AfterReply,
        sender_id: str,
        intent: str,
        text: str,
        channel: str | None,
        metadata: dict[str, Any],
        settle: bool = False,
    ) -> None:
        self.observer = observer
        self.log_later = log_later
        self.after_reply = after_reply
        self.sender_id = sender_id
        self.intent = intent
        self.text = text
        self.channel = channel
        self.metadata = metadata

        async def admit() -> Observation:
            if settle:
                await after_reply.settle(sender_id)
            return await asyncio.to_thread(observer.admit, sender_id, text, channel, metadata)

        self.admitted: asyncio.Task[Observation] = asyncio.create_task(admit())
        self._sentiment: asyncio.Future[MessageSentiment | None] | None = None
        self._logged = False

    def matches(self, tracker: Tracker) -> bool:
        """Whether this observes the tracker's latest message (same sender, text, channel
        and metadata)."""
        _, text, _ = TailorAction.latest(tracker)
        return (
            self.sender_id == tracker.sender_id
            and self.text == text
            and self.channel == tracker.get_latest_input_channel()
            and self.metadata == TailorAction.metadata(tracker)
        )

    @property
    def sentiment(self) -> asyncio.Future[MessageSentiment | None]:
        """The message's sentiment, its model started on first use (in the model's thread,
        batched with other conversations' messages: ``Observer.submit_score``)."""
        if self._sentiment is None:
            self._sentiment = asyncio.wrap_future(self.observer.submit_score(self.text))
        return self._sentiment

    def start_scoring(self) -> None:
        """Start the sentiment model on the message now (see :attr:`sentiment`)."""
        _ = self.sentiment

    async def scored(self) -> Observation:
        """The admitted observation with the message's sentiment."""
        return dataclasses.replace(await self.admitted, sentiment=await self.sentiment)

    def log_after_reply(self, rows: Sequence[dict[str, Any]] = ()) -> None:
        """Store the ``message`` event once its score is known, after the reply, with the
        turn's other event ``rows`` in the same insert (once; a turn that failed still logs
        what the shopper said, if admitting them worked)."""
        if self._logged:
            return
        self._logged = True

        async def record() -> None:
            message: list[dict[str, Any]] = []
            try:
                obs = await self.scored()
            except Exception:
                log.exception("observing a message from %s failed", self.sender_id)
            else:
                message = self.observer.message_rows(
                    obs, self.text, self.intent, self.channel, self.metadata, obs.sentiment
                )
            await self.log_later([*message, *rows])

        self.after_reply.defer(self.sender_id, record())


class TailorAction(SettledAction):
    """Shared plumbing; abstract so the executor does not register it."""

    def __init__(
        self, recommender: Recommender | None = None, observer: Observer | None = None
    ) -> None:
        self._recommender = recommender
        self._observer = observer

    @property
    def recommender(self) -> Recommender:
        """The injected service, or the process-wide default built on first use."""
        if self._recommender is None:
            self._recommender = get_default_recommender()
        return self._recommender

    @property
    def observer(self) -> Observer:
        """Identity, sentiment and preferences of each message (shares the service's DB)."""
        if self._observer is None:
            self._observer = _default_observer(self.recommender)
        return self._observer

    @staticmethod
    def metadata(tracker: Tracker) -> dict[str, Any]:
        """The channel metadata of the latest message (the only source of identity)."""
        meta = (tracker.latest_message or {}).get("metadata")
        return dict(meta) if isinstance(meta, dict) else {}

    async def observe(self, tracker: Tracker, scored: bool = False) -> Observation:
        """Identify the latest user message's shopper now and store the message after the
        reply (once per user turn); with ``scored``, wait for its sentiment too."""
        ahead = take_ahead(tracker)
        observing = (
            ahead.observing
            if ahead is not None
            else Observing(self.observer, tracker, self.recommender.log_later)
        )
        try:
            return await (observing.scored() if scored else observing.admitted)
        finally:
            observing.log_after_reply()

    def log_after_reply(self, tracker: Tracker, rows: Sequence[dict[str, Any]]) -> None:
        """Write event ``rows`` once this turn's reply has gone (after the message)."""
        AFTER_REPLY.defer(tracker.sender_id, self.recommender.log_later(rows))

    async def shopper(self, tracker: Tracker, obs: Observation) -> ShopperContext:
        """Ranking inputs for this shopper: profile, segments, session, context."""
        return await asyncio.to_thread(
            self.recommender.shopper, tracker.sender_id, obs.customer_id, self.metadata(tracker)
        )

    async def understand(self, ahead: Ahead | None, text: str) -> Understanding:
        """The message's understanding: the one the hints started (it is of the same text),
        else made now."""
        if ahead is not None and ahead.understood is not None:
            return await ahead.understood
        return await asyncio.to_thread(self.recommender.understanding.understand, text)

    async def scope(self, ahead: Ahead | None, u: Understanding, text: str) -> float:
        """How close the message (``u``, understood from ``text``) is to the catalog: what the
        hints started computing, if anything (it is for the same text), else computed now."""
        if ahead is not None and ahead.scope is not None:
            hints.STATS["scope ahead"] += 1
            try:
                return await ahead.scope
            except Exception:
                log.exception(
                    "the closeness computed ahead for %s failed", ahead.observing.sender_id
                )
        return await asyncio.to_thread(self.recommender.catalog_similarity, u.semantic or text)

    async def details(self, ahead: Ahead | None, ids: Sequence[int]) -> list[ProductDetails]:
        """Details of the products ``ids``: the ones the hints started reading, if they are
        these products (see :func:`peek_ahead`), else read now."""
        if ahead is not None and ahead.details is not None:
            hinted_ids, reading = ahead.details
            if hinted_ids == tuple(ids):
                hints.STATS["details ahead"] += 1
                try:
                    return await reading
                except Exception:
                    log.exception("the details read ahead for products %s failed", list(ids))
            else:
                hints.STATS["details otherwise"] += 1
        return await asyncio.to_thread(self.recommender.details, list(ids))

    @abc.abstractmethod
    def name(self) -> str:
        """The action name declared in the domain."""

    async def bare_request(
        self, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[EventType] | None:
        """Before anything was shown, with no search going, a bare product phrase that the
        NLU model read as another intent ("air fryer" as a reset, "logitec mouse" as praise)
        is a request: answer it as one. ``None`` when that is not the case."""
        if tracker.get_slot("shown"):
            return None
        if not Criteria.from_slots(tracker.current_slot_values()).is_empty():
            return None
        _, text, _ = self.latest(tracker)
        if not text.strip():
            return None
        u = await asyncio.to_thread(self.recommender.understanding.understand, text)
        if not is_bare_product_phrase(u):
            return None
        helper = ActionRecommend(self.recommender, self.observer)
        return await helper.recommend(dispatcher, tracker, "ask_recommendation", u)

    @staticmethod
    def rich(tracker: Tracker) -> bool:
        """Whether the shopper's channel renders product cards."""
        return (tracker.get_latest_input_channel() or "rest") in RICH_CHANNELS

    @staticmethod
    def send(dispatcher: CollectingDispatcher, replies: Sequence[Reply]) -> None:
        """Dispatch each reply as one bot message: text, quick replies and card payload.

        Rasa's output channels still deliver the text (with its buttons) and the cards as
        two messages, in that order; one event instead of two is one less for Rasa to
        validate, store, and send back to the action server on every later turn.
        """
        for reply in replies:
            dispatcher.utter_message(
                text=reply.text, buttons=reply.buttons or None, json_message=reply.payload
            )

    @staticmethod
    def latest(tracker: Tracker) -> tuple[str, str, list[Entity]]:
        """Intent name, text and entities of the latest user message."""
        msg = tracker.latest_message or {}
        intent = (msg.get("intent") or {}).get("name") or ""
        return (
            intent,
            msg.get("text") or "",
            [Entity.from_rasa(e) for e in msg.get("entities") or []],
        )

    @staticmethod
    def pick(
        text: str, shown: Sequence[ShownProduct], entities: Sequence[Entity]
    ) -> tuple[list[int], list[int]]:
        """Positions (0-based) the shopper refers to, and any out-of-range ones (1-based)."""
        result = parse_ordinals(text, len(shown))
        positions = list(result.indexes)
        invalid = list(result.invalid)
        if not positions and not invalid:
            named = {e.value.lower() for e in entities if e.entity == "brand"}
            positions = [i for i, s in enumerate(shown) if s.brand and s.brand.lower() in named]
        return positions, invalid


def slot_changes(tracker: Tracker, values: dict[str, Any]) -> list[EventType]:
    """``SlotSet`` events for the slots whose value differs from the tracker's: every event
    is stored, replayed and sent back to us on every later turn, so unchanged ones cost."""
    current = tracker.current_slot_values()
    return [SlotSet(name, value) for name, value in values.items() if current.get(name) != value]


def details_positions(
    text: str, shown: Sequence[ShownProduct], entities: Sequence[Entity]
) -> tuple[list[int], list[int]]:
    """The product a details request is about (at most one position, 0-based) and any
    out-of-range positions (1-based): none when the shopper must be asked which one."""
    positions, invalid = TailorAction.pick(text, shown, entities)
    if not positions and not invalid and len(shown) == 1:
        positions = [0]
    return positions[:1], invalid


def compare_positions(
    text: str, shown: Sequence[ShownProduct], entities: Sequence[Entity]
) -> tuple[list[int], list[int]]:
    """The products a comparison is about (0-based; the first two unless two or more are
    named, one named is compared with the first or second) and any out-of-range positions
    (1-based). Needs two or more products shown."""
    positions, invalid = TailorAction.pick(text, shown, entities)
    if not invalid and len(positions) < 2:
        positions = [0, 1] if not positions else sorted({positions[0], 0 if positions[0] else 1})
    return positions, invalid


def turn_intent(
    intent: str, slots: dict[str, Any], force_more: bool = False, override: str | None = None
) -> str:
    """The intent a recommendation turn acts on: "show more" is ``affirm``; refining or
    rejecting before anything was shown ("king size duvet cover" read as a refinement) can
    only be a new request."""
    if force_more:
        return "affirm"
    if override:
        return override
    if (
        intent in ("refine", "react_negative")
        and not slots.get("shown")
        and Criteria.from_slots(slots).is_empty()
    ):
        return "ask_recommendation"
    return intent


@dataclasses.dataclass
class TurnPlan:
    """What a recommendation turn will search for, decided from the message and the slots."""

    intent: str
    current: Criteria
    shown: list[ShownProduct]
    seen: list[int]
    positions: list[int]
    turn: TurnResult
    generic: bool
    ungrounded: bool
    exclude: list[int]
    avoid: list[int]
    k: int
    metadata: dict[str, Any]

    @property
    def crit(self) -> Criteria:
        """The criteria to search for."""
        return self.turn.criteria

    @property
    def direct(self) -> bool:
        """Whether the turn searches at once (not first asking who the shopper is)."""
        return not (
            self.generic or self.ungrounded or (self.intent == "affirm" and self.current.is_empty())
        )

    def search_key(self) -> tuple[Any, ...]:
        """Everything ``Recommender.recommend`` is called with but the shopper."""
        return (self.crit, self.k, tuple(self.exclude), tuple(self.avoid))


def plan_turn(
    rec: Recommender,
    intent: str,
    text: str,
    entities: list[Entity],
    slots: dict[str, Any],
    metadata: dict[str, Any],
    u: Understanding | None,
) -> TurnPlan:
    """Fold the message into the criteria and decide what to exclude and avoid (pure)."""
    current = Criteria.from_slots(slots)
    shown = shown_from_slot(slots.get("shown"))
    seen = [int(x) for x in (slots.get("seen") or []) if str(x).lstrip("-").isdigit()]
    positions, _ = TailorAction.pick(text, shown, entities)
    target = shown[positions[0]].id if positions and shown else None
    if u is not None and intent != "affirm":
        found = [Entity.from_rasa(sp.as_rasa()) for sp in u.spans if sp.entity != "price"]
        entities = merge_entities(entities, found)
    else:
        u = None
    turn = apply_turn(
        current,
        intent,
        text,
        entities,
        rec.vocab,
        shown,
        similar_target=target,
        semantic=u.semantic if u is not None else None,
    )
    fresh = current.is_empty() or turn.reset_seen
    generic = intent == "ask_recommendation" and not entities and _is_generic(text) and fresh
    ungrounded = (
        not generic
        and intent == "ask_recommendation"
        and fresh
        and u is not None
        and not is_grounded(u)
    )
    if turn.reset_seen:
        seen = []
    if turn.mode == "more":
        exclude, avoid = seen, []
    elif turn.mode == "exclude_shown":
        exclude, avoid = list(turn.exclude_ids), seen
    else:
        exclude, avoid = [], seen
    k = min(rec.k, 3) if metadata.get("device") == "mobile" else rec.k
    return TurnPlan(
        intent,
        current,
        shown,
        seen,
        positions,
        turn,
        generic,
        ungrounded,
        exclude,
        avoid,
        k,
        metadata,
    )


@dataclasses.dataclass
class Ahead:
    """Work started for one message from the Rasa server's hints (``tailor.runtime.hints``):
    its observation, its understanding, and (after the ``parsed`` hint) its answer."""

    observing: Observing
    understood: asyncio.Task[Understanding] | None
    shopper: asyncio.Task[ShopperContext] | None = None
    plan: TurnPlan | None = None
    answer: asyncio.Task[tuple[ShopperContext, Recommendation] | None] | None = None
    #: An out-of-scope or unsure message's closeness to the catalog (``catalog_similarity``
    #: of its understood text).
    scope: asyncio.Task[float] | None = None
    #: The products a details or comparison request is about, and their details.
    details: tuple[tuple[int, ...], asyncio.Task[list[ProductDetails]]] | None = None
    #: A negative reaction stored ahead (:func:`_react_ahead`): True once its rows are
    #: stored, False when it is about nothing shown.
    reaction: asyncio.Task[bool] | None = None

    async def answer_for(self, plan: TurnPlan) -> tuple[ShopperContext, Recommendation] | None:
        """The answer started ahead, if it searched for exactly what ``plan`` searches for."""
        if self.answer is None or self.plan is None:
            hints.STATS["not answered ahead"] += 1
            return None
        if self.plan.search_key() != plan.search_key() or self.plan.metadata != plan.metadata:
            hints.STATS["answered otherwise"] += 1
            return None
        hints.STATS["answered ahead"] += 1
        try:
            return await self.answer
        except Exception:
            log.exception("the answer started ahead for %s failed", self.observing.sender_id)
            return None


def _dropped(ahead: Ahead) -> None:
    # nobody took it: no action came for this message (or Rasa failed before calling one)
    details = ahead.details[1] if ahead.details is not None else None
    for task in (ahead.answer, ahead.shopper, ahead.understood, ahead.scope, details):
        if task is not None:
            task.cancel()


AHEAD.on_drop = _dropped


def take_ahead(tracker: Tracker) -> Ahead | None:
    """The work started ahead for the tracker's latest message, if it is for that message."""
    key = hinted_key(tracker)
    if key is None:
        return None
    ahead = AHEAD.take(key)
    if ahead is None:
        hints.STATS["not hinted"] += 1
        return None
    if not ahead.observing.matches(tracker):
        hints.STATS["hinted otherwise"] += 1
        _dropped(ahead)
        return None
    intent, _, _ = TailorAction.latest(tracker)
    ahead.observing.intent = intent
    return ahead


def peek_ahead(tracker: Tracker) -> Ahead | None:
    """The work started ahead for the tracker's latest message, if it is for that message,
    left in place for :func:`take_ahead` (an action reads its details or scope before it
    observes the message)."""
    key = hinted_key(tracker)
    ahead: Ahead | None = AHEAD.get(key) if key is not None else None
    if ahead is None or not ahead.observing.matches(tracker):
        return None
    return ahead


def _hinted_metadata(hint: dict[str, Any]) -> dict[str, Any]:
    meta = hint.get("metadata")
    return dict(meta) if isinstance(meta, dict) else {}


@on_hint
def _on_turn_hint(hint: dict[str, Any]) -> None:
    """Start a hinted message's work (see :mod:`tailor.runtime.hints`), once the recommender
    is loaded (the warm-up does that before shoppers come)."""
    rec = loaded_recommender()
    if rec is None:
        return
    key = (hint["sender_id"], hint["message_id"])
    if hint["hint"] == "message":
        text = hint.get("text")
        if not isinstance(text, str) or AHEAD.claimed(key):
            return  # (claimed: the message's action has started; the hint came late)
        channel = hint.get("input_channel")
        observing = Observing.ahead(
            _default_observer(rec),
            rec.log_later,
            key[0],
            text,
            channel if isinstance(channel, str) else None,
            _hinted_metadata(hint),
        )
        understood = (
            asyncio.create_task(asyncio.to_thread(rec.understanding.understand, text))
            if text.strip()
            else None
        )
        ahead = Ahead(observing, understood)
        AHEAD.put(key, ahead)
        if len(AHEAD) <= IDLE_AHEAD:
            # the likely next step, while the server has nothing else to do: with more
            # messages in flight it waits for the parsed hint (only recommendations use it)
            ahead.shopper = asyncio.create_task(_shopper_ahead(rec, observing))
    elif hint["hint"] == "parsed":
        hinted: Ahead | None = AHEAD.get(key)
        if hinted is None or hinted.answer is not None:
            return
        intent, slots, entities = hint.get("intent"), hint.get("slots"), hint.get("entities")
        if (
            not isinstance(intent, str)
            or not isinstance(slots, dict)
            or not isinstance(entities, list)
        ):
            return
        if intent in SCORED_INTENTS:
            hinted.observing.start_scoring()  # the turn waits for the score
        if intent == "react_negative":
            if hinted.reaction is None:
                hinted.reaction = asyncio.create_task(_react_ahead(rec, hinted, slots, entities))
            return
        if intent in SCOPE_INTENTS:
            if hinted.scope is None and hinted.understood is not None:
                hinted.scope = asyncio.create_task(_scope_ahead(rec, hinted, key, slots, entities))
            return
        if intent in DETAILS_INTENTS:
            if hinted.details is None:
                hinted.details = _details_ahead(rec, hinted.observing.text, intent, slots, entities)
            return
        if intent not in AHEAD_INTENTS:
            return
        if hinted.shopper is None:
            hinted.shopper = asyncio.create_task(_shopper_ahead(rec, hinted.observing))
        hinted.answer = asyncio.create_task(_answer_ahead(rec, hinted, intent, slots, entities))


async def _answer_ahead(
    rec: Recommender, ahead: Ahead, intent: str, slots: dict[str, Any], raw: list[Any]
) -> tuple[ShopperContext, Recommendation] | None:
    """Search for what a recommendation turn for this message would (None if it would not
    search at once)."""
    observing = ahead.observing
    entities = [Entity.from_rasa(e) for e in raw if isinstance(e, dict)]
    intent = turn_intent(intent, slots)
    u = None
    if intent != "affirm" and ahead.understood is not None:
        u = await ahead.understood
    plan = plan_turn(rec, intent, observing.text, entities, slots, observing.metadata, u)
    if not plan.direct or ahead.shopper is None:
        return None
    ahead.plan = plan
    return await _search(rec, plan, ahead.shopper)


async def _react_ahead(
    rec: Recommender, ahead: Ahead, slots: dict[str, Any], raw: list[Any]
) -> bool:
    """Store a negative reaction as its turn would (:func:`reaction_rows`), then start the
    turn's answer, which reads it. False when the reaction is about nothing shown.

    The rows are written in the conversation's after-reply order (after the earlier turns'
    log, and waited for by any later action, a deletion included) and in one transaction:
    stored once whether or not the action takes them (the shopper did say it)."""
    observing = ahead.observing
    entities = [Entity.from_rasa(e) for e in raw if isinstance(e, dict)]
    u = await ahead.understood if ahead.understood is not None else None
    plan = plan_turn(rec, "react_negative", observing.text, entities, slots, observing.metadata, u)
    if not plan.shown:
        return False
    obs = await observing.scored()
    rows = await reaction_rows(
        rec,
        observing.sender_id,
        obs,
        observing.text,
        plan.shown,
        plan.positions,
        observing.metadata,
        ahead.shopper,
    )
    if rows:
        stored = False

        async def store() -> None:
            nonlocal stored
            await asyncio.to_thread(rec.record_rows, rows)
            stored = True

        # shielded: once started, the write finishes even if this message's work is dropped
        await asyncio.shield(observing.after_reply.defer(observing.sender_id, store()))
        if not stored:  # (the error was logged)
            raise RuntimeError(f"storing a reaction of {observing.sender_id} failed")
    if plan.direct:
        ahead.plan = plan
        ahead.answer = asyncio.create_task(
            _search(rec, plan, asyncio.create_task(_shopper_ahead(rec, observing)))
        )
    return True


async def _search(
    rec: Recommender, plan: TurnPlan, loading: Awaitable[ShopperContext]
) -> tuple[ShopperContext, Recommendation]:
    """Search for ``plan`` and rank for the shopper whose context is ``loading`` (the
    query's embedding starts first, so it overlaps with the loading)."""
    rec.embed_ahead(plan.crit)
    shopper = await loading
    result = await asyncio.to_thread(
        rec.recommend, plan.crit, plan.k, plan.exclude, plan.avoid, shopper=shopper
    )
    return shopper, result


async def _scope_ahead(
    rec: Recommender, ahead: Ahead, key: tuple[str, str], slots: dict[str, Any], raw: list[Any]
) -> float:
    """How close an out-of-scope or unsure message is to the catalog (0 for a bare product
    phrase, which is a request whatever its closeness); when that makes it a product request
    (:class:`ActionOutOfScope`), its answer is started too."""
    assert ahead.understood is not None
    u = await ahead.understood
    bare = is_bare_product_phrase(u)
    similarity = (
        0.0
        if bare
        else await asyncio.to_thread(rec.catalog_similarity, u.semantic or ahead.observing.text)
    )
    # (claimed: the message's action has started, and plans its answer itself)
    if (bare or is_product_request(u, similarity)) and not (ahead.answer or AHEAD.claimed(key)):
        if ahead.shopper is None:
            ahead.shopper = asyncio.create_task(_shopper_ahead(rec, ahead.observing))
        ahead.answer = asyncio.create_task(
            _answer_ahead(rec, ahead, "ask_recommendation", slots, raw)
        )
    return similarity


def _details_ahead(
    rec: Recommender, text: str, intent: str, slots: dict[str, Any], raw: list[Any]
) -> tuple[tuple[int, ...], asyncio.Task[list[ProductDetails]]] | None:
    """Start reading the details a details or comparison request will show (``None`` when it
    will ask which products first)."""
    shown = shown_from_slot(slots.get("shown"))
    entities = [Entity.from_rasa(e) for e in raw if isinstance(e, dict)]
    if intent == "compare":
        if len(shown) < 2:
            return None
        positions, invalid = compare_positions(text, shown, entities)
    else:
        positions, invalid = details_positions(text, shown, entities)
    if not positions or (invalid and intent == "compare"):
        return None
    ids = tuple(shown[i].id for i in positions)
    return ids, asyncio.create_task(asyncio.to_thread(rec.details, list(ids)))


async def _shopper_ahead(rec: Recommender, observing: Observing) -> ShopperContext:
    admitted = await observing.admitted
    return await asyncio.to_thread(
        rec.shopper, observing.sender_id, admitted.customer_id, observing.metadata
    )


#: Hinted messages in flight up to which the shopper's context is loaded before the intent
#: is known (it is wasted on turns that are not recommendations).
IDLE_AHEAD = 1
#: Intents whose action is a plain recommendation turn (bot/data/rules.yml).
AHEAD_INTENTS = frozenset({"ask_recommendation", "refine", "affirm"})
#: Intents whose action first asks how close the message is to the catalog
#: (:class:`ActionOutOfScope`).
SCOPE_INTENTS = frozenset({"out_of_scope", "nlu_fallback"})
#: Intents whose action shows details of products shown before (bot/data/rules.yml).
DETAILS_INTENTS = frozenset({"ask_product_details", "compare"})
#: Intents whose turn waits for the message's sentiment (a reaction's strength, feedback).
SCORED_INTENTS = frozenset({"react_negative", "react_positive"})


class ActionRecommend(TailorAction):
    """Recommend products for the accumulated criteria (new request, refinement, reaction)."""

    force_more = False

    def name(self) -> str:
        return "action_recommend"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return await self.recommend(dispatcher, tracker)

    async def recommend(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        intent_override: str | None = None,
        understood: Understanding | None = None,
    ) -> list[EventType]:
        """Answer the latest message with suggestions (or a question when it is unclear)."""
        # The message is observed alongside this turn's own work (see Observing); every way
        # out of the turn, early answers and errors included, stores it after the reply.
        # Work started from the Rasa server's hints about this message is taken over.
        ahead = take_ahead(tracker)
        observing = (
            ahead.observing
            if ahead is not None
            else Observing(self.observer, tracker, self.recommender.log_later)
        )
        try:
            return await self._recommend(
                dispatcher, tracker, observing, intent_override, understood, ahead
            )
        finally:
            observing.log_after_reply()

    async def _recommend(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        observing: Observing,
        intent_override: str | None,
        understood: Understanding | None,
        ahead: Ahead | None = None,
    ) -> list[EventType]:
        rec = self.recommender
        intent, text, entities = self.latest(tracker)
        intent = turn_intent(
            intent, tracker.current_slot_values(), self.force_more, intent_override
        )
        u = understood
        if u is None and intent != "affirm" and text.strip():
            u = await self.understand(ahead, text)
        plan = plan_turn(
            rec, intent, text, entities, tracker.current_slot_values(), self.metadata(tracker), u
        )
        turn, crit, generic, ungrounded = plan.turn, plan.crit, plan.generic, plan.ungrounded
        current, shown, seen, positions = plan.current, plan.shown, plan.seen, plan.positions
        exclude, avoid, k, metadata = plan.exclude, plan.avoid, plan.k, plan.metadata
        admitted = await observing.admitted
        hinted = ahead
        if intent == "react_negative" and shown and not await _reacted_ahead(ahead):
            # how negative the reaction is sets how strongly it demotes: wait for the score
            before = ahead.shopper if ahead is not None else None
            rows = await reaction_rows(
                rec,
                tracker.sender_id,
                await observing.scored(),
                text,
                shown,
                positions,
                self.metadata(tracker),
                before,
            )
            if rows:  # one transaction for every product the reaction is about
                await asyncio.to_thread(rec.record_rows, rows)
            # what the hints loaded and searched came before the reaction was stored
            hinted = None

        def shopper_and_answer() -> tuple[ShopperContext, Recommendation]:
            # One worker thread for the turn's CPU work: threads only contend for the GIL.
            shopper = rec.shopper(tracker.sender_id, admitted.customer_id, metadata)
            return shopper, rec.recommend(crit, k, exclude, avoid, shopper=shopper)

        if plan.direct:
            answered = await hinted.answer_for(plan) if hinted is not None else None
            if answered is not None:
                shopper, result = answered
            elif hinted is not None and hinted.shopper is not None and intent != "react_negative":
                # (for a reaction, the context the hints loaded came before it was stored)
                shopper, result = await _search(rec, plan, hinted.shopper)
            else:
                rec.embed_ahead(crit)  # the query's embedding overlaps with the shopper's loading
                shopper, result = await asyncio.to_thread(shopper_and_answer)
        else:
            # What to search for depends on who asks, or the request may be out of scope.
            shopper = await self.shopper(tracker, admitted)
            for_you = shopper.personalised and (
                bool(shopper.session.positive) or bool(shopper.affinity.purchases)
            )
            if intent == "affirm" and current.is_empty() and not for_you:
                dispatcher.utter_message(response="utter_ask_what")
                return []
            if generic:
                if not for_you:
                    dispatcher.utter_message(response="utter_ask_what")
                    return []
                crit = Criteria()
            elif ungrounded:
                assert u is not None
                similarity = await asyncio.to_thread(rec.catalog_similarity, u.semantic or text)
                if not is_grounded(u, similarity):
                    # "recommend a good restaurant": a request, but for nothing this store
                    # sells
                    dispatcher.utter_message(response="utter_out_of_scope")
                    return []
            result = await asyncio.to_thread(
                lambda: rec.recommend(crit, k, exclude, avoid, shopper=shopper)
            )

        replies = recommendation_replies(result, turn.mode, self.rich(tracker), turn.notes)
        if turn.unknown:
            replies[0].text = (
                f"(I don't know the {', '.join(turn.unknown)} in this store.) " + replies[0].text
            )
        if result.basis == "for you" and result.suggestions:
            who = f", {shopper.name.split()[0]}" if shopper.name else ""
            replies[0].text = f"Here are a few picks for you{who}, based on " + (
                "what you've been looking at." if shopper.session.positive else "your past orders."
            )
        self.send(dispatcher, replies)

        new_shown = [
            ShownProduct(s.product_id, s.price, s.brand, s.colour).to_slot()
            for s in result.suggestions
        ]
        values: dict[str, Any] = crit.to_slots()
        if result.suggestions:
            ids = [s.product_id for s in result.suggestions]
            values["shown"] = new_shown
            values["seen"] = list(dict.fromkeys([*seen, *ids]))
        events = slot_changes(tracker, values)
        # What was asked and how well it was answered, for the dashboard's "queries with no
        # good results" (the text is redacted like every stored message).
        asked = {
            "criteria": crit.to_slots(),
            "query": redact(crit.query_text() or text)[:200],
            "total_matches": result.total_matches,
        }
        if result.suggestions:
            top = max(s.signals.get("relevance", 0.0) for s in result.suggestions)
            logged = event_rows(
                "shown",
                tracker.sender_id,
                ids,
                {
                    **asked,
                    "personalised": shopper.personalised,
                    "top_relevance": round(top, 4),
                    **(
                        {"experiment": shopper.experiment.to_payload()}
                        if shopper.experiment is not None
                        else {}
                    ),
                },
                admitted.customer_id,
            )
        elif not crit.is_empty():
            logged = event_rows("no_results", tracker.sender_id, [], asked, admitted.customer_id)
        else:
            logged = []
        observing.log_after_reply(logged)  # the message first, then what was shown for it
        return events


async def _reacted_ahead(ahead: Ahead | None) -> bool:
    """Whether the hints stored this message's negative reaction already (if they started
    to, wait for it; a failed attempt stored nothing)."""
    if ahead is None or ahead.reaction is None:
        return False
    try:
        stored = await ahead.reaction
    except Exception:
        log.exception("the reaction stored ahead for %s failed", ahead.observing.sender_id)
        return False
    hints.STATS["reaction ahead"] += 1
    return stored


async def reaction_rows(
    rec: Recommender,
    sender_id: str,
    obs: Observation,
    text: str,
    shown: Sequence[ShownProduct],
    positions: Sequence[int],
    metadata: dict[str, Any],
    loading: Awaitable[ShopperContext] | None = None,
) -> list[dict[str, Any]]:
    """The ``feedback`` rows of a negative reaction with what it is about, so the ranking
    demotes it: the products named, else the one the shopper last looked at, else by the
    reaction's aspect (colour, price), else everything shown. ``loading``: the shopper's
    context from before the reaction, if it is on its way."""
    reaction = parse_reaction(text)
    looked_at: ShownProduct | None = None
    if not positions:
        before = await (
            loading
            if loading is not None
            else asyncio.to_thread(rec.shopper, sender_id, obs.customer_id, metadata)
        )
        on_screen = {s.id: s for s in shown}
        for pid, _ in reversed(before.session.positive):
            if pid in on_screen:
                looked_at = on_screen[pid]
                break
    if positions:
        targets = [shown[i] for i in positions]
    elif looked_at is not None:
        targets = [looked_at]
    elif reaction.aspect == "colour":
        colours = [s.colour for s in shown if s.colour]
        top = max(set(colours), key=colours.count) if colours else None
        targets = [s for s in shown if s.colour == top][:1] if top else []
    elif reaction.aspect == "price":
        targets = [min(shown, key=lambda s: s.price or 0.0)]
    else:
        targets = list(shown)
    strength = -obs.sentiment.score if obs.sentiment is not None else 0.5
    rows: list[dict[str, Any]] = []
    for product in targets:
        value: Any = None
        if reaction.aspect == "colour":
            value = product.colour
        elif reaction.aspect == "brand":
            value = product.brand
        rows += event_rows(
            "feedback",
            sender_id,
            [product.id],
            {
                "polarity": "negative",
                "aspect": reaction.aspect,
                "value": value,
                "text": redact(text)[:200],
            },
            obs.customer_id,
            round(-abs(strength), 4),
        )
    return rows


class ActionOutOfScope(ActionRecommend):
    """Out of scope or unsure NLU: a bare product phrase ("yoga mat thick"), or a request
    close to a catalog product ("I need a new vacuum cleaner"), is still a request and gets
    suggestions; anything else gets the fixed out-of-scope or fallback reply."""

    def name(self) -> str:
        return "action_out_of_scope"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent, text, _ = self.latest(tracker)
        ahead = peek_ahead(tracker)  # (the hints' understanding and closeness, if any)
        u = await self.understand(ahead, text)
        if is_bare_product_phrase(u) or is_product_request(u, await self.scope(ahead, u, text)):
            return await self.recommend(dispatcher, tracker, "ask_recommendation", u)
        await self.observe(tracker)
        fallback = intent == "nlu_fallback"
        dispatcher.utter_message(response="utter_default" if fallback else "utter_out_of_scope")
        return []


class ActionShowMore(ActionRecommend):
    """More products for the same criteria, none shown before ("yes", "show more")."""

    force_more = True

    def name(self) -> str:
        return "action_show_more"


class ActionProductDetails(TailorAction):
    """Details of a product shown before, picked by position ("the second one")."""

    def name(self) -> str:
        return "action_product_details"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        ahead = peek_ahead(tracker)  # before observe() takes it
        redirected = await self.bare_request(dispatcher, tracker)
        if redirected is not None:
            return redirected
        obs = await self.observe(tracker)
        _, text, entities = self.latest(tracker)
        shown = shown_from_slot(tracker.get_slot("shown"))
        if not shown:
            dispatcher.utter_message(
                text="I haven't shown you any products yet — what are you looking for?"
            )
            return []
        positions, invalid = details_positions(text, shown, entities)
        if not positions:
            dispatcher.utter_message(
                text=f"I only showed {len(shown)} products; which one do you mean (1–{len(shown)})?"
                if invalid
                else "Which one? Say “the first one”, “the second one”…",
                buttons=[
                    quick(f"#{i + 1}", f"tell me more about number {i + 1}")
                    for i in range(len(shown))
                ],
            )
            return []
        product_id = shown[positions[0]].id
        details = await self.details(ahead, [product_id])
        if not details:
            dispatcher.utter_message(text="Sorry, that product is no longer in the catalog.")
            return []
        self.send(dispatcher, details_replies(details[0], self.rich(tracker)))
        self.log_after_reply(
            tracker, event_rows("details", tracker.sender_id, [product_id], None, obs.customer_id)
        )
        return []


class ActionCompare(TailorAction):
    """Compare two or more products shown before ("compare the first two")."""

    def name(self) -> str:
        return "action_compare"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        ahead = peek_ahead(tracker)  # before observe() takes it
        redirected = await self.bare_request(dispatcher, tracker)
        if redirected is not None:
            return redirected
        obs = await self.observe(tracker)
        _, text, entities = self.latest(tracker)
        shown = shown_from_slot(tracker.get_slot("shown"))
        if len(shown) < 2:
            dispatcher.utter_message(
                text="I need at least two products on screen to compare — what are you looking for?"
            )
            return []
        positions, invalid = compare_positions(text, shown, entities)
        if invalid:
            dispatcher.utter_message(
                text=f"I only showed {len(shown)} products, so I can't compare "
                + ", ".join(f"#{i}" for i in invalid)
                + "."
            )
            return []
        ids = [shown[i].id for i in positions]
        items = await self.details(ahead, ids)
        if len(items) < 2:
            dispatcher.utter_message(
                text="Sorry, one of those products is no longer in the catalog."
            )
            return []
        self.send(dispatcher, comparison_replies(items, positions, self.rich(tracker)))
        self.log_after_reply(
            tracker, event_rows("compare", tracker.sender_id, ids, None, obs.customer_id)
        )
        return []


class ActionReset(TailorAction):
    """Forget the criteria and the products shown ("start over")."""

    def name(self) -> str:
        return "action_reset"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        redirected = await self.bare_request(dispatcher, tracker)
        if redirected is not None:
            return redirected
        await self.observe(tracker)
        dispatcher.utter_message(text="Okay, let's start over. What are you looking for?")
        return slot_changes(tracker, dict.fromkeys((*CRITERIA_SLOTS, "shown", "seen")))


class ActionFeedback(TailorAction):
    """A positive reaction to what was shown: record it and offer next steps."""

    def name(self) -> str:
        return "action_feedback"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        redirected = await self.bare_request(dispatcher, tracker)
        if redirected is not None:
            return redirected
        obs = await self.observe(tracker, scored=True)  # the score is the feedback's value
        _, text, entities = self.latest(tracker)
        shown = shown_from_slot(tracker.get_slot("shown"))
        if not shown:
            dispatcher.utter_message(text="Glad to hear it! What can I find for you?")
            return []
        positions, _ = self.pick(text, shown, entities)
        ids = [shown[i].id for i in positions] or [s.id for s in shown]
        self.log_after_reply(
            tracker,
            event_rows(
                "feedback",
                tracker.sender_id,
                ids,
                {"polarity": "positive", "text": redact(text)[:200]},
                obs.customer_id,
                obs.sentiment.score if obs.sentiment is not None else None,
            ),
        )
        buttons = [quick("Tell me more about the first one", "tell me more about the first one")]
        if len(shown) >= 2:
            buttons.append(quick("Compare the first two", "compare the first two"))
        buttons.append(quick("Show more like these", "show me more"))
        dispatcher.utter_message(
            text="Glad you like them! Want details, a comparison, or more like these?",
            buttons=buttons,
        )
        return []


class ActionWarmup(TailorAction):
    """Not in the domain: `tailor run` calls it once so the service loads before shoppers come."""

    def name(self) -> str:
        return "action_warmup"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        rec = await asyncio.to_thread(lambda: self.recommender)
        await asyncio.to_thread(rec.warm_up)
        await asyncio.to_thread(self.observer.score, "warm up")
        # the first greeting checks the behavioural triggers (ActionGreet.offer)
        engine = await asyncio.to_thread(get_default_engine, rec)
        await asyncio.to_thread(engine.warm_up)
        return []


class ActionGreet(TailorAction):
    """Greet: a returning customer by name, with what they bought last; others generically.
    When a behavioural trigger applies (an abandoned cart, a restock, a win-back: rules in
    ``triggers.toml``), its message and product cards follow the greeting."""

    def __init__(
        self,
        recommender: Recommender | None = None,
        observer: Observer | None = None,
        triggers: TriggerEngine | None = None,
    ) -> None:
        super().__init__(recommender, observer)
        self._triggers = triggers

    def name(self) -> str:
        return "action_greet"

    async def offer(self, tracker: Tracker, obs: Observation) -> Offer | None:
        """The trigger offer for this shopper, fired and logged (None if no rule applies).
        A failing trigger never costs the greeting: it is logged and skipped."""
        try:
            if self._triggers is None:
                rec = await asyncio.to_thread(lambda: self.recommender)
                self._triggers = await asyncio.to_thread(get_default_engine, rec)
            return await asyncio.to_thread(
                self._triggers.conversation_offer,
                tracker.sender_id,
                obs.customer_id,
                tracker.get_latest_input_channel(),
                self.metadata(tracker),
            )
        except Exception:  # the greeting matters more than the reminder
            log.exception("behavioural triggers failed for %s", tracker.sender_id)
            return None

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        obs = await self.observe(tracker)
        offer = await self.offer(tracker, obs)
        if not obs.identified or not obs.customer_name:
            dispatcher.utter_message(response="utter_greet")
        else:
            shopper = await self.shopper(tracker, obs)
            first = obs.customer_name.split()[0]
            text = f"Welcome back, {first}!"
            buttons = []
            purchases = sorted(shopper.affinity.purchases, key=lambda p: p.at)
            if shopper.personalised and purchases:
                last = purchases[-1]
                text += f" Last time you bought the {last.title} ({last.at:%B %Y})."
                buttons.append(quick("Picks for me", "what would you recommend for me?"))
                leaf = last.category.split(" > ")[-1].lower()
                buttons.append(quick(f"More {leaf}", f"show me {leaf}"))
            if offer is None:  # the offer's quick replies follow it
                text += " What are you looking for today?"
            dispatcher.utter_message(text=text, buttons=None if offer else buttons or None)
        if offer is None:
            return []
        self.send(dispatcher, offer_replies(offer, self.rich(tracker)))
        shown = [
            ShownProduct(int(c["id"]), float(c["price"]), c.get("brand"), c.get("colour")).to_slot()
            for c in offer.cards
        ]
        return slot_changes(tracker, {"shown": shown}) if shown else []


#: Intents whose reply is a fixed response; :class:`ActionObserve` runs before it.
HANDOFF_INTENT = "human_handoff"


class ActionObserve(TailorAction):
    """Runs before fixed responses so every message is identified, scored and remembered."""

    def name(self) -> str:
        return "action_observe"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        obs = await self.observe(tracker)
        intent, text, _ = self.latest(tracker)
        if intent == HANDOFF_INTENT:
            self.log_after_reply(
                tracker,
                event_rows(
                    "handoff", tracker.sender_id, [], {"text": redact(text)[:200]}, obs.customer_id
                ),
            )
        return []
