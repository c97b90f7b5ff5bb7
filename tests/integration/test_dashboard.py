"""The marketing dashboard's queries against brute-force Python over the same seeded event
log, on SQLite and on the real PostgreSQL (``production`` marker: fails, not skips, when
PostgreSQL is missing).

The seeded log has customers in behavioural and demographic segments, anonymous visitors,
two experiments, trigger firings, sentiment-scored messages, weak and empty searches, and
events just outside the range, all written through ``tailor.store``."""

from __future__ import annotations

import contextlib
import random
import secrets
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tailor.analytics.dashboard import (
    GUEST,
    UNSEGMENTED,
    build_dashboard,
    engagement_by_arm,
    engagement_by_segment,
    normalise_query,
    queries_without_good_results,
    segment_kinds,
    sentiment_trend,
    time_range,
    trigger_rows,
)
from tailor.config import Settings
from tailor.store import make_session_factory
from tailor.store.events import record_events
from tailor.store.models import Customer, Product
from tailor.store.segments import set_segments

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
SINCE = NOW - timedelta(days=20)
WINDOW = timedelta(hours=24)
THRESHOLD = 0.35
ARMS = ("blend", "full", "segment-only")
ARM_LIFT = {"blend": 1.0, "full": 1.3, "segment-only": 0.75}
RULES = ("abandoned_cart", "restock", "retention")
QUERIES = ["running shoes", "Running  Shoes ", "blue linen shirt", "waterproof tent", "gift"]


@dataclass
class Ev:
    """What the brute force sees of one seeded event."""

    kind: str
    sender: str | None
    customer: int | None
    product: int | None
    at: datetime
    value: float | None = None
    payload: dict[str, Any] | None = None

    def keys(self) -> set[str]:
        out = set()
        if self.customer is not None:
            out.add(f"c:{self.customer}")
        if self.sender:
            out.add(f"s:{self.sender}")
        return out

    @property
    def unit(self) -> str:
        return f"c:{self.customer}" if self.customer is not None else f"s:{self.sender}"


# -- the backends ---------------------------------------------------------------------------


@contextlib.contextmanager
def _postgres_url() -> Iterator[str]:
    from tailor.runtime import production as prod

    base = Settings.load().postgres_url
    url = make_url(base).set(database=f"tailor_test_dash_{secrets.token_hex(4)}")
    rendered = url.render_as_string(hide_password=False)
    try:
        prod.ensure_database(rendered)
    except Exception as exc:  # the marker promises a failure naming the service
        pytest.fail(f"the dashboard's PostgreSQL tests need PostgreSQL at {base}: {exc}")
    try:
        yield rendered
    finally:
        prod.drop_database(rendered)


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.production)],
)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[sessionmaker[Session], list[Ev]]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'tailor.db'}"
        factory = make_session_factory(url)
        yield factory, seed(factory)
        factory.kw["bind"].dispose()
    else:
        with _postgres_url() as url:
            factory = make_session_factory(url)
            try:
                yield factory, seed(factory)
            finally:
                factory.kw["bind"].dispose()


