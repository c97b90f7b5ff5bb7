"""Rasa SDK custom actions: read the tracker, call the recommendation service, emit events.

Thin by design: the logic lives in ``tailor.recommend`` and ``tailor.nlu``. The SDK builds
actions with no arguments, so the service arrives through a constructor default and is
built lazily on first use (never at import time).
"""

from __future__ import annotations

import abc
import asyncio
import re
from collections.abc import Sequence
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from tailor.nlu.ordinals import parse_ordinals
from tailor.recommend.criteria import (
    CRITERIA_SLOTS,
    Criteria,
    Entity,
    ShownProduct,
    apply_turn,
    shown_from_slot,
)
from tailor.recommend.render import (
    RICH_CHANNELS,
    Reply,
    comparison_replies,
    details_replies,
    quick,
    recommendation_replies,
)
from tailor.recommend.service import Recommender, get_default_recommender

#: Words that carry no shopping meaning; a request made only of them gets a question back.
_GENERIC = frozenset(
    """a an any anything buy can could do find for gift good have help i id i'd im i'm like
    looking me need please product products recommend recommendation recommendations show
    some something stuff suggest suggestion suggestions to want what would you""".split()  # noqa: SIM905
)


def _is_generic(text: str) -> bool:
    words = re.findall(r"[a-z']+", text.lower())
    return all(w in _GENERIC for w in words)


class TailorAction(Action, abc.ABC):
    """Shared plumbing; abstract so the executor does not register it."""

    def __init__(self, recommender: Recommender | None = None) -> None:
        self._recommender = recommender

    @property
    def recommender(self) -> Recommender:
        """The injected service, or the process-wide default built on first use."""
        if self._recommender is None:
            self._recommender = get_default_recommender()
        return self._recommender

    @abc.abstractmethod
    def name(self) -> str:
        """The action name declared in the domain."""

    @staticmethod
    def rich(tracker: Tracker) -> bool:
        """Whether the shopper's channel renders product cards."""
        return (tracker.get_latest_input_channel() or "rest") in RICH_CHANNELS

    @staticmethod
    def send(dispatcher: CollectingDispatcher, replies: Sequence[Reply]) -> None:
        """Dispatch replies: text with quick replies, then the card payload if any."""
        for reply in replies:
            dispatcher.utter_message(text=reply.text, buttons=reply.buttons or None)
            if reply.payload is not None:
                dispatcher.utter_message(json_message=reply.payload)

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
        tracker: Tracker, text: str, shown: Sequence[ShownProduct], entities: Sequence[Entity]
    ) -> tuple[list[int], list[int]]:
        """Positions (0-based) the shopper refers to, and any out-of-range ones (1-based)."""
        result = parse_ordinals(text, len(shown))
        positions = list(result.indexes)
        invalid = list(result.invalid)
        if not positions and not invalid:
            named = {e.value.lower() for e in entities if e.entity == "brand"}
            positions = [i for i, s in enumerate(shown) if s.brand and s.brand.lower() in named]
        return positions, invalid


def _criteria_events(criteria: Criteria) -> list[EventType]:
    return [SlotSet(name, value) for name, value in criteria.to_slots().items()]


class ActionRecommend(TailorAction):
    """Recommend products for the accumulated criteria (new request, refinement, reaction)."""

    force_more = False

    def name(self) -> str:
        return "action_recommend"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent, text, entities = self.latest(tracker)
        if self.force_more:
            intent = "affirm"
        current = Criteria.from_slots(tracker.current_slot_values())
        shown = shown_from_slot(tracker.get_slot("shown"))
        seen = [int(x) for x in (tracker.get_slot("seen") or []) if str(x).lstrip("-").isdigit()]
        if intent == "affirm" and current.is_empty():
            dispatcher.utter_message(response="utter_ask_what")
            return []

        rec = self.recommender
        positions, _ = self.pick(tracker, text, shown, entities)
        target = shown[positions[0]].id if positions and shown else None
        turn = apply_turn(current, intent, text, entities, rec.vocab, shown, similar_target=target)
        crit = turn.criteria
        if (
            intent == "ask_recommendation"
            and not entities
            and _is_generic(text)
            and (current.is_empty() or turn.reset_seen)
        ):
            dispatcher.utter_message(response="utter_ask_what")
            return []
        if turn.reset_seen:
            seen = []
        if turn.mode == "more":
            exclude, avoid = seen, []
        elif turn.mode == "exclude_shown":
            exclude, avoid = list(turn.exclude_ids), seen
        else:
            exclude, avoid = [], seen
        result = await asyncio.to_thread(rec.recommend, crit, None, exclude, avoid)

        replies = recommendation_replies(result, turn.mode, self.rich(tracker), turn.notes)
        if turn.unknown:
            replies[0].text = (
                f"(I don't know the {', '.join(turn.unknown)} in this store.) " + replies[0].text
            )
        self.send(dispatcher, replies)

        new_shown = [
            ShownProduct(s.product_id, s.price, s.brand, s.colour).to_slot()
            for s in result.suggestions
        ]
        events = _criteria_events(crit)
        if result.suggestions:
            ids = [s.product_id for s in result.suggestions]
            events.append(SlotSet("shown", new_shown))
            events.append(SlotSet("seen", list(dict.fromkeys([*seen, *ids]))))
            await asyncio.to_thread(
                rec.record, "shown", tracker.sender_id, ids, {"criteria": crit.to_slots()}
            )
        return events


