"""``tailor experiments simulate``: traffic from the demo customers through the real
recommender, with shoppers who behave according to their hidden demo preferences.

A driver above :mod:`tailor.recommend` (imported only by the CLI and tests). For each
simulated visit the real :class:`~tailor.recommend.service.Recommender` builds the shopper
(history, segments, session, experiment arm) and ranks products; the "shown" events carry
the arm, and the shopper's reactions are stored as real events (payload
``{"source": "simulation"}``) through :mod:`tailor.store`, timestamped over the simulated
days — so ``tailor experiments report`` reads them like live traffic.

Behaviour model (documented in docs/experiments.md), for a customer with favourite leaf
categories C, favourite brands B and price sensitivity s (their ``demo_preferences``):

- visits: 1 + Binomial(days, p) per customer, p = 0.05 (one-off/browser), 0.10
  (occasional) or 0.20 (regular/frequent), at uniform times over the simulated days;
- request: 75% a favourite leaf ("running shoes"), else a random leaf of the catalog;
- appeal of a card: a = 0.5·cat + 0.3·brand + 0.2·price_fit, where cat is 1 for a
  favourite leaf (0.4 for its department), brand 1 for a favourite brand, and price_fit =
  exp(-(q - (1 - s))² / 0.08) with q the product's price position in its category;
- a card at rank r (0-based) is clicked with probability (0.03 + 0.35·a) / (1 + 0.35·r);
  after a click, details are viewed with 0.5 + 0.3·a, the card is added to the cart with
  0.1 + 0.4·a, and a cart is bought (within 0-48 h) with 0.35 + 0.4·price_fit;
- after each list the shopper says how they feel: sentiment tanh(2.5·(max a - 0.45)) plus
  N(0, 0.15) noise, clipped to [-1, 1], stored as the "message" event's value; with nothing
  in the cart they ask for more (up to three lists) with probability 0.6.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from tailor.experiments.definitions import Experiment
from tailor.recommend.criteria import Criteria
from tailor.recommend.service import Recommendation, Recommender
from tailor.store.events import delete_conversation_events, record_events
from tailor.store.models import Customer, Product

SOURCE = {"source": "simulation"}
VISIT_RATE = {"one-off": 0.05, "browser": 0.05, "occasional": 0.10}
MAX_LISTS = 3


@dataclass
class SimulationSummary:
    """What a simulation did."""

    experiment: str
    customers: int
    visits: int = 0
    not_eligible: int = 0
    lists: int = 0
    by_arm: dict[str, Counter[str]] = field(default_factory=dict)
    replaced_events: int = 0
    seconds: float = 0.0

    def render(self) -> str:
        """A few lines for the terminal."""
        lines = [
            f"Simulated {self.visits} visits of {self.customers} demo customers in "
            f"{self.experiment!r} ({self.lists} suggestion lists, {self.seconds:.0f} s; "
            f"{self.not_eligible} visits outside the experiment's segments skipped; "
            f"{self.replaced_events} events of an earlier run with this seed replaced).",
        ]
        for arm, counts in sorted(self.by_arm.items()):
            lines.append(
                f"  {arm:14} visits {counts['visits']:5d}  shown {counts['shown']:6d}  "
                f"clicks {counts['click']:5d}  carts {counts['cart']:4d}  "
                f"purchases {counts['purchase']:4d}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class Preferences:
    """A demo customer's hidden ground truth."""

    categories: frozenset[str]
    departments: frozenset[str]
    brands: frozenset[str]
    sensitivity: float
    activity: str

    @classmethod
    def of(cls, attributes: dict[str, Any]) -> Preferences | None:
        """From ``attributes["demo_preferences"]``; None for a customer without them."""
        prefs = (attributes or {}).get("demo_preferences")
        if not isinstance(prefs, dict):
            return None
        cats = frozenset(str(c) for c in prefs.get("favourite_categories", []))
        return cls(
            categories=cats,
            departments=frozenset(c.split(" > ")[0] for c in cats),
            brands=frozenset(str(b) for b in prefs.get("favourite_brands", [])),
            sensitivity=float(prefs.get("price_sensitivity", 0.5)),
            activity=str(prefs.get("activity", "occasional")),
        )

    def price_fit(self, position: float | None) -> float:
        """1 at the price position this shopper is drawn to (1 - sensitivity)."""
        if position is None:
            return 0.5
        return math.exp(-((position - (1.0 - self.sensitivity)) ** 2) / 0.08)

    def appeal(self, category: str, brand: str | None, position: float | None) -> float:
        """How much a product suits this shopper, in [0, 1]."""
        if category in self.categories:
            cat = 1.0
        elif category.split(" > ")[0] in self.departments:
            cat = 0.4
        else:
            cat = 0.0
        fav_brand = 1.0 if brand and brand in self.brands else 0.0
        return 0.5 * cat + 0.3 * fav_brand + 0.2 * self.price_fit(position)


