"""The marketing dashboard's numbers: engagement by segment and by experiment arm over time,
the sentiment trend, queries with no good results, and trigger performance.

Every query takes a time range ``[since, until)`` (UTC), reads only the ``events`` and
``customer_segments`` tables (filtered on the indexed ``kind`` and ``created_at`` columns)
and returns a bounded amount of data. Counting and grouping happen in SQL and run unchanged
on SQLite and PostgreSQL; the day or week of a timestamp is the one SQL expression that
differs per dialect (:func:`bucket_of`). Attributing an action to an earlier suggestion (a
time-window join per shopper) is done in Python by the experiment report's own rules
(:func:`tailor.experiments.outcomes.tally`), so the dashboard and ``tailor experiments
report`` agree:

- an impression is one product card shown (one "shown" event row);
- a click, add-to-cart or purchase of that product by the same shopper (customer id, or the
  conversation's sender id) within the attribution window after it credits the latest such
  impression; each impression counts at most once per action;
- a shopper converted when they bought anything within the window after an impression.

Trigger performance is the trigger engine's own measure
(:func:`tailor.marketing.triggers.trigger_performance`), over the same range and window.

Segments are the customer's *current* segment of a kind (``customer_segments`` holds no
history), so a customer who moved segment is counted in the new one for past days too.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import Float, String, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from tailor.experiments.outcomes import Exposure, Outcome, tally
from tailor.marketing.triggers import trigger_performance
from tailor.store.models import CustomerSegment, Event, as_utc

__all__ = [
    "GUEST",
    "UNSEGMENTED",
    "ArmSeries",
    "Dashboard",
    "EngagementPoint",
    "ExperimentEngagement",
    "QueryGap",
    "SegmentEngagement",
    "SegmentSeries",
    "SentimentPoint",
    "TimeRange",
    "build_dashboard",
    "engagement_by_arm",
    "engagement_by_segment",
    "normalise_query",
    "queries_without_good_results",
    "segment_kinds",
    "sentiment_trend",
    "time_range",
    "trigger_rows",
]

Bucket = Literal["day", "week"]

#: Segment name of events with no customer (anonymous visitors).
GUEST = "guest"
#: Segment name of customers with no segment of the requested kind.
UNSEGMENTED = "unsegmented"
#: Longest range the dashboard answers (the event retention default is two years).
MAX_RANGE = timedelta(days=731)
#: Longest range drawn per day; longer ones are drawn per week.
MAX_DAILY = timedelta(days=92)
#: Series drawn per chart at most (the segments or arms with the most impressions).
MAX_SERIES = 8
#: Experiments / trigger rules / segment kinds listed at most.
MAX_NAMES = 50
#: Queries the "no good results" table shows at most.
MAX_QUERIES = 100
#: Segments of one kind read per bucket at most (the chart draws the biggest).
_SEGMENT_SCAN = 1000
#: Distinct raw query texts read before merging spelling variants.
_QUERY_SCAN = 2000

_ENGAGEMENT_KINDS = ("shown", "click", "cart", "purchase")
_WS = re.compile(r"\s+")


# -- time ranges and buckets ---------------------------------------------------------------


@dataclass(frozen=True)
class TimeRange:
    """``[since, until)`` in UTC, drawn in buckets of a day or a week (weeks start Monday)."""

    since: datetime
    until: datetime
    bucket: Bucket

    def bucket_start(self, t: datetime) -> date:
        """The first day of the bucket holding ``t``."""
        d = as_utc(t).astimezone(UTC).date()
        return d - timedelta(days=d.weekday()) if self.bucket == "week" else d

    def buckets(self) -> list[date]:
        """Every bucket's first day, oldest first, covering the range."""
        step = timedelta(days=7 if self.bucket == "week" else 1)
        first, last = self.bucket_start(self.since), self.bucket_start(self.until - _TICK)
        out = []
        while first <= last:
            out.append(first)
            first += step
        return out

    def bucket_bounds(self, start: date) -> tuple[datetime, datetime]:
        """The bucket's ``[start, end)`` as UTC datetimes, clipped to the range."""
        lo = datetime.combine(start, time(), tzinfo=UTC)
        hi = lo + timedelta(days=7 if self.bucket == "week" else 1)
        return max(lo, self.since), min(hi, self.until)


