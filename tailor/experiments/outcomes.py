"""Outcomes of an experiment: what shoppers did after being shown an arm's suggestions.

Definitions (the report's footnotes say the same):

- **shopper**: the randomisation unit — the customer when the "shown" event carries one,
  else the conversation (sender id). **Exposed**: shown at least one card of the experiment.
- **impression**: one product card shown (one "shown" event row).
- **click / view / cart / purchase rate**: the share of impressions followed, within the
  attribution window, by that action on the same product by the same shopper. An action
  is credited to the latest impression of that product before it, and an impression
  counts once per kind, so each rate is a proportion of impressions.
- **conversion**: the share of exposed shoppers who bought anything within the window
  after one of their impressions (the test's primary metric: one trial per randomised
  unit, so the binomial model holds).
- **conversation length**: "message" events per conversation that showed the arm's cards.
- **sentiment after suggestions**: per conversation, the mean signed sentiment ("message"
  value) of the messages within the window after a "shown" event; averaged over
  conversations.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tailor.store.models import CustomerSegment, Event, as_utc

#: Actions on a shown product that are credited to its impression.
PRODUCT_ACTIONS: tuple[str, ...] = ("click", "view", "cart", "purchase")
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Exposure:
    """One impression: a card shown to a shopper in an arm."""

    arm: str
    sender_id: str | None
    customer_id: int | None
    product_id: int | None
    at: datetime

    @property
    def unit(self) -> str:
        """``c:<customer id>`` or ``s:<sender id>``."""
        return f"c:{self.customer_id}" if self.customer_id is not None else f"s:{self.sender_id}"


@dataclass(frozen=True)
class Outcome:
    """Something a shopper did: a product action, or a message with its sentiment."""

    kind: str
    sender_id: str | None
    customer_id: int | None
    product_id: int | None
    at: datetime
    value: float | None = None


@dataclass
class GroupStats:
    """Counts and per-unit values for an arm, or an arm within a segment."""

    shoppers: int = 0
    converted: int = 0
    conversations: int = 0
    impressions: int = 0
    actions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRODUCT_ACTIONS, 0))
    conversation_lengths: list[float] = field(default_factory=list)
    sentiment_after: list[float] = field(default_factory=list)


@dataclass
class Tally:
    """Outcomes per arm and per (arm, segment)."""

    arms: dict[str, GroupStats]
    by_segment: dict[tuple[str, str], GroupStats]


def _units(sender_id: str | None, customer_id: int | None) -> list[str]:
    out = []
    if customer_id is not None:
        out.append(f"c:{customer_id}")
    if sender_id:
        out.append(f"s:{sender_id}")
    return out


def tally(
    exposures: Iterable[Exposure],
    outcomes: Iterable[Outcome],
    window: timedelta,
    arms: Iterable[str],
    segment_of: Callable[[Exposure], str] | None = None,
) -> Tally:
    """Attribute ``outcomes`` to ``exposures`` (see the module docstring for the rules)."""
    if window <= timedelta(0):
        raise ValueError(f"the attribution window must be positive, got {window}")
    shown = sorted(exposures, key=lambda e: e.at)
    segment_of = segment_of or (lambda _e: ANONYMOUS)
    # impressions of a product per shopper key (both the customer and the conversation key
    # of each impression, so a purchase with a customer id finds an anonymous impression of
    # the same conversation), and the exposure times per key for shopper-level outcomes
    by_product: dict[tuple[str, int], list[tuple[datetime, int]]] = defaultdict(list)
    times: dict[str, list[datetime]] = defaultdict(list)
    unit_of_key: dict[str, str] = {}
    for idx, e in enumerate(shown):
        for key in _units(e.sender_id, e.customer_id):
            if e.product_id is not None:
                by_product[(key, e.product_id)].append((e.at, idx))
            times[key].append(e.at)
            unit_of_key.setdefault(key, e.unit)
    credited: dict[str, set[int]] = {kind: set() for kind in PRODUCT_ACTIONS}
    converted_units: set[str] = set()
    sentiments: dict[str, list[float]] = defaultdict(list)  # sender → values after a shown
    messages: dict[str, int] = defaultdict(int)
    for o in sorted(outcomes, key=lambda o: o.at):
        keys = _units(o.sender_id, o.customer_id)
        if o.kind == "message":
            if o.sender_id:
                messages[o.sender_id] += 1
                if o.value is not None and _recent(times.get(f"s:{o.sender_id}", []), o.at, window):
                    sentiments[o.sender_id].append(float(o.value))
            continue
        if o.kind not in credited or o.product_id is None:
            continue
        best: tuple[datetime, int] | None = None
        for key in keys:
            seq = by_product.get((key, o.product_id), [])
            i = bisect.bisect_right(seq, (o.at, len(shown)))
            if i and o.at - seq[i - 1][0] <= window and (best is None or seq[i - 1] > best):
                best = seq[i - 1]
        if best is not None:
            credited[o.kind].add(best[1])
        if o.kind == "purchase":
            for key in keys:
                if _recent(times.get(key, []), o.at, window):
                    converted_units.add(unit_of_key[key])
    result = Tally(arms={a: GroupStats() for a in arms}, by_segment={})
    first_arm: dict[str, str] = {}
    unit_segment: dict[str, str] = {}
    sender_arm: dict[str, str] = {}
    for idx, e in enumerate(shown):
        first_arm.setdefault(e.unit, e.arm)
        unit_segment.setdefault(e.unit, segment_of(e))
        if e.sender_id:
            sender_arm.setdefault(e.sender_id, e.arm)
        seg = unit_segment[e.unit]
        for stats in (result.arms.setdefault(e.arm, GroupStats()), _seg(result, e.arm, seg)):
            stats.impressions += 1
            for kind in PRODUCT_ACTIONS:
                stats.actions[kind] += idx in credited[kind]
    for unit, arm in first_arm.items():
        for stats in (result.arms[arm], _seg(result, arm, unit_segment[unit])):
            stats.shoppers += 1
            stats.converted += unit in converted_units
    sender_segment = {e.sender_id: unit_segment[e.unit] for e in shown if e.sender_id}
    for sender, arm in sender_arm.items():
        for stats in (result.arms[arm], _seg(result, arm, sender_segment[sender])):
            stats.conversations += 1
            stats.conversation_lengths.append(float(messages.get(sender, 0)))
            if sentiments.get(sender):
                values = sentiments[sender]
                stats.sentiment_after.append(sum(values) / len(values))
    return result


def _seg(result: Tally, arm: str, segment: str) -> GroupStats:
    return result.by_segment.setdefault((arm, segment), GroupStats())


def _recent(times: list[datetime], at: datetime, window: timedelta) -> bool:
    """True when some time in sorted ``times`` lies in ``[at - window, at]``."""
    i = bisect.bisect_right(times, at)
    return bool(i) and at - times[i - 1] <= window


def load_outcomes(
    session: Session,
    experiment: str,
    start: datetime,
    end: datetime,
    window: timedelta,
    segment_kind: str = "rfm",
) -> tuple[list[Exposure], list[Outcome], Callable[[Exposure], str]]:
    """The experiment's impressions (shown between ``start`` and ``end``), the actions and
    messages up to ``end + window``, and each shopper's current segment of ``segment_kind``."""
    name_expr = Event.payload["experiment"]["name"].as_string()
    arm_expr = Event.payload["experiment"]["arm"].as_string()
    rows = session.execute(
        select(Event.sender_id, Event.customer_id, Event.product_id, Event.created_at, arm_expr)
        .where(
            Event.kind == "shown",
            name_expr == experiment,
            Event.created_at >= start,
            Event.created_at < end,
        )
        .order_by(Event.created_at, Event.id)
    )
    exposures = [
        Exposure(str(arm), sender, customer, product, as_utc(at))
        for sender, customer, product, at, arm in rows
        if arm is not None
    ]
    outcome_rows = session.execute(
        select(
            Event.kind,
            Event.sender_id,
            Event.customer_id,
            Event.product_id,
            Event.created_at,
            Event.value,
        ).where(
            Event.kind.in_((*PRODUCT_ACTIONS, "message")),
            Event.created_at >= start,
            Event.created_at <= end + window,
        )
    )
    outcomes = [Outcome(k, s, c, p, as_utc(at), v) for k, s, c, p, at, v in outcome_rows]
    customers = {e.customer_id for e in exposures if e.customer_id is not None}
    segments: Mapping[int, str] = {}
    if customers:
        segments = dict(
            session.execute(
                select(CustomerSegment.customer_id, CustomerSegment.segment).where(
                    CustomerSegment.kind == segment_kind
                )
            ).all()
        )

    def segment_of(e: Exposure) -> str:
        if e.customer_id is None:
            return ANONYMOUS
        return segments.get(e.customer_id, "unsegmented")

    return exposures, outcomes, segment_of
