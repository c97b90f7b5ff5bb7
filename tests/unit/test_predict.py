"""Predictive scores: churn features and labels by hand, restock logic against a brute-force
reference, category learning on synthetic histories, and the score store."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tailor.profiles.predict import (
    ChurnModel,
    Purchase,
    RestockCategory,
    RestockModel,
    churn_features,
    churn_label,
    fit_churn_model,
    fit_restock_model,
    intervals_days,
    order_times,
    predict_restock,
    risk_band,
    spread,
)
from tailor.store import make_session_factory
from tailor.store.models import Customer, Profile
from tailor.store.scores import score_rows, scores_of, set_scores

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


# -- churn features and labels ------------------------------------------------------------
def test_churn_features_by_hand() -> None:
    times = [ago(200), ago(100), ago(10), NOW, NOW + timedelta(days=3)]  # last two: not yet
    values = [10.0, 20.0, 30.0, 999.0, 999.0]
    f = churn_features(times, values, NOW)
    assert f == {
        "recency_days": 10.0,
        "orders": 3.0,
        "orders_30d": 1.0,
        "orders_90d": 1.0,
        "orders_180d": 2.0,
        "trend_90d": 0.0,  # one in the last 90 days, one in the 90 before
        "tenure_days": 200.0,
        "mean_interval_days": 100.0,
        "overdue_ratio": 0.1,
        "spent": 60.0,
        "order_value": 20.0,
    }
    one = churn_features([ago(40)], [5.0], NOW)
    assert one is not None
    assert one["mean_interval_days"] == one["tenure_days"] == one["recency_days"] == 40.0
    assert one["overdue_ratio"] == 1.0 and one["trend_90d"] == 1.0
    assert churn_features([NOW], [1.0], NOW) is None  # only a purchase at the date itself
    assert churn_features([], [], NOW) is None
    with pytest.raises(ValueError, match="2 times but 1 values"):
        churn_features([ago(1), ago(2)], [1.0], NOW)


def test_churn_features_accept_naive_utc_times() -> None:
    naive = [t.replace(tzinfo=None) for t in (ago(30), ago(5))]
    assert churn_features(naive, [1.0, 2.0], NOW) == churn_features(
        [ago(30), ago(5)], [1.0, 2.0], NOW
    )


def test_churn_label_window_is_half_open() -> None:
    assert churn_label([ago(10), NOW + timedelta(days=5)], NOW, 90) is False
    assert churn_label([ago(10)], NOW, 90) is True
    assert churn_label([ago(10), NOW + timedelta(days=90)], NOW, 90) is True  # just outside
    assert churn_label([ago(10), NOW], NOW, 90) is False  # at the date counts as after
    assert churn_label([NOW + timedelta(days=1)], NOW, 90) is None  # no history yet
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="horizon_days"):
            churn_label([ago(1)], NOW, bad)  # type: ignore[arg-type]


def _brute_label(times: list[datetime], at: datetime, h: int) -> bool | None:
    before = [t for t in times if t < at]
    if not before:
        return None
    return all(not (at <= t < at + timedelta(days=h)) for t in times)


def test_churn_label_matches_brute_force_on_random_histories() -> None:
    rng = random.Random(3)
    for _ in range(300):
        times = [ago(rng.uniform(-200, 400)) for _ in range(rng.randint(0, 6))]
        h = rng.randint(1, 120)
        assert churn_label(times, NOW, h) == _brute_label(times, NOW, h)


def test_churn_model_learns_recency_and_round_trips() -> None:
    rng = random.Random(1)
    purchases: list[Purchase] = []
    for cid in range(200):
        loyal = cid % 2 == 0
        start = rng.uniform(400, 700)
        t = start
        while t > (0 if loyal else rng.uniform(150, 350)):
            purchases.append(Purchase(cid, ago(t), rng.uniform(10, 100)))
            t -= rng.uniform(15, 45)
    model = fit_churn_model(purchases, NOW, horizon_days=90)
    assert model.info["rows"] > 200 and 0 < model.info["churned"] < model.info["rows"]
    active = churn_features([ago(5), ago(35), ago(70)], [20.0, 20.0, 20.0], NOW)
    lapsed = churn_features([ago(300), ago(330), ago(360)], [20.0, 20.0, 20.0], NOW)
    assert active is not None and lapsed is not None
    risk = model.predict([active, lapsed])
    assert risk[0] < 0.3 < 0.7 < risk[1]
    again = ChurnModel.from_json(model.to_json())
    assert np.allclose(again.predict([active, lapsed]), risk)
    broken = dict(model.to_json(), features=["recency"])
    with pytest.raises(ValueError, match="refit"):
        ChurnModel.from_json(broken)


def test_churn_model_needs_both_outcomes() -> None:
    everyone_returns = [Purchase(c, ago(d), 10.0) for c in range(5) for d in range(0, 400, 20)]
    with pytest.raises(ValueError, match="both returning and lapsed"):
        fit_churn_model(everyone_returns, NOW, 90)


def test_risk_band() -> None:
    assert [risk_band(x) for x in (0.0, 0.39, 0.4, 0.69, 0.7, 1.0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]
    with pytest.raises(ValueError, match="probability"):
        risk_band(1.2)


# -- intervals and restock ----------------------------------------------------------------
def test_order_times_merge_same_day_purchases() -> None:
    times = [ago(30), ago(29.9), ago(10), ago(0.5), ago(0.2)]
    assert order_times(times) == [ago(30), ago(10), ago(0.5)]
    assert intervals_days(times) == pytest.approx([20.0, 9.5])
    assert spread([7.0, 7.0, 7.0]) == 0.0
    assert spread([10.0, 30.0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no intervals"):
        spread([])


COFFEE, MACHINE, SHOES = "Food > Coffee", "Kitchen > Coffee Machines", "Shoes > Sneakers"
MODEL = RestockModel(
    categories={
        COFFEE: RestockCategory(COFFEE, 21.0, 0.1, 10, 80, {MACHINE: 18.0}),
        "Health > Vitamins": RestockCategory("Health > Vitamins", 30.0, 0.2, 5, 40),
    },
    fitted_at=NOW,
)


def _reference(model: RestockModel, purchases: list[Purchase], now: datetime) -> dict[str, float]:
    """Brute force: due date (days from now) per category, by the documented rule."""
    out: dict[str, float] = {}
    for path, cat in model.categories.items():
        mine = sorted(p.at for p in purchases if p.category == path and p.at < now)
        if mine:
            orders: list[datetime] = []
            for t in mine:
                if not orders or (t - orders[-1]).total_seconds() >= 86400:
                    orders.append(t)
            gaps = [(b - a).total_seconds() / 86400 for a, b in itertools.pairwise(orders)]
            if gaps:
                m = len(gaps)
                interval = (m * statistics.median(gaps) + cat.median_interval_days) / (m + 1)
            else:
                interval = cat.median_interval_days
            due = (orders[-1] - now).total_seconds() / 86400 + interval
        else:
            starts = [
                (p.at, p.category) for p in purchases if p.category in cat.starters and p.at < now
            ]
            if not starts:
                continue
            at, starter = max(starts)
            interval = cat.starters[str(starter)]
            due = (at - now).total_seconds() / 86400 + interval
        if -due > max(7.0, interval):
            continue
        out[path] = due
    return out


def test_predict_restock_matches_brute_force_reference() -> None:
    rng = random.Random(8)
    cats = [COFFEE, MACHINE, SHOES, "Health > Vitamins"]
    checked = 0
    for _ in range(400):
        purchases = [
            Purchase(1, ago(rng.uniform(-30, 200)), 10.0, rng.choice(cats), rng.randint(1, 50))
            for _ in range(rng.randint(0, 8))
        ]
        got = {d.category: d for d in predict_restock(MODEL, purchases, NOW)}
        want = _reference(MODEL, purchases, NOW)
        assert set(got) == set(want)
        for path, days in want.items():
            delta = (got[path].due_at - NOW).total_seconds() / 86400
            assert delta == pytest.approx(days, abs=1e-3)  # due_at is rounded to the second
            assert 0.0 <= got[path].confidence <= 1.0
            checked += 1
        dues = list(got.values())
        assert [d.due_at for d in dues] == sorted(d.due_at for d in dues)
    assert checked > 200


def test_restock_reasons_products_and_baseline() -> None:
    history = [
        Purchase(1, ago(66), 9.0, COFFEE, 11),
        Purchase(1, ago(44), 9.0, COFFEE, 11),
        Purchase(1, ago(24), 9.0, COFFEE, 12),
    ]
    (due,) = predict_restock(MODEL, history, NOW)
    # own median 21 days from 2 intervals (22, 20) → (2 * 21 + 21) / 3 = 21
    assert due.basis == "own" and due.product_id == 12 and due.interval_days == 21.0
    assert due.due_at == ago(3) and due.last_bought_at == ago(24)
    assert due.reason == "your coffee from 3 weeks ago is probably running low"
    single = predict_restock(MODEL, history[-1:], NOW)
    assert single[0].basis == "typical" and single[0].confidence < due.confidence
    machine = predict_restock(MODEL, [Purchase(1, ago(16), 300.0, MACHINE, 99)], NOW)
    assert machine[0].basis == "starter" and machine[0].product_id is None
    assert machine[0].due_at == ago(16) + timedelta(days=18)
    assert machine[0].reason == "Coffee for the coffee machine you bought 2 weeks ago"
    # the baseline ignores the customer's own rhythm
    fast = [Purchase(1, ago(d), 9.0, COFFEE, 11) for d in (40, 30, 20, 10)]
    own = predict_restock(MODEL, fast, NOW)[0]
    base = predict_restock(MODEL, fast, NOW, own_intervals=False)[0]
    assert own.due_at < base.due_at == ago(10) + timedelta(days=21)
    # long overdue: left out, unless asked for
    old = [Purchase(1, ago(120), 9.0, COFFEE, 11)]
    assert predict_restock(MODEL, old, NOW) == []
    assert predict_restock(MODEL, old, NOW, include_lapsed=True)[0].due_at == ago(99)


def test_fit_restock_model_learns_rhythms_and_starters_not_noise() -> None:
    rng = random.Random(5)
    purchases: list[Purchase] = []
    for cid in range(60):
        # everyone buys sneakers at random times
        for _ in range(rng.randint(0, 6)):
            purchases.append(Purchase(cid, ago(rng.uniform(0, 700)), 80.0, SHOES))
        if cid % 3 == 0:  # a third bought a machine, then coffee at their own rhythm
            start = rng.uniform(300, 600)
            purchases.append(Purchase(cid, ago(start), 300.0, MACHINE))
            every = 21 * rng.uniform(0.8, 1.2)
            t = start - every * rng.uniform(0.9, 1.1)
            while t > 0:
                purchases.append(Purchase(cid, ago(t), 9.0, COFFEE))
                t -= every * rng.gauss(1.0, 0.08)
    model = fit_restock_model(purchases, NOW)
    assert set(model.categories) == {COFFEE}
    coffee = model.categories[COFFEE]
    assert 17 < coffee.median_interval_days < 25 and coffee.customers >= 15
    assert set(coffee.starters) == {MACHINE} and 15 < coffee.starters[MACHINE] < 27
    again = RestockModel.from_json(model.to_json())
    assert again == model
    # nothing is learnt from the future
    assert fit_restock_model(purchases, ago(1000)).categories == {}


# -- score store --------------------------------------------------------------------------
def test_scores_store_replaces_and_respects_opt_out(tmp_path: Path) -> None:
    factory = make_session_factory(f"sqlite:///{tmp_path / 'scores.db'}")
    with factory.begin() as s:
        customers = [Customer(external_id=f"c{i}", name=f"C {i}") for i in range(4)]
        s.add_all(customers)
        s.flush()
        ids = [c.id for c in customers]
        s.add(Profile(customer_id=ids[3], personalisation=False))
        s.flush()
        n = set_scores(s, "churn", 1, {cid: (0.1 * (i + 1), {"i": i}) for i, cid in enumerate(ids)})
        assert n == 3  # the opted-out customer is not scored
    with factory.begin() as s:
        assert scores_of(s, ids[3]) == {}
        rows = score_rows(s, "churn")
        assert [r.customer_id for r in rows] == [ids[2], ids[1], ids[0]]
        assert rows[0].value == pytest.approx(0.3) and rows[0].model_version == 1
        assert [r.customer_id for r in score_rows(s, "churn", min_value=0.15, limit=1)] == [ids[2]]
        set_scores(s, "churn", 2, {ids[0]: (0.9, {})})  # a refit drops stale rows
    with factory() as s:
        rows = score_rows(s, "churn")
        assert [(r.customer_id, r.value, r.model_version) for r in rows] == [(ids[0], 0.9, 2)]
        with pytest.raises(ValueError, match="not finite"):
            set_scores(s, "churn", 3, {ids[0]: (math.nan, {})})
        with pytest.raises(ValueError, match="1-32 characters"):
            set_scores(s, "", 3, {})
        with pytest.raises(ValueError, match="limit"):
            score_rows(s, "churn", limit=0)