def sender_prefix(experiment: str, seed: int) -> str:
    """Conversation ids of one simulation run start with this."""
    return f"sim:{experiment}:{seed}:"


def simulate(
    rec: Recommender,
    experiment: Experiment,
    customers: int = 200,
    days: int = 14,
    seed: int = 42,
    progress: bool = False,
) -> SimulationSummary:
    """Simulate ``days`` days of visits by ``customers`` demo customers (drawn by ``seed``)
    from the experiment's start, through ``rec``; replaces an earlier run with the same seed.
    Deterministic for the same database, experiment and seed."""
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    start = experiment.start
    if start + timedelta(days=days) > experiment.end:
        raise ValueError(
            f"{days} days from {start:%Y-%m-%d} run past the experiment's end "
            f"({experiment.end:%Y-%m-%d}); simulate fewer days"
        )
    if not any(e.name == experiment.name for e in rec.experiments):
        raise ValueError(
            f"the recommender does not run experiment {experiment.name!r}; running: "
            f"{[e.name for e in rec.experiments] or 'none'}"
        )
    t0 = time.perf_counter()
    rng = random.Random(seed)
    prefix = sender_prefix(experiment.name, seed)
    with rec.session_factory.begin() as session:
        replaced = delete_conversation_events(session, prefix)
        rows = session.execute(
            select(Customer.id, Customer.external_id, Customer.attributes).order_by(Customer.id)
        ).all()
        leaves = sorted(set(session.scalars(select(Product.category).distinct())))
    people = [(cid, ext, p) for cid, ext, attrs in rows if (p := Preferences.of(attrs))]
    if not people:
        raise ValueError("no demo customers with demo_preferences: run `tailor demo` first")
    if not leaves:
        raise ValueError("the catalog is empty: run `tailor demo` first")
    chosen = rng.sample(people, min(customers, len(people)))
    visits: list[tuple[datetime, int, str, Preferences, int]] = []
    for cid, ext, prefs in chosen:
        rate = VISIT_RATE.get(prefs.activity, 0.2)
        n = 1 + sum(rng.random() < rate for _ in range(days))
        for v in range(n):
            at = start + timedelta(seconds=rng.uniform(0, days * 86400 - 3600))
            visits.append((at.replace(microsecond=0), cid, ext, prefs, v))
    visits.sort(key=lambda x: (x[0], x[1], x[4]))
    summary = SimulationSummary(experiment.name, len(chosen), replaced_events=replaced)
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(visits), desc="visits", unit="visit", leave=False)
    try:
        for at, cid, ext, prefs, v in visits:
            _visit(rec, experiment, rng, f"{prefix}{ext}:{v}", cid, prefs, leaves, at, summary)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _record(
    rec: Recommender,
    kind: str,
    sender: str,
    products: list[int],
    at: datetime,
    customer_id: int,
    payload: dict[str, Any] | None = None,
    value: float | None = None,
) -> None:
    with rec.session_factory.begin() as session:
        for event in record_events(
            session, kind, sender, products, {**(payload or {}), **SOURCE}, customer_id, value
        ):
            event.created_at = at


