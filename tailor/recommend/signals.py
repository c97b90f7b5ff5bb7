"""From storage to ranking inputs: who is asking, their history, segments, session, context.

:class:`SignalBuilder` reads the database and returns a
:class:`~tailor.recommend.personal.ShopperContext` per request. The pure pieces
(:func:`affinity_from_history`, :func:`segment_tables`, :func:`session_from_events`) are also
used by the offline evaluation, which feeds them a time-split history.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from tailor.profiles.psychographics import NO_SIGNAL, psychographic_segment
from tailor.profiles.rfm import NO_PURCHASES
from tailor.profiles.rules import season
from tailor.recommend.context import local_weekday
from tailor.recommend.personal import (
    Affinity,
    Context,
    PastPurchase,
    PricePositions,
    SegmentPrior,
    SessionSignals,
    ShopperContext,
)
from tailor.store.models import Customer, CustomerSegment, Event, Product, Profile, as_utc

log = logging.getLogger(__name__)

#: How much each kind of past interaction says about taste.
HISTORY_WEIGHTS: dict[str, float] = {"purchase": 3.0, "cart": 2.0, "click": 1.0, "view": 0.5}
#: Interest fades with a half-life of this many days.
HALF_LIFE_DAYS = 180.0
#: In-session interactions: weight of each kind (positive taste signals).
SESSION_WEIGHTS: dict[str, float] = {
    "click": 1.0,
    "view": 0.7,
    "details": 0.8,
    "cart": 1.5,
    "compare": 0.5,
}
#: Each later session interaction multiplies an earlier one's weight by this (recency).
SESSION_DECAY = 0.4
#: Segment kinds the prior may use; segments that say nothing are skipped. "gender" is not
#: stored: it is the customer's gender itself, and a ranking input only when the
#: :class:`ProtectedPolicy` allows it. Which kinds a ranking uses is the policy's call.
PRIOR_KINDS: tuple[str, ...] = ("rfm", "demographic", "geographic", "psychographic", "gender")
#: Customer attributes a :class:`ProtectedPolicy` may name → the segment kinds derived from
#: them (``demographic`` is the life stage from the age band, ``geographic`` is climate and
#: market from country and climate).
ATTRIBUTE_KINDS: dict[str, tuple[str, ...]] = {
    "age_band": ("demographic",),
    "gender": ("gender",),
    "country": ("geographic",),
    "region": (),
    "climate": ("geographic",),
}
#: Protected by default (``TAILOR_PROTECTED_ATTRIBUTES``). Country, region and climate are
#: geographic: they decide season and weather, which is what the context signal is about.
DEFAULT_PROTECTED: tuple[str, ...] = ("age_band", "gender")
_EMPTY_SEGMENTS = frozenset({NO_PURCHASES, NO_SIGNAL, "age not given"})
#: Smoothing (pseudo-count) of segment shares towards the overall share.
PRIOR_SMOOTHING = 20.0


@dataclass(frozen=True)
class ProtectedPolicy:
    """Which customer attributes are protected, and whether ranking may use them anyway.

    By default (``use_in_ranking=False``) nothing derived from a protected attribute is a
    ranking input: its segment kinds are left out of the segment prior, and for a protected
    country / climate / region the season, climate and region context is dropped too.
    Segments are still stored and shown (the agent panel, ``tailor profile show``).
    """

    attributes: frozenset[str] = frozenset(DEFAULT_PROTECTED)
    use_in_ranking: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.attributes) - set(ATTRIBUTE_KINDS))
        if unknown:
            raise ValueError(
                f"unknown protected attribute(s) {unknown} (TAILOR_PROTECTED_ATTRIBUTES); "
                f"valid attributes are "
                f"{sorted(ATTRIBUTE_KINDS)}"
            )

    @classmethod
    def parse(cls, attributes: str, use_in_ranking: bool = False) -> ProtectedPolicy:
        """From a comma-separated list (``TAILOR_PROTECTED_ATTRIBUTES``); "" = none."""
        names = frozenset(a.strip().lower() for a in attributes.split(",") if a.strip())
        return cls(attributes=names, use_in_ranking=use_in_ranking)

    @classmethod
    def from_settings(cls, settings: Any) -> ProtectedPolicy:
        """The policy configured by ``settings.protected_attributes`` and
        ``settings.rank_use_protected``."""
        return cls.parse(settings.protected_attributes, bool(settings.rank_use_protected))

    def excluded(self, attribute: str) -> bool:
        """Whether ranking must ignore ``attribute``."""
        return attribute in self.attributes and not self.use_in_ranking

    @property
    def excluded_kinds(self) -> frozenset[str]:
        """Segment kinds derived from an attribute ranking must ignore."""
        return frozenset(
            kind for attr, kinds in ATTRIBUTE_KINDS.items() if self.excluded(attr) for kind in kinds
        )

    @property
    def ranking_kinds(self) -> tuple[str, ...]:
        """Segment kinds the segment prior may use under this policy, in prior order."""
        return tuple(k for k in PRIOR_KINDS if k not in self.excluded_kinds)

    def context(self, ctx: Context) -> Context:
        """``ctx`` without what protected geographic attributes would say."""
        if self.excluded("country"):
            ctx = replace(ctx, season=None, region=None)
        if self.excluded("climate"):
            ctx = replace(ctx, climate=None)
        if self.excluded("region"):
            ctx = replace(ctx, region=None)
        return ctx

    def describe(self) -> str:
        """One line for reports: what is protected and whether ranking uses it."""
        names = ", ".join(sorted(self.attributes)) or "none"
        use = "used in ranking" if self.use_in_ranking else "excluded from ranking"
        return f"protected attributes: {names} ({use})"


#: The default policy: age band and gender protected and excluded from ranking.
DEFAULT_POLICY = ProtectedPolicy()


def gender_segment(gender: str | None) -> str | None:
    """The "gender" segment of a customer (their stated gender, lower case), or None."""
    value = (gender or "").strip().lower()
    return value or None


@dataclass(frozen=True)
class HistoryItem:
    """One past interaction of a customer with a product."""

    product_id: int
    kind: str
    at: datetime
    title: str
    category: str
    brand: str | None
    price: float


def affinity_from_history(
    history: Iterable[HistoryItem],
    prices: PricePositions | None,
    now: datetime,
    half_life_days: float = HALF_LIFE_DAYS,
) -> Affinity:
    """Decayed category / brand shares and price position of a customer's history."""
    cats: Counter[str] = Counter()
    tops: Counter[str] = Counter()
    brands: Counter[str] = Counter()
    positions: list[tuple[float, float]] = []
    purchases: list[PastPurchase] = []
    for item in history:
        base = HISTORY_WEIGHTS.get(item.kind)
        if base is None:
            continue
        age = max(0.0, (now - as_utc(item.at)).total_seconds() / 86400)
        w = base * 0.5 ** (age / half_life_days)
        cats[item.category] += w
        tops[item.category.split(" > ")[0]] += w
        if item.brand:
            brands[item.brand.lower()] += w
        if item.kind == "purchase":
            purchases.append(
                PastPurchase(item.product_id, item.title, item.category, item.brand, item.at)
            )
            if prices is not None:
                pos = prices.position(item.category, item.price)
                if pos is not None:
                    positions.append((pos, w))

    def norm(c: Counter[str]) -> dict[str, float]:
        total = sum(c.values())
        return {k: v / total for k, v in c.items()} if total > 0 else {}

    price_position: tuple[float, float] | None = None
    if positions:
        wsum = sum(w for _, w in positions)
        mean = sum(p * w for p, w in positions) / wsum
        var = sum(w * (p - mean) ** 2 for p, w in positions) / wsum
        price_position = (mean, math.sqrt(var))
    return Affinity(
        categories=norm(cats),
        tops=norm(tops),
        brands=norm(brands),
        price_position=price_position,
        purchases=purchases,
    )


