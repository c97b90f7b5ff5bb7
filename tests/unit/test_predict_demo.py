"""The demo histories carry replenishment: consumables restocked at each customer's rhythm,
drawn from their own random stream so the rest of the history does not change."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from dataclasses import astuple

import pytest

from tailor.demo import REFERENCE_DATE, generate_customers, generate_events, generate_products
from tailor.demo import customers as demo_customers
from tailor.demo.customers import RESTOCK
from tailor.demo.taxonomy import leaf_by_path


@pytest.fixture(scope="module")
def world() -> tuple[list, list, list]:
    products = list(generate_products(1500, seed=5))
    customers = generate_customers(300, seed=5)
    return products, customers, generate_events(customers, products, seed=5)


def test_restock_rules_name_real_leaves() -> None:
    for path, rule in RESTOCK.items():
        assert leaf_by_path(path).path == path and rule.days > 0
        for starter in rule.starters:
            assert leaf_by_path(starter).path == starter
    assert "Kitchen > Coffee Machines" in RESTOCK["Food & Drink > Coffee"].starters


def test_restock_events_are_additive(
    world: tuple[list, list, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    products, customers, events = world
    restocks = [e for e in events if e.payload.get("restock")]
    assert restocks
    monkeypatch.setattr(demo_customers, "_restock_events", lambda *a, **k: [])
    without = generate_events(customers, products, seed=5)
    assert [astuple(e) for e in events if not e.payload.get("restock")] == [
        astuple(e) for e in without
    ]


def test_restocks_follow_a_rhythm_until_churn(world: tuple[list, list, list]) -> None:
    products, customers, events = world
    category = {p.sku: p.category for p in products}
    prefs = {c.external_id: c.preferences for c in customers}
    series: dict[tuple[str, str], list] = defaultdict(list)
    for e in events:
        assert e.created_at < REFERENCE_DATE
        if e.payload.get("restock"):
            assert e.kind == "purchase" and category[e.product_sku] in RESTOCK
            series[(e.customer_external_id, category[e.product_sku])].append(e.created_at)
    assert len(series) >= 10
    ratios = []
    for (cust, path), times in series.items():
        gaps = [(b - a).days for a, b in itertools.pairwise(sorted(times))]
        if len(gaps) >= 3:
            assert statistics.pstdev(gaps) / statistics.fmean(gaps) < 0.35
            ratios.append(statistics.median(gaps) / RESTOCK[path].days)
        assert prefs[cust]["activity"] != "browser"
    # each customer has their own interval around the category's typical one
    assert 0.75 < statistics.median(ratios) < 1.3 and max(ratios) / min(ratios) > 1.3
    # a churned customer stops restocking when they stop buying
    churned = [k for k in series if prefs[k[0]]["churned"]]
    assert churned
    first_seen = {c.external_id: c.created_at for c in customers}
    for cust, path in churned:
        # a churned customer's history ends within the first 60% of their time with the shop
        end = first_seen[cust] + (REFERENCE_DATE - first_seen[cust]) * 0.6
        assert max(series[(cust, path)]) <= end
    active = [k for k in series if not prefs[k[0]]["churned"]]
    recent = [k for k in active if (REFERENCE_DATE - max(series[k])).days <= RESTOCK[k[1]].days]
    assert len(recent) >= len(active) // 2  # the others lapsed or just began