def _visit(
    rec: Recommender,
    experiment: Experiment,
    rng: random.Random,
    sender: str,
    customer_id: int,
    prefs: Preferences,
    leaves: list[str],
    at: datetime,
    summary: SimulationSummary,
) -> None:
    # draw everything random for the visit first, so eligibility does not shift the stream
    favourites = sorted(c for c in prefs.categories if c in leaves)
    use_favourite = rng.random() < 0.75 and bool(favourites)
    leaf = rng.choice(favourites) if use_favourite else rng.choice(leaves)
    visit_rng = random.Random(rng.getrandbits(64))
    shopper = rec.shopper(sender, customer_id, now=at)
    if shopper.experiment is None or shopper.experiment.experiment != experiment.name:
        summary.not_eligible += 1
        return
    arm = shopper.experiment.arm
    counts = summary.by_arm.setdefault(arm, Counter())
    counts["visits"] += 1
    summary.visits += 1
    query = leaf.split(" > ")[-1].lower()
    _record(rec, "message", sender, [], at, customer_id, {"label": "neutral"}, 0.0)
    seen: list[int] = []
    clock = at
    for _ in range(MAX_LISTS):
        clock += timedelta(seconds=20)
        shopper = rec.shopper(sender, customer_id, now=clock)
        if shopper.experiment is None:  # left the window or the segments mid-visit
            return
        result = rec.recommend(Criteria(query=query), exclude=seen, shopper=shopper, now=clock)
        if not result.suggestions:
            return
        ids = [s.product_id for s in result.suggestions]
        seen.extend(ids)
        summary.lists += 1
        counts["shown"] += len(ids)
        _record(
            rec, "shown", sender, ids, clock, customer_id, _shown_payload(result, query, shopper)
        )
        carted, best = _react(rec, visit_rng, sender, customer_id, prefs, result, clock, counts)
        clock += timedelta(minutes=2)
        mood = max(-1.0, min(1.0, math.tanh(2.5 * (best - 0.45)) + visit_rng.gauss(0, 0.15)))
        label = "positive" if mood > 0.2 else "negative" if mood < -0.2 else "neutral"
        _record(rec, "message", sender, [], clock, customer_id, {"label": label}, round(mood, 4))
        if carted or visit_rng.random() >= 0.6:
            return


def _shown_payload(result: Recommendation, query: str, shopper: Any) -> dict[str, Any]:
    top = max(s.signals.get("relevance", 0.0) for s in result.suggestions)
    return {
        "criteria": result.criteria.to_slots(),
        "query": query,
        "total_matches": result.total_matches,
        "personalised": shopper.personalised,
        "top_relevance": round(top, 4),
        "experiment": shopper.experiment.to_payload(),
    }


def _react(
    rec: Recommender,
    rng: random.Random,
    sender: str,
    customer_id: int,
    prefs: Preferences,
    result: Recommendation,
    at: datetime,
    counts: Counter[str],
) -> tuple[bool, float]:
    """The shopper's clicks, details, carts and purchases on one list; (carted?, best appeal)."""
    prices = rec.signals.prices
    carted = False
    best = 0.0
    clock = at
    for rank, s in enumerate(result.suggestions):
        fit_pos = prices.position(s.category, s.price)
        a = prefs.appeal(s.category, s.brand, fit_pos)
        best = max(best, a)
        if rng.random() >= (0.03 + 0.35 * a) / (1 + 0.35 * rank):
            continue
        clock += timedelta(seconds=15)
        _record(rec, "click", sender, [s.product_id], clock, customer_id)
        counts["click"] += 1
        if rng.random() < 0.5 + 0.3 * a:
            clock += timedelta(seconds=15)
            _record(rec, "view", sender, [s.product_id], clock, customer_id)
            counts["view"] += 1
        if rng.random() < 0.1 + 0.4 * a:
            clock += timedelta(seconds=10)
            _record(rec, "cart", sender, [s.product_id], clock, customer_id)
            counts["cart"] += 1
            carted = True
            if rng.random() < 0.35 + 0.4 * prefs.price_fit(fit_pos):
                bought = clock + timedelta(hours=rng.uniform(0, 48))
                _record(rec, "purchase", sender, [s.product_id], bought, customer_id, value=s.price)
                counts["purchase"] += 1
    return carted, best