class ActionShowMore(ActionRecommend):
    """More products for the same criteria, none shown before ("yes", "show more")."""

    force_more = True

    def name(self) -> str:
        return "action_show_more"


class ActionProductDetails(TailorAction):
    """Details of a product shown before, picked by position ("the second one")."""

    def name(self) -> str:
        return "action_product_details"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        _, text, entities = self.latest(tracker)
        shown = shown_from_slot(tracker.get_slot("shown"))
        if not shown:
            dispatcher.utter_message(
                text="I haven't shown you any products yet — what are you looking for?"
            )
            return []
        positions, invalid = self.pick(tracker, text, shown, entities)
        if invalid and not positions:
            dispatcher.utter_message(
                text=f"I only showed {len(shown)} products; which one do you mean "
                f"(1–{len(shown)})?",
                buttons=[
                    quick(f"#{i + 1}", f"tell me more about number {i + 1}")
                    for i in range(len(shown))
                ],
            )
            return []
        if not positions:
            if len(shown) == 1:
                positions = [0]
            else:
                dispatcher.utter_message(
                    text="Which one? Say “the first one”, “the second one”…",
                    buttons=[
                        quick(f"#{i + 1}", f"tell me more about number {i + 1}")
                        for i in range(len(shown))
                    ],
                )
                return []
        rec = self.recommender
        product_id = shown[positions[0]].id
        details = await asyncio.to_thread(rec.details, [product_id])
        if not details:
            dispatcher.utter_message(text="Sorry, that product is no longer in the catalog.")
            return []
        self.send(dispatcher, details_replies(details[0], self.rich(tracker)))
        await asyncio.to_thread(rec.record, "details", tracker.sender_id, [product_id])
        return []


class ActionCompare(TailorAction):
    """Compare two or more products shown before ("compare the first two")."""

    def name(self) -> str:
        return "action_compare"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        _, text, entities = self.latest(tracker)
        shown = shown_from_slot(tracker.get_slot("shown"))
        if len(shown) < 2:
            dispatcher.utter_message(
                text="I need at least two products on screen to compare — what are you looking for?"
            )
            return []
        positions, invalid = self.pick(tracker, text, shown, entities)
        if invalid:
            dispatcher.utter_message(
                text=f"I only showed {len(shown)} products, so I can't compare "
                + ", ".join(f"#{i}" for i in invalid)
                + "."
            )
            return []
        if len(positions) < 2:
            positions = (
                [0, 1] if not positions else sorted({positions[0], 0 if positions[0] else 1})
            )
        rec = self.recommender
        ids = [shown[i].id for i in positions]
        items = await asyncio.to_thread(rec.details, ids)
        if len(items) < 2:
            dispatcher.utter_message(
                text="Sorry, one of those products is no longer in the catalog."
            )
            return []
        self.send(dispatcher, comparison_replies(items, positions, self.rich(tracker)))
        await asyncio.to_thread(rec.record, "compare", tracker.sender_id, ids)
        return []


class ActionReset(TailorAction):
    """Forget the criteria and the products shown ("start over")."""

    def name(self) -> str:
        return "action_reset"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(text="Okay, let's start over. What are you looking for?")
        return [SlotSet(name, None) for name in (*CRITERIA_SLOTS, "shown", "seen")]


class ActionFeedback(TailorAction):
    """A positive reaction to what was shown: record it and offer next steps."""

    def name(self) -> str:
        return "action_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        _, text, entities = self.latest(tracker)
        shown = shown_from_slot(tracker.get_slot("shown"))
        if not shown:
            dispatcher.utter_message(text="Glad to hear it! What can I find for you?")
            return []
        positions, _ = self.pick(tracker, text, shown, entities)
        ids = [shown[i].id for i in positions] or [s.id for s in shown]
        await asyncio.to_thread(
            self.recommender.record,
            "feedback",
            tracker.sender_id,
            ids,
            {"polarity": "positive", "text": text},
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

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        rec = await asyncio.to_thread(lambda: self.recommender)
        await asyncio.to_thread(rec.search.search, "warm up", 1, None)
        return []