_TICK = timedelta(microseconds=1)


def time_range(
    since: datetime | None = None,
    until: datetime | None = None,
    bucket: str | None = None,
    now: datetime | None = None,
) -> TimeRange:
    """A validated range: ``until`` defaults to now, ``since`` to 30 days before ``until``;
    the bucket to days up to 92 days and weeks beyond. Naive datetimes are taken as UTC."""
    until = as_utc(until).astimezone(UTC) if until else (now or datetime.now(UTC))
    since = as_utc(since).astimezone(UTC) if since else until - timedelta(days=30)
    if since >= until:
        raise ValueError(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
    if until - since > MAX_RANGE:
        raise ValueError(
            f"the range may span at most {MAX_RANGE.days} days, got {(until - since).days}"
        )
    if bucket is None:
        bucket = "day" if until - since <= MAX_DAILY else "week"
    if bucket not in ("day", "week"):
        raise ValueError(f"bucket must be 'day' or 'week', got {bucket!r}")
    if bucket == "day" and until - since > MAX_DAILY:
        raise ValueError(
            f"daily buckets are for ranges up to {MAX_DAILY.days} days; use 'week' for longer"
        )
    return TimeRange(since, until, "day" if bucket == "day" else "week")


class day_of(FunctionElement[str]):
    """SQL: the day (``YYYY-MM-DD``, UTC) of a timestamp."""

    type = String()
    inherit_cache = True
    name = "day_of"


class week_of(FunctionElement[str]):
    """SQL: the Monday (``YYYY-MM-DD``, UTC) of the ISO week holding a timestamp."""

    type = String()
    inherit_cache = True
    name = "week_of"


def bucket_of(column: Any, bucket: Bucket) -> FunctionElement[str]:
    """The SQL expression of the bucket (first day, ``YYYY-MM-DD``) holding ``column``."""
    return week_of(column) if bucket == "week" else day_of(column)


@compiles(day_of, "sqlite")
def _day_sqlite(element: day_of, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite stores timestamps as UTC text.
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(week_of, "sqlite")
def _week_sqlite(element: week_of, compiler: SQLCompiler, **kw: Any) -> str:
    # 'weekday 0' moves forward to Sunday (or stays on one), -6 days back to its Monday.
    return f"date({compiler.process(element.clauses, **kw)}, 'weekday 0', '-6 days')"


def _trunc_postgresql(unit: str, arg: str) -> str:
    return f"to_char(date_trunc('{unit}', ({arg}) AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"


@compiles(day_of, "postgresql")
def _day_postgresql(element: day_of, compiler: SQLCompiler, **kw: Any) -> str:
    return _trunc_postgresql("day", compiler.process(element.clauses, **kw))


@compiles(week_of, "postgresql")
def _week_postgresql(element: week_of, compiler: SQLCompiler, **kw: Any) -> str:
    return _trunc_postgresql("week", compiler.process(element.clauses, **kw))


@compiles(day_of)
@compiles(week_of)
def _bucket_other(element: FunctionElement[str], compiler: SQLCompiler, **kw: Any) -> str:
    raise NotImplementedError(
        "the dashboard's day/week buckets are written for sqlite and postgresql, "
        f"not {compiler.dialect.name}"
    )


def _in_range(r: TimeRange, *kinds: str) -> ColumnElement[bool]:
    return and_(Event.kind.in_(kinds), Event.created_at >= r.since, Event.created_at < r.until)


def _shopper() -> ColumnElement[str]:
    """``c:<customer id>`` for a known customer, else ``s:<sender id>``."""
    return case(
        (Event.customer_id.is_not(None), literal("c:") + cast(Event.customer_id, String)),
        else_=literal("s:") + func.coalesce(Event.sender_id, ""),
    )


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


# -- engagement by segment --------------------------------------------------------------------


@dataclass(frozen=True)
class EngagementPoint:
    """One bucket of one series: counts and the rates derived from them.

    ``ctr`` is clicks per impression; ``conversion`` is the share of shoppers shown
    suggestions who bought (by segment: anything in the same bucket; by arm: within the
    attribution window after an impression)."""

    bucket: date
    impressions: int = 0
    clicks: int = 0
    carts: int = 0
    purchases: int = 0
    shoppers: int = 0
    converted: int = 0

    @property
    def ctr(self) -> float | None:
        return _ratio(self.clicks, self.impressions)

    @property
    def cart_rate(self) -> float | None:
        return _ratio(self.carts, self.impressions)

    @property
    def conversion(self) -> float | None:
        return _ratio(self.converted, self.shoppers)

    def to_json(self) -> dict[str, Any]:
        """The point as the API sends it (rates included)."""
        out = asdict(self)
        out["bucket"] = self.bucket.isoformat()
        out.update(ctr=self.ctr, cart_rate=self.cart_rate, conversion=self.conversion)
        return out


@dataclass(frozen=True)
class SegmentSeries:
    """A segment's points, one per bucket of the range."""

    segment: str
    points: list[EngagementPoint]

    @property
    def impressions(self) -> int:
        return sum(p.impressions for p in self.points)


@dataclass(frozen=True)
class SegmentEngagement:
    """Engagement per segment of one kind, over time."""

    kind: str
    series: list[SegmentSeries]
    #: Segments beyond the :data:`MAX_SERIES` largest, left out of ``series``.
    omitted: int = 0


def segment_kinds(session: Session) -> list[str]:
    """The segment kinds customers have (e.g. rfm, demographic, geographic), sorted."""
    stmt = select(CustomerSegment.kind).distinct().order_by(CustomerSegment.kind)
    return list(session.scalars(stmt.limit(MAX_NAMES)))


def engagement_by_segment(
    session: Session, r: TimeRange, kind: str = "rfm", max_series: int = MAX_SERIES
) -> SegmentEngagement:
    """Impressions, clicks, add-to-carts and purchases per segment of ``kind`` and bucket,
    and the share of shoppers shown suggestions who bought in the same bucket.

    Events with no customer are the :data:`GUEST` segment; customers without a segment of
    this kind are :data:`UNSEGMENTED`. The ``max_series`` segments with the most impressions
    are returned."""
    if not kind:
        raise ValueError("name a segment kind")
    segment = case(
        (Event.customer_id.is_(None), literal(GUEST)),
        else_=func.coalesce(CustomerSegment.segment, literal(UNSEGMENTED)),
    )
    rows = (
        select(
            bucket_of(Event.created_at, r.bucket).label("bucket"),
            segment.label("segment"),
            Event.kind.label("kind"),
            _shopper().label("shopper"),
        )
        .select_from(Event)
        .outerjoin(
            CustomerSegment,
            and_(CustomerSegment.customer_id == Event.customer_id, CustomerSegment.kind == kind),
        )
        .where(_in_range(r, *_ENGAGEMENT_KINDS))
        .cte("engagement_rows")
    )

    def count_of(k: str) -> ColumnElement[int]:
        return func.sum(case((rows.c.kind == k, 1), else_=0))

    counts = session.execute(
        select(rows.c.bucket, rows.c.segment, *(count_of(k) for k in _ENGAGEMENT_KINDS))
        .group_by(rows.c.bucket, rows.c.segment)
        .limit(len(r.buckets()) * _SEGMENT_SCAN)
    ).all()
    shown = (
        select(rows.c.bucket, rows.c.segment, rows.c.shopper)
        .where(rows.c.kind == "shown")
        .distinct()
        .subquery("shown_shoppers")
    )
    bought = (
        select(rows.c.bucket, rows.c.shopper)
        .where(rows.c.kind == "purchase")
        .distinct()
        .subquery("buyers")
    )
    converted = session.execute(
        select(shown.c.bucket, shown.c.segment, func.count(), func.count(bought.c.shopper))
        .select_from(shown)
        .outerjoin(
            bought, and_(bought.c.bucket == shown.c.bucket, bought.c.shopper == shown.c.shopper)
        )
        .group_by(shown.c.bucket, shown.c.segment)
    ).all()
    cells: dict[tuple[str, date], dict[str, int]] = {}
    for b, seg, shown_n, clicks, carts, purchases in counts:
        cells[(str(seg), _day(b))] = {
            "impressions": int(shown_n or 0),
            "clicks": int(clicks or 0),
            "carts": int(carts or 0),
            "purchases": int(purchases or 0),
        }
    for b, seg, shoppers, buyers in converted:
        cell = cells.setdefault((str(seg), _day(b)), {})
        cell.update(shoppers=int(shoppers), converted=int(buyers))
    names = sorted({seg for seg, _ in cells})
    series = [
        SegmentSeries(name, [EngagementPoint(b, **cells.get((name, b), {})) for b in r.buckets()])
        for name in names
    ]
    series.sort(key=lambda s: (-s.impressions, s.segment))
    return SegmentEngagement(kind, series[:max_series], max(0, len(series) - max_series))


# -- engagement by experiment arm -----------------------------------------------------------


@dataclass(frozen=True)
class ArmSeries:
    """An experiment arm's points, one per bucket of the range."""

    arm: str
    points: list[EngagementPoint]


@dataclass(frozen=True)
class ExperimentEngagement:
    """The experiments seen in the range (most impressions first) and, for the selected
    one, engagement per arm over time."""

    names: list[str]
    selected: str | None
    window_hours: float
    arms: list[ArmSeries] = field(default_factory=list)


def experiments_seen(session: Session, r: TimeRange) -> list[str]:
    """Experiments whose suggestions were shown in the range, most impressions first."""
    name = Event.payload["experiment"]["name"].as_string()
    inner = select(name.label("name")).where(_in_range(r, "shown")).subquery()
    stmt = (
        select(inner.c.name, func.count().label("n"))
        .where(inner.c.name.is_not(None))
        .group_by(inner.c.name)
        .order_by(func.count().desc(), inner.c.name)
        .limit(MAX_NAMES)
    )
    return [str(n) for n, _ in session.execute(stmt)]


def _outcomes(session: Session, r: TimeRange, window: timedelta) -> list[Outcome]:
    """Clicks, carts and purchases from ``since`` to ``until + window``, oldest first."""
    rows = session.execute(
        select(
            Event.kind,
            Event.sender_id,
            Event.customer_id,
            Event.product_id,
            Event.created_at,
        )
        .where(
            Event.kind.in_(("click", "cart", "purchase")),
            Event.created_at >= r.since,
            Event.created_at < r.until + window,
        )
        .order_by(Event.created_at, Event.id)
    )
    return [Outcome(k, s, c, p, as_utc(at)) for k, s, c, p, at in rows]


def _attributed_points(
    r: TimeRange,
    groups: Sequence[str],
    exposures: Sequence[Exposure],
    outcomes: Sequence[Outcome],
    window: timedelta,
) -> dict[str, list[EngagementPoint]]:
    """Per group (the exposures' ``arm``) and bucket: impressions and the actions credited to
    them, exposed and converted shoppers, by :func:`tailor.experiments.outcomes.tally`.

    Actions are credited over the whole range at once (an action credits the latest
    impression of its product, whichever bucket that is in); a shopper counts as exposed in
    every bucket they were shown cards in, and as converted there when they bought within
    the window after one of that bucket's impressions."""
    sep = "\x1f"
    keyed = [dataclasses.replace(e, arm=f"{e.arm}{sep}{r.bucket_start(e.at)}") for e in exposures]
    labels = sorted({e.arm for e in keyed})
    credited = tally(keyed, outcomes, window, labels).arms if labels else {}
    # Exposed and converted shoppers per bucket need only the purchases.
    purchases = [o for o in outcomes if o.kind == "purchase"]
    times = [o.at for o in purchases]
    by_bucket: dict[date, list[Exposure]] = {}
    for e in exposures:
        by_bucket.setdefault(r.bucket_start(e.at), []).append(e)
    out: dict[str, list[EngagementPoint]] = {g: [] for g in groups}
    for start in r.buckets():
        shown = by_bucket.get(start, [])
        units = None
        if shown:
            lo, hi = r.bucket_bounds(start)
            i, j = bisect.bisect_left(times, lo), bisect.bisect_right(times, hi + window)
            units = tally(shown, purchases[i:j], window, groups).arms
        for g in groups:
            c = credited.get(f"{g}{sep}{start}")
            u = units.get(g) if units else None
            out[g].append(
                EngagementPoint(
                    start,
                    impressions=c.impressions if c else 0,
                    clicks=c.actions["click"] if c else 0,
                    carts=c.actions["cart"] if c else 0,
                    purchases=c.actions["purchase"] if c else 0,
                    shoppers=u.shoppers if u else 0,
                    converted=u.converted if u else 0,
                )
            )
    return out


def engagement_by_arm(
    session: Session,
    r: TimeRange,
    window: timedelta,
    experiment: str | None = None,
) -> ExperimentEngagement:
    """Engagement per arm of ``experiment`` (default: the one with the most impressions in
    the range) over time; actions are attributed within ``window`` after an impression."""
    if window <= timedelta(0):
        raise ValueError(f"the attribution window must be positive, got {window}")
    names = experiments_seen(session, r)
    hours = window.total_seconds() / 3600
    if experiment is None:
        experiment = names[0] if names else None
    if experiment is None:
        return ExperimentEngagement(names, None, hours)
    name = Event.payload["experiment"]["name"].as_string()
    arm = Event.payload["experiment"]["arm"].as_string()
    rows = session.execute(
        select(Event.sender_id, Event.customer_id, Event.product_id, Event.created_at, arm)
        .where(_in_range(r, "shown"), name == experiment)
        .order_by(Event.created_at, Event.id)
    )
    exposures = [Exposure(str(a), s, c, p, as_utc(at)) for s, c, p, at, a in rows if a is not None]
    arms = sorted({e.arm for e in exposures})
    points = _attributed_points(r, arms, exposures, _outcomes(session, r, window), window)
    return ExperimentEngagement(
        names, experiment, hours, [ArmSeries(a, points[a]) for a in arms[:MAX_SERIES]]
    )


# -- sentiment --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentimentPoint:
    """Shoppers' messages of one bucket: how many, their mean signed sentiment (in [-1, 1])
    and the share the sentiment model labelled negative (``None`` without messages)."""

    bucket: date
    messages: int
    mean: float | None
    negative_share: float | None

    def to_json(self) -> dict[str, Any]:
        """The point as the API sends it."""
        return {**asdict(self), "bucket": self.bucket.isoformat()}


def sentiment_trend(session: Session, r: TimeRange) -> list[SentimentPoint]:
    """Per bucket of the range, the scored "message" events' count, mean and negative share."""
    label = Event.payload["sentiment"].as_string()
    inner = (
        select(
            bucket_of(Event.created_at, r.bucket).label("bucket"),
            Event.value.label("value"),
            case((label == "negative", 1), else_=0).label("negative"),
        )
        .where(_in_range(r, "message"), Event.value.is_not(None))
        .subquery()
    )
    rows = session.execute(
        select(
            inner.c.bucket,
            func.count(),
            func.avg(cast(inner.c.value, Float)),
            func.sum(inner.c.negative),
        ).group_by(inner.c.bucket)
    ).all()
    found = {_day(b): (int(n), float(m), int(neg)) for b, n, m, neg in rows}
    out = []
    for b in r.buckets():
        n, mean, neg = found.get(b, (0, 0.0, 0))
        out.append(SentimentPoint(b, n, mean if n else None, neg / n if n else None))
    return out


# -- queries with no good results -------------------------------------------------------------


def normalise_query(text: str | None) -> str:
    """What groups spellings of one query: lower case, single spaces, trimmed."""
    return _WS.sub(" ", (text or "").strip().lower())


@dataclass(frozen=True)
class QueryGap:
    """A query that found nothing (``no_results``) or only weak matches (``weak``: the best
    suggestion's relevance under the threshold), with when it was last asked and the
    criteria it was last asked with."""

    query: str
    no_results: int
    weak: int
    last_seen: datetime
    criteria: dict[str, Any]

    @property
    def total(self) -> int:
        return self.no_results + self.weak

    def to_json(self) -> dict[str, Any]:
        """The row as the API sends it."""
        return {
            "query": self.query,
            "no_results": self.no_results,
            "weak": self.weak,
            "total": self.total,
            "last_seen": self.last_seen.isoformat(),
            "criteria": self.criteria,
        }


def queries_without_good_results(
    session: Session, r: TimeRange, threshold: float, limit: int = 20
) -> list[QueryGap]:
    """The most frequent queries that found nothing or whose best suggestion's relevance
    was below ``threshold``, grouped by :func:`normalise_query`; most asked first.

    A turn that showed cards counts once (its first card's "shown" row)."""
    if not 1 <= limit <= MAX_QUERIES:
        raise ValueError(f"limit must be 1 to {MAX_QUERIES}, got {limit}")
    query = func.lower(func.trim(Event.payload["query"].as_string()))
    top = Event.payload["top_relevance"].as_float()
    rank = Event.payload["rank"].as_integer()
    gap = or_(
        Event.kind == "no_results",
        and_(Event.kind == "shown", top < threshold, func.coalesce(rank, 0) == 0),
    )
    inner = (
        select(
            query.label("query"),
            case((Event.kind == "no_results", 1), else_=0).label("none"),
            case((Event.kind == "shown", 1), else_=0).label("weak"),
            Event.created_at.label("at"),
        )
        .where(_in_range(r, "no_results", "shown"), gap)
        .subquery()
    )
    total = func.count()
    rows = session.execute(
        select(inner.c.query, func.sum(inner.c.none), func.sum(inner.c.weak), func.max(inner.c.at))
        .where(inner.c.query.is_not(None), inner.c.query != "")
        .group_by(inner.c.query)
        .order_by(total.desc(), func.max(inner.c.at).desc(), inner.c.query)
        .limit(_QUERY_SCAN)
    ).all()
    merged: dict[str, list[Any]] = {}
    for raw, none, weak, at in rows:
        key = normalise_query(raw)
        if not key:
            continue
        cell = merged.setdefault(key, [0, 0, None, []])
        cell[0] += int(none or 0)
        cell[1] += int(weak or 0)
        at = as_utc(at if isinstance(at, datetime) else datetime.fromisoformat(str(at)))
        cell[2] = at if cell[2] is None else max(cell[2], at)
        cell[3].append(raw)
    ranked = sorted(merged.items(), key=lambda kv: (-(kv[1][0] + kv[1][1]), -kv[1][2].timestamp()))
    ranked = ranked[:limit]
    raws = [raw for _, cell in ranked for raw in cell[3]]
    latest: dict[str, dict[str, Any]] = {}
    if raws:
        for raw, payload in session.execute(
            select(query, Event.payload)
            .where(_in_range(r, "no_results", "shown"), gap, query.in_(raws))
            .order_by(Event.created_at.desc(), Event.id.desc())
            .limit(len(raws) * 50)
        ):
            crit = (payload or {}).get("criteria")
            latest.setdefault(normalise_query(raw), crit if isinstance(crit, dict) else {})
    return [QueryGap(key, cell[0], cell[1], cell[2], latest.get(key, {})) for key, cell in ranked]


# -- trigger performance ----------------------------------------------------------------------


def trigger_rows(session: Session, r: TimeRange, window: timedelta) -> list[dict[str, Any]]:
    """Per trigger rule that fired or showed cards in the range, most fired first: firings,
    products shown, and the shown (shopper, product) pairs then clicked, carted and bought
    within ``window`` — :func:`tailor.marketing.triggers.trigger_performance`, the same
    numbers as the trigger engine's own report."""
    if window <= timedelta(0):
        raise ValueError(f"the attribution window must be positive, got {window}")
    rows = trigger_performance(
        session, r.since, attribution_days=window / timedelta(days=1), until=r.until
    )
    rows.sort(key=lambda t: (-t.fired, -t.shown, t.rule))
    return [t.to_json() for t in rows[:MAX_NAMES]]


# -- everything for the page ------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    """All the dashboard's charts for one range."""

    range: TimeRange
    segment_kinds: list[str]
    segments: SegmentEngagement
    experiments: ExperimentEngagement
    sentiment: list[SentimentPoint]
    low_relevance: float
    queries: list[QueryGap]
    triggers: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """The JSON the dashboard page draws."""

        def series(points: list[EngagementPoint]) -> list[dict[str, Any]]:
            return [p.to_json() for p in points]

        return {
            "since": self.range.since.isoformat(),
            "until": self.range.until.isoformat(),
            "bucket": self.range.bucket,
            "buckets": [b.isoformat() for b in self.range.buckets()],
            "segments": {
                "kind": self.segments.kind,
                "kinds": self.segment_kinds,
                "omitted": self.segments.omitted,
                "series": [
                    {"segment": s.segment, "points": series(s.points)} for s in self.segments.series
                ],
            },
            "experiments": {
                "names": self.experiments.names,
                "selected": self.experiments.selected,
                "window_hours": self.experiments.window_hours,
                "series": [
                    {"arm": a.arm, "points": series(a.points)} for a in self.experiments.arms
                ],
            },
            "sentiment": [p.to_json() for p in self.sentiment],
            "queries": {
                "threshold": self.low_relevance,
                "rows": [q.to_json() for q in self.queries],
            },
            "triggers": self.triggers,
        }


def build_dashboard(
    session: Session,
    r: TimeRange,
    window: timedelta,
    low_relevance: float,
    segment_kind: str | None = None,
    experiment: str | None = None,
    queries: int = 20,
) -> Dashboard:
    """Every chart of the dashboard for ``r``. ``segment_kind`` must be one customers have
    (default: "rfm" when present, else the first); unknown names are rejected."""
    kinds = segment_kinds(session)
    if segment_kind is None:
        segment_kind = "rfm" if "rfm" in kinds or not kinds else kinds[0]
    elif segment_kind not in kinds:
        raise ValueError(
            f"unknown segment kind {segment_kind!r}; valid kinds are {kinds or ['(none yet)']}"
        )
    arms = engagement_by_arm(session, r, window, experiment)
    if experiment is not None and experiment not in arms.names:
        raise ValueError(
            f"no suggestions of experiment {experiment!r} were shown in this range; "
            f"experiments seen: {arms.names or ['(none)']}"
        )
    return Dashboard(
        range=r,
        segment_kinds=kinds,
        segments=engagement_by_segment(session, r, segment_kind),
        experiments=arms,
        sentiment=sentiment_trend(session, r),
        low_relevance=low_relevance,
        queries=queries_without_good_results(session, r, low_relevance, queries),
        triggers=trigger_rows(session, r, window),
    )