@dataclass
class SegmentTables:
    """Purchase shares per segment and overall, the basis of every shopper's prior.

    ``kinds``: the segment kinds a prior may use (by default those the default
    :class:`ProtectedPolicy` allows: no age band, no gender).
    """

    overall_categories: dict[str, float]
    overall_brands: dict[str, float]
    by_segment: dict[tuple[str, str], tuple[Counter[str], Counter[str], int]]
    kinds: tuple[str, ...] = DEFAULT_POLICY.ranking_kinds

    def prior(self, segments: Mapping[str, str]) -> SegmentPrior:
        """The lifts for a shopper in ``segments`` (``{kind: segment}``); kinds outside
        :attr:`kinds` are ignored."""
        lifts: dict[tuple[str, str], tuple[dict[str, float], dict[str, float]]] = {}
        for kind in self.kinds:
            name = segments.get(kind)
            if not name or name in _EMPTY_SEGMENTS:
                continue
            row = self.by_segment.get((kind, name))
            if row is None:
                continue
            cats, brands, n = row
            lifts[(kind, name)] = (
                _lifts(cats, n, self.overall_categories),
                _lifts(brands, n, self.overall_brands),
            )
        return SegmentPrior(lifts=lifts)


def _lifts(counts: Counter[str], n: int, overall: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, base in overall.items():
        share = (counts.get(key, 0) + PRIOR_SMOOTHING * base) / (n + PRIOR_SMOOTHING)
        lift = math.log(share / base)
        if abs(lift) > 0.05:
            out[key] = lift
    return out


def segment_tables(
    purchases: Iterable[tuple[int, str, str | None]],
    segments: Mapping[int, Mapping[str, str]],
    kinds: Sequence[str] | None = None,
) -> SegmentTables:
    """Shares of categories and brands bought, per (kind, segment) and overall.

    ``purchases`` are ``(customer id, category, brand)``; ``segments`` maps a customer id to
    ``{kind: segment}``; ``kinds``: the kinds priors may use (default: the default policy's).
    """
    if kinds is not None:
        unknown = sorted(set(kinds) - set(PRIOR_KINDS))
        if unknown:
            raise ValueError(f"unknown segment kind(s) {unknown}; valid kinds are {PRIOR_KINDS}")
    overall_c: Counter[str] = Counter()
    overall_b: Counter[str] = Counter()
    per: dict[tuple[str, str], tuple[Counter[str], Counter[str], list[int]]] = defaultdict(
        lambda: (Counter(), Counter(), [0])
    )
    for cid, category, brand in purchases:
        overall_c[category] += 1
        if brand:
            overall_b[brand.lower()] += 1
        for kind, name in (segments.get(cid) or {}).items():
            cats, brands, n = per[(kind, name)]
            cats[category] += 1
            if brand:
                brands[brand.lower()] += 1
            n[0] += 1
    total_c = sum(overall_c.values()) or 1
    total_b = sum(overall_b.values()) or 1
    return SegmentTables(
        overall_categories={k: v / total_c for k, v in overall_c.items()},
        overall_brands={k: v / total_b for k, v in overall_b.items()},
        by_segment={key: (c, b, n[0]) for key, (c, b, n) in per.items()},
        kinds=tuple(kinds) if kinds is not None else DEFAULT_POLICY.ranking_kinds,
    )


@dataclass(frozen=True)
class SessionEvent:
    """One event of the current conversation, as the session signals need it."""

    kind: str
    product_id: int | None
    payload: Mapping[str, Any]
    title: str | None = None
    price: float | None = None


def session_from_events(events: Sequence[SessionEvent]) -> SessionSignals:
    """Positive and negative taste signals of a conversation, recent ones weighing most.

    Negative feedback carries an ``aspect`` in its payload: ``colour`` / ``brand`` (the value
    is demoted), ``price`` (a soft ceiling below the disliked price), or ``product`` (the
    product and look-alikes are demoted). Positive feedback promotes look-alikes.
    """
    sig = SessionSignals()
    n = len(events)
    for i, ev in enumerate(events):
        recency = SESSION_DECAY ** (n - 1 - i)
        if ev.product_id is not None and ev.title:
            sig.titles[ev.product_id] = ev.title
        if ev.kind == "feedback":
            polarity = ev.payload.get("polarity")
            if ev.product_id is None:
                continue
            if polarity == "positive":
                sig.positive.append((ev.product_id, 1.5 * recency))
                sig.liked.add(ev.product_id)
                continue
            if polarity != "negative":
                continue
            aspect = ev.payload.get("aspect") or "product"
            value = str(ev.payload.get("value") or "").lower()
            strength = max(0.3, recency)
            if aspect == "colour" and value:
                sig.negative_colours[value] = max(sig.negative_colours.get(value, 0.0), strength)
            elif aspect == "brand" and value:
                sig.negative_brands[value] = max(sig.negative_brands.get(value, 0.0), strength)
            elif aspect == "price" and ev.price is not None:
                ceiling = round(float(ev.price) * 0.9, 2)
                sig.price_ceiling = (
                    ceiling if sig.price_ceiling is None else min(sig.price_ceiling, ceiling)
                )
            else:
                sig.negative.append((ev.product_id, strength))
            continue
        w = SESSION_WEIGHTS.get(ev.kind)
        if w is not None and ev.product_id is not None:
            sig.positive.append((ev.product_id, w * recency))
    # A product both liked earlier and disliked later counts as disliked.
    disliked = {pid for pid, _ in sig.negative}
    sig.positive = [(pid, w) for pid, w in sig.positive if pid not in disliked]
    return sig


_PROFILES = Profile.__table__
_EVENTS = Event.__table__
_PRODUCTS = Product.__table__
_PROFILE_COLUMNS = (_PROFILES.c.personalisation, _PROFILES.c.preferences)
_PROFILE_OF_CUSTOMER = select(*_PROFILE_COLUMNS).where(_PROFILES.c.customer_id == bindparam("c"))
_PROFILE_OF_SENDER = select(*_PROFILE_COLUMNS).where(
    _PROFILES.c.sender_id == bindparam("s"), _PROFILES.c.customer_id.is_(None)
)
_SESSION_EVENTS = (
    select(
        _EVENTS.c.kind,
        _EVENTS.c.product_id,
        _EVENTS.c.payload,
        _PRODUCTS.c.title,
        _PRODUCTS.c.price,
    )
    .select_from(_EVENTS.outerjoin(_PRODUCTS, _PRODUCTS.c.id == _EVENTS.c.product_id))
    .where(
        _EVENTS.c.sender_id == bindparam("s"),
        _EVENTS.c.created_at >= bindparam("since"),
        _EVENTS.c.kind.in_((*SESSION_WEIGHTS, "feedback")),
    )
    .order_by(_EVENTS.c.created_at, _EVENTS.c.id)
)


class SignalBuilder:
    """Builds a :class:`ShopperContext` per request from the database (thread-safe).

    Catalog price distributions and segment tables are cached and rebuilt after
    ``refresh_seconds``; per-shopper data is read fresh every time. ``protected`` decides
    which demographic inputs may reach the ranking (default: no age band, no gender).
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        session_minutes: int = 60,
        refresh_seconds: float = 600.0,
        protected: ProtectedPolicy | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.session_minutes = session_minutes
        self.refresh_seconds = refresh_seconds
        self.protected = protected or DEFAULT_POLICY
        self._lock = threading.Lock()
        self._built_at = -math.inf
        self._prices: PricePositions | None = None
        self._tables: SegmentTables | None = None
        self._invalid = False
        self._refreshing = False

    # -- shared, cached tables ------------------------------------------------------
    def _refresh(self) -> None:
        """Make sure the tables exist; rebuild them when they expire or were invalidated.

        The first build, and the one after :meth:`invalidate`, happen here, in the caller.
        An expired build is rebuilt in a background thread while the current one goes on
        serving: rebuilding reads every product and purchase (80-190 ms on the demo), and
        every turn waiting on it would otherwise pay that once per ``refresh_seconds``.
        """
        with self._lock:
            if self._tables is not None and not self._invalid:
                expired = time.monotonic() - self._built_at >= self.refresh_seconds
                if expired and not self._refreshing:
                    self._refreshing = True
                    threading.Thread(
                        target=self._refresh_in_background, name="tailor-signal-tables", daemon=True
                    ).start()
                return
            self._prices, self._tables = self._compute()
            self._built_at = time.monotonic()
            self._invalid = False

    def _refresh_in_background(self) -> None:
        try:
            prices, tables = self._compute()
        except Exception:
            log.exception("rebuilding the price and segment tables failed; the old ones serve")
            with self._lock:
                self._built_at = time.monotonic()  # try again after refresh_seconds
                self._refreshing = False
            return
        with self._lock:
            if not self._invalid:  # after an invalidate(), the next use rebuilds anyway
                self._prices, self._tables = prices, tables
                self._built_at = time.monotonic()
            self._refreshing = False

    def _compute(self) -> tuple[PricePositions, SegmentTables]:
        """Price distributions per category and purchase shares per segment, from the
        database."""
        with self.session_factory() as session:
            by_cat: dict[str, list[float]] = defaultdict(list)
            for category, price in session.execute(select(Product.category, Product.price)):
                by_cat[category].append(float(price))
            rows = session.execute(
                select(Event.customer_id, Product.category, Product.brand)
                .join(Product, Product.id == Event.product_id)
                .where(Event.kind == "purchase", Event.customer_id.is_not(None))
            ).all()
            kinds = self.protected.ranking_kinds
            segs: dict[int, dict[str, str]] = defaultdict(dict)
            for seg in session.scalars(
                select(CustomerSegment).where(CustomerSegment.kind.in_(kinds))
            ):
                segs[seg.customer_id][seg.kind] = seg.segment
            if "gender" in kinds:
                for cid, gender in session.execute(select(Customer.id, Customer.gender)):
                    name = gender_segment(gender)
                    if name is not None:
                        segs[int(cid)]["gender"] = name
        tables = segment_tables(
            ((int(c), cat, b) for c, cat, b in rows if c is not None), segs, kinds
        )
        return PricePositions(by_cat), tables

    def invalidate(self) -> None:
        """Rebuild the cached tables on next use, in the caller (after a catalog or segment
        change)."""
        with self._lock:
            self._invalid = True

    @property
    def prices(self) -> PricePositions:
        """Price distributions per category."""
        self._refresh()
        assert self._prices is not None
        return self._prices

    @property
    def tables(self) -> SegmentTables:
        """Purchase shares per segment."""
        self._refresh()
        assert self._tables is not None
        return self._tables

    # -- per shopper ----------------------------------------------------------------
    def build(
        self,
        sender_id: str | None,
        customer_id: int | None,
        metadata: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> ShopperContext:
        """Everything known about the shopper behind ``sender_id`` / ``customer_id``.

        ``customer_id`` must come from a verified identity. Opted-out shoppers get a context
        with ``personalised=False`` (their name is kept for the greeting).
        """
        now = now or datetime.now(UTC)
        meta = metadata or {}
        self._refresh()
        with self.session_factory() as session:
            customer = session.get(Customer, customer_id) if customer_id is not None else None
            # the two columns read, as a Core query: every turn runs it, and the ORM's
            # statement and object handling cost more than the query itself
            if customer_id is not None:
                profile = (
                    session.connection().execute(_PROFILE_OF_CUSTOMER, {"c": customer_id}).first()
                )
            elif sender_id:
                profile = session.connection().execute(_PROFILE_OF_SENDER, {"s": sender_id}).first()
            else:
                profile = None
            allowed = profile.personalisation if profile is not None else True
            device = meta.get("device") if isinstance(meta.get("device"), str) else None
            hour = meta.get("local_hour")
            local_hour = hour if isinstance(hour, int) and 0 <= hour <= 23 else None
            name = customer.name if customer is not None else None
            if not allowed:
                return ShopperContext(
                    customer_id=customer_id,
                    external_id=customer.external_id if customer is not None else None,
                    name=name,
                    personalised=False,
                    context=Context(device=device, local_hour=local_hour),
                )
            history = self._history(session, customer_id, now) if customer_id else []
            segments: dict[str, str] = {}
            if customer_id is not None:
                for seg in session.scalars(
                    select(CustomerSegment).where(CustomerSegment.customer_id == customer_id)
                ):
                    segments[seg.kind] = seg.segment
            stated = [
                str(p.get("value"))
                for p in (profile.preferences if profile is not None else []) or []
                if p.get("positive", True)
            ]
            if stated:
                segments["psychographic"] = psychographic_segment(stated)
            if customer is not None and "gender" in self.protected.ranking_kinds:
                gender = gender_segment(customer.gender)
                if gender is not None:
                    segments["gender"] = gender
            session_events = self._session_events(session, sender_id, now) if sender_id else []
        attrs = (customer.attributes or {}) if customer is not None else {}
        climate = attrs.get("climate") if isinstance(attrs.get("climate"), str) else None
        ctx = self.protected.context(
            Context(
                season=season(customer.country, now.date())
                if customer and customer.country
                else None,
                climate=climate,
                region=(customer.region or customer.country) if customer is not None else None,
                device=device,
                local_hour=local_hour,
                weekday=local_weekday(meta.get("tz"), local_hour, now),
            )
        )
        return ShopperContext(
            customer_id=customer_id,
            external_id=customer.external_id if customer is not None else None,
            name=name,
            personalised=True,
            affinity=affinity_from_history(history, self._prices, now),
            segments=segments,
            prior=self.tables.prior(segments),
            session=session_from_events(session_events),
            context=ctx,
        )

    def _history(self, session: Session, customer_id: int, now: datetime) -> list[HistoryItem]:
        rows = session.execute(
            select(
                Event.product_id,
                Event.kind,
                Event.created_at,
                Product.title,
                Product.category,
                Product.brand,
                Product.price,
            )
            .join(Product, Product.id == Event.product_id)
            .where(
                Event.customer_id == customer_id,
                Event.kind.in_(tuple(HISTORY_WEIGHTS)),
                Event.created_at <= now,
            )
            .order_by(Event.created_at)
        )
        return [
            HistoryItem(int(pid), kind, as_utc(at), title, cat, brand, float(price))
            for pid, kind, at, title, cat, brand, price in rows
            if pid is not None
        ]

    def _session_events(
        self, session: Session, sender_id: str, now: datetime
    ) -> list[SessionEvent]:
        since = now - timedelta(minutes=self.session_minutes)
        rows = session.connection().execute(_SESSION_EVENTS, {"s": sender_id, "since": since})
        return [
            SessionEvent(
                kind,
                int(pid) if pid is not None else None,
                payload or {},
                title,
                float(price) if price is not None else None,
            )
            for kind, pid, payload, title, price in rows
        ]