def seed(
    factory: sessionmaker[Session], n_events: int = 1800, now: datetime = NOW, react: float = 0.6
) -> list[Ev]:
    """A random but seeded event log from 22 days before ``now`` to 2 days after: turns with
    up to four reactions each (each with probability ``react``, times a lift per arm) up
    to 40 hours later. Every timestamp is distinct (ties would need rules)."""
    rng = random.Random(8)
    log: list[Ev] = []
    used: set[datetime] = set()

    def when(lo: datetime, hi: datetime) -> datetime:
        while True:
            t = lo + timedelta(seconds=rng.randrange(int((hi - lo).total_seconds())))
            if t not in used:
                used.add(t)
                return t

    with factory.begin() as s:
        products = [
            Product(sku=f"p{i}", title=f"Product {i}", category="Shoes", price=10.0 + i)
            for i in range(8)
        ]
        customers = [Customer(external_id=f"cust-{i}", name=f"Customer {i}") for i in range(14)]
        s.add_all([*products, *customers])
        s.flush()
        pids = [p.id for p in products]
        cids = [c.id for c in customers]
        rfm = ["champions", "loyal", "at_risk"]
        set_segments(s, "rfm", 1, {cid: rfm[i % 3] for i, cid in enumerate(cids[:11])})
        set_segments(s, "demographic", None, {cid: f"age-{i % 2}" for i, cid in enumerate(cids)})
        shoppers: list[tuple[str, int | None]] = [(f"web-{cid}", cid) for cid in cids]
        shoppers += [(f"anon-{i}", None) for i in range(6)]

        def add(ev: Ev) -> None:
            (row,) = record_events(
                s,
                ev.kind,
                ev.sender,
                [ev.product] if ev.product is not None else [],
                ev.payload,
                customer_id=ev.customer,
                value=ev.value,
            )
            row.created_at = ev.at
            ev.payload = dict(row.payload)
            log.append(ev)

        lo, hi = now - timedelta(days=22), now + timedelta(days=2)
        for _ in range(n_events // 6):
            sender, cid = rng.choice(shoppers)
            t = when(lo, hi)
            q = rng.choice(QUERIES)
            crit: dict[str, Any] = {
                "product_type": q.split()[-1].lower(),
                "price_max": rng.choice([None, 50, 80, 120]),
                "colour": rng.choice([None, "blue", "black"]),
            }
            lift = 1.0
            roll = rng.random()
            if roll < 0.15:
                add(Ev("no_results", sender, cid, None, t, None, {"query": q, "criteria": crit}))
                continue
            if roll < 0.25:
                rule = rng.choice(RULES)
                shown = rng.sample(pids, 2)
                payload: dict[str, Any] = {"rule": rule, "channel": "telegram", "products": shown}
                add(Ev("trigger", sender, cid, None, t, None, payload))
                for pid in shown:
                    add(
                        Ev(
                            "shown",
                            sender,
                            cid,
                            pid,
                            when(t, t + timedelta(seconds=60)),
                            None,
                            {"trigger": rule},
                        )
                    )
            else:
                top = round(rng.uniform(0.1, 0.9), 4)
                payload = {"query": q, "criteria": crit, "top_relevance": top}
                if rng.random() < 0.7:
                    arm = (
                        ARMS[sum(map(ord, sender)) % 3] if rng.random() < 0.9 else rng.choice(ARMS)
                    )
                    name = "exp-a" if rng.random() < 0.8 else "exp-b"
                    payload["experiment"] = {"name": name, "arm": arm}
                    lift = ARM_LIFT[arm]
                shown = rng.sample(pids, rng.randint(1, 3))
                for rank, pid in enumerate(shown):
                    add(
                        Ev(
                            "shown",
                            sender,
                            cid,
                            pid,
                            t + timedelta(microseconds=rank),
                            None,
                            {**payload, "rank": rank},
                        )
                    )
                used.update(t + timedelta(microseconds=k) for k in range(len(shown)))
            # reactions: some on shown products (in and out of the window), some unrelated
            for _ in range(sum(rng.random() < react * lift for _ in range(4))):
                kind = rng.choice(["click", "click", "cart", "purchase", "message"])
                later = when(t, t + timedelta(hours=40))
                if kind == "message":
                    v = round(rng.uniform(-1, 1), 3)
                    label = "negative" if v < -0.3 else ("positive" if v > 0.3 else "neutral")
                    add(Ev("message", sender, cid, None, later, v, {"sentiment": label}))
                else:
                    pid = rng.choice(shown) if rng.random() < 0.8 else rng.choice(pids)
                    add(Ev(kind, sender, cid, pid, later, None, {}))
        # a purchase posted by the store: customer id, no conversation
        sender, cid = shoppers[0]
        add(Ev("purchase", None, cid, pids[0], when(now - timedelta(days=20), now), None, {}))
        # a message with no score is not part of the sentiment trend
        add(Ev("message", "anon-0", None, None, when(now - timedelta(days=20), now), None, {}))
    return log


# -- brute force --------------------------------------------------------------------------


def day(t: datetime) -> date:
    return t.astimezone(UTC).date()


def in_range(e: Ev, since: datetime = SINCE, until: datetime = NOW) -> bool:
    return since <= e.at < until


def segment_of(log_segments: dict[int, str], e: Ev) -> str:
    if e.customer is None:
        return GUEST
    return log_segments.get(e.customer, UNSEGMENTED)


def rfm_of(factory: sessionmaker[Session]) -> dict[int, str]:
    from sqlalchemy import select

    from tailor.store.models import CustomerSegment

    with factory() as s:
        rows = s.execute(
            select(CustomerSegment.customer_id, CustomerSegment.segment).where(
                CustomerSegment.kind == "rfm"
            )
        )
        return {int(c): str(seg) for c, seg in rows}


def credit(log: list[Ev], exposures: list[Ev], window: timedelta) -> dict[str, set[int]]:
    """Index (into ``exposures``) of the impression each action credits: the latest of the
    same product by a shared shopper key, at or before the action, within ``window``."""
    out: dict[str, set[int]] = defaultdict(set)
    for a in log:
        if a.kind not in ("click", "cart", "purchase") or a.product is None:
            continue
        best = None
        for i, e in enumerate(exposures):
            if (
                e.product == a.product
                and e.keys() & a.keys()
                and e.at <= a.at
                and a.at - e.at <= window
                and (best is None or e.at > exposures[best].at)
            ):
                best = i
        if best is not None:
            out[a.kind].add(best)
    return out


def converted_units(log: list[Ev], exposures: list[Ev], window: timedelta) -> set[str]:
    return {
        e.unit
        for e in exposures
        for p in log
        if p.kind == "purchase" and e.keys() & p.keys() and timedelta(0) <= p.at - e.at <= window
    }


# -- tests ------------------------------------------------------------------------------------


def test_range_validation_and_buckets() -> None:
    r = time_range(SINCE, NOW)
    assert r.bucket == "day" and r.buckets()[0] == day(SINCE) and r.buckets()[-1] == day(NOW)
    assert len(r.buckets()) == 21
    w = time_range(NOW - timedelta(days=200), NOW)
    assert w.bucket == "week"
    assert all(b.weekday() == 0 for b in w.buckets())
    assert w.bucket_start(datetime(2026, 11, 22, 23, 59, tzinfo=UTC)) == date(2026, 11, 16)
    assert time_range(until=NOW).since == NOW - timedelta(days=30)
    naive = time_range(datetime(2026, 1, 1), datetime(2026, 1, 2))
    assert naive.since.tzinfo is not None
    with pytest.raises(ValueError, match="must be before"):
        time_range(NOW, NOW)
    with pytest.raises(ValueError, match="at most 731 days"):
        time_range(NOW - timedelta(days=800), NOW)
    with pytest.raises(ValueError, match="use 'week'"):
        time_range(NOW - timedelta(days=200), NOW, "day")
    with pytest.raises(ValueError, match="'day' or 'week'"):
        time_range(SINCE, NOW, "month")
    assert normalise_query("  Running \t Shoes ") == "running shoes"


@pytest.mark.parametrize("bucket", ["day", "week"])
def test_engagement_by_segment_matches_brute_force(
    seeded: tuple[sessionmaker[Session], list[Ev]], bucket: str
) -> None:
    factory, log = seeded
    r = time_range(SINCE, NOW, bucket)
    segs = rfm_of(factory)
    with factory() as s:
        got = engagement_by_segment(s, r, "rfm", max_series=50)
        assert segment_kinds(s) == ["demographic", "rfm"]
    want: dict[tuple[str, date], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    shown_units: dict[tuple[str, date], set[str]] = defaultdict(set)
    buyers: dict[date, set[str]] = defaultdict(set)
    names = {"shown": "impressions", "click": "clicks", "cart": "carts", "purchase": "purchases"}
    for e in log:
        if not in_range(e) or e.kind not in names:
            continue
        key = (segment_of(segs, e), r.bucket_start(e.at))
        want[key][names[e.kind]] += 1
        if e.kind == "shown":
            shown_units[key].add(e.unit)
        if e.kind == "purchase":
            buyers[key[1]].add(e.unit)
    assert {x.segment for x in got.series} == {k[0] for k in want}
    assert GUEST in {x.segment for x in got.series} and UNSEGMENTED in {
        x.segment for x in got.series
    }
    total = 0
    for series in got.series:
        assert [p.bucket for p in series.points] == r.buckets()
        for p in series.points:
            w = want.get((series.segment, p.bucket), {})
            units = shown_units.get((series.segment, p.bucket), set())
            assert (p.impressions, p.clicks, p.carts, p.purchases) == (
                w.get("impressions", 0),
                w.get("clicks", 0),
                w.get("carts", 0),
                w.get("purchases", 0),
            ), (series.segment, p.bucket)
            assert p.shoppers == len(units)
            assert p.converted == len(units & buyers.get(p.bucket, set()))
            if p.impressions:
                assert p.ctr == pytest.approx(p.clicks / p.impressions)
            total += p.impressions
    assert total == sum(1 for e in log if e.kind == "shown" and in_range(e)) > 100
    # biggest first, and the cap says how many were left out
    with factory() as s:
        capped = engagement_by_segment(s, r, "rfm", max_series=2)
    assert [x.segment for x in capped.series] == [x.segment for x in got.series[:2]]
    assert capped.omitted == len(got.series) - 2


def test_engagement_by_arm_matches_brute_force(
    seeded: tuple[sessionmaker[Session], list[Ev]],
) -> None:
    factory, log = seeded
    r = time_range(SINCE, NOW)
    with factory() as s:
        got = engagement_by_arm(s, r, WINDOW)
        other = engagement_by_arm(s, r, WINDOW, "exp-b")
        with pytest.raises(ValueError, match="must be positive"):
            engagement_by_arm(s, r, timedelta(0))
    exposures = sorted(
        (e for e in log if e.kind == "shown" and in_range(e) and "experiment" in (e.payload or {})),
        key=lambda e: e.at,
    )
    counts: dict[str, int] = defaultdict(int)
    for e in exposures:
        counts[e.payload["experiment"]["name"]] += 1  # type: ignore[index]
    assert got.names == sorted(counts, key=lambda n: (-counts[n], n)) == ["exp-a", "exp-b"]
    assert got.selected == "exp-a" and other.selected == "exp-b"
    assert got.window_hours == 24
    for result in (got, other):
        mine = [e for e in exposures if e.payload["experiment"]["name"] == result.selected]  # type: ignore[index]
        credited = credit([a for a in log if a.at < NOW + WINDOW], mine, WINDOW)
        assert {a.arm for a in result.arms} == {e.payload["experiment"]["arm"] for e in mine}  # type: ignore[index]
        for series in result.arms:
            for p in series.points:
                idx = [
                    i
                    for i, e in enumerate(mine)
                    if e.payload["experiment"]["arm"] == series.arm  # type: ignore[index]
                    and r.bucket_start(e.at) == p.bucket
                ]
                assert p.impressions == len(idx)
                assert p.clicks == len(credited["click"] & set(idx))
                assert p.carts == len(credited["cart"] & set(idx))
                assert p.purchases == len(credited["purchase"] & set(idx))
                in_bucket = [e for e in mine if r.bucket_start(e.at) == p.bucket]
                first_arm: dict[str, str] = {}
                for e in in_bucket:
                    first_arm.setdefault(e.unit, e.payload["experiment"]["arm"])  # type: ignore[index]
                units = {u for u, a in first_arm.items() if a == series.arm}
                assert p.shoppers == len(units)
                conv = converted_units(log, in_bucket, WINDOW)
                assert p.converted == len(units & conv)
    assert sum(p.clicks for a in got.arms for p in a.points) > 5
    assert sum(p.converted for a in got.arms for p in a.points) > 0


def test_sentiment_trend_matches_brute_force(
    seeded: tuple[sessionmaker[Session], list[Ev]],
) -> None:
    factory, log = seeded
    r = time_range(SINCE, NOW)
    with factory() as s:
        got = sentiment_trend(s, r)
    assert [p.bucket for p in got] == r.buckets()
    for p in got:
        vals = [
            e
            for e in log
            if e.kind == "message" and e.value is not None and in_range(e) and day(e.at) == p.bucket
        ]
        assert p.messages == len(vals)
        if vals:
            assert p.mean == pytest.approx(sum(e.value for e in vals) / len(vals))  # type: ignore[misc]
            neg = sum((e.payload or {}).get("sentiment") == "negative" for e in vals)
            assert p.negative_share == pytest.approx(neg / len(vals))
        else:
            assert p.mean is None and p.negative_share is None
    assert sum(p.messages for p in got) > 20


def test_queries_without_good_results_match_brute_force(
    seeded: tuple[sessionmaker[Session], list[Ev]],
) -> None:
    factory, log = seeded
    r = time_range(SINCE, NOW)
    with factory() as s:
        got = queries_without_good_results(s, r, THRESHOLD, limit=10)
        top2 = queries_without_good_results(s, r, THRESHOLD, limit=2)
        with pytest.raises(ValueError, match="limit must be 1 to 100"):
            queries_without_good_results(s, r, THRESHOLD, limit=0)
    want: dict[str, list[Any]] = {}
    for e in sorted(log, key=lambda e: e.at):
        p = e.payload or {}
        if not in_range(e) or "query" not in p:
            continue
        weak = e.kind == "shown" and p["top_relevance"] < THRESHOLD and p.get("rank", 0) == 0
        if e.kind != "no_results" and not weak:
            continue
        cell = want.setdefault(normalise_query(p["query"]), [0, 0, None, None])
        cell[0 if e.kind == "no_results" else 1] += 1
        cell[2], cell[3] = e.at, p["criteria"]
    assert {q.query for q in got} == set(want) and "running shoes" in want
    for q in got:
        none, weak, last, crit = want[q.query]
        assert (q.no_results, q.weak, q.total) == (none, weak, none + weak)
        assert q.last_seen == last and q.criteria == crit
    assert [q.total for q in got] == sorted((q.total for q in got), reverse=True)
    assert [q.query for q in top2] == [q.query for q in got[:2]]


def test_trigger_rows_match_brute_force(seeded: tuple[sessionmaker[Session], list[Ev]]) -> None:
    """The trigger engine's measure (tailor.marketing.triggers.trigger_performance): a shown
    (shopper, product) pair counts once per action done within the window after it."""
    factory, log = seeded
    r = time_range(SINCE, NOW)
    with factory() as s:
        rows = trigger_rows(s, r, WINDOW)
        with pytest.raises(ValueError, match="must be positive"):
            trigger_rows(s, r, -WINDOW)
    got = {t["rule"]: t for t in rows}
    assert set(got) == set(RULES)
    assert [t["fired"] for t in rows] == sorted((t["fired"] for t in rows), reverse=True)

    def who(e: Ev) -> str:
        return f"c{e.customer}" if e.customer is not None else f"s{e.sender}"

    for rule, t in got.items():
        shown = [
            e
            for e in log
            if e.kind == "shown" and in_range(e) and (e.payload or {}).get("trigger") == rule
        ]
        fired = [
            e
            for e in log
            if e.kind == "trigger" and in_range(e) and e.payload["rule"] == rule  # type: ignore[index]
        ]
        assert (t["fired"], t["shown"]) == (len(fired), len(shown))
        for kind, key in (("click", "clicked"), ("cart", "carted"), ("purchase", "purchased")):
            pairs = {
                (who(e), e.product)
                for e in shown
                for a in log
                if a.kind == kind
                and who(a) == who(e)
                and a.product == e.product
                and e.at <= a.at <= e.at + WINDOW
            }
            assert t[key] == len(pairs), (rule, kind)
    assert sum(t["clicked"] + t["carted"] + t["purchased"] for t in rows) > 0


def test_build_dashboard_json_and_errors(seeded: tuple[sessionmaker[Session], list[Ev]]) -> None:
    factory, _ = seeded
    r = time_range(SINCE, NOW)
    with factory() as s:
        data = build_dashboard(s, r, WINDOW, THRESHOLD).to_json()
        assert data["segments"]["kind"] == "rfm"
        assert data["segments"]["kinds"] == ["demographic", "rfm"]
        demo = build_dashboard(s, r, WINDOW, THRESHOLD, segment_kind="demographic").to_json()
        assert {x["segment"] for x in demo["segments"]["series"]} == {"age-0", "age-1", GUEST}
        with pytest.raises(ValueError, match=r"unknown segment kind 'colour'; valid kinds are"):
            build_dashboard(s, r, WINDOW, THRESHOLD, segment_kind="colour")
        with pytest.raises(ValueError, match="experiments seen: \\['exp-a', 'exp-b'\\]"):
            build_dashboard(s, r, WINDOW, THRESHOLD, experiment="nope")
        empty = build_dashboard(
            s, time_range(NOW + timedelta(days=30), NOW + timedelta(days=31)), WINDOW, THRESHOLD
        ).to_json()
    assert len(data["buckets"]) == 21 and data["bucket"] == "day"
    assert data["experiments"]["selected"] == "exp-a"
    assert all(len(x["points"]) == 21 for x in data["experiments"]["series"])
    assert data["queries"]["threshold"] == THRESHOLD and data["queries"]["rows"]
    assert {t["rule"] for t in data["triggers"]} == set(RULES)
    assert empty["experiments"]["selected"] is None and empty["triggers"] == []
    assert empty["queries"]["rows"] == [] and empty["segments"]["series"] == []
    assert all(p["messages"] == 0 for p in empty["sentiment"])


def test_an_existing_database_gains_the_events_time_index(tmp_path: Any) -> None:
    from sqlalchemy import inspect, text

    from tailor.store.db import init_db, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    init_db(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_events_kind_time"))
    assert "ix_events_kind_time" not in {i["name"] for i in inspect(engine).get_indexes("events")}
    init_db(engine)  # what every command and the web app do when they open the database
    indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("events")}
    assert indexes["ix_events_kind_time"] == ["kind", "created_at"]
    init_db(engine)  # and again: nothing left to add
    engine.dispose()
