"""Offline evaluation of personal ranking with a time split (leave the last purchase out).

For every customer with at least two purchases, the **last purchase is held out**; what the
rankers may learn from is a single global *training view*: every customer's events strictly
before their own last purchase (customers who never bought keep all their views). The
held-out purchase, everything at or after it, and every other customer's last purchase are
therefore never seen. Each held-out purchase becomes one request: the shopper types the
product type of what they bought ("running shoes"), retrieval returns the candidates, and
each method orders the *same* candidates; the metric is where the held-out product lands in
the top ``k``.

Methods (see :data:`METHODS`): popularity in the training view, the anonymous ranker
(relevance + review quality + MMR diversity: what a shopper who is not signed in gets),
segment prior only, and full personalisation (affinity from the customer's own training
history + segment prior + season/climate context); plus ablations that remove one signal of
the full ranker at a time. Segments are refitted on the training view (RFM k-means, the
demographic and geographic rules, psychographics from browsing tags), so the evaluation never
reads the segments stored in the database.

The module does no heavy work at import; the retrieval (``search``) is passed in, so tests
can use a small fake. :func:`load_eval_data` reads a Tailor database.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np

from tailor.profiles.psychographics import psychographic_segment
from tailor.profiles.rfm import NO_PURCHASES, fit_rfm
from tailor.profiles.rules import demographic_segment, geographic_segment, season
from tailor.recommend.personal import (
    Affinity,
    Context,
    PricePositions,
    Rankable,
    RankingWeights,
    SegmentPrior,
    ShopperContext,
    personal_rank,
)
from tailor.recommend.signals import (
    HISTORY_WEIGHTS,
    HistoryItem,
    SegmentTables,
    affinity_from_history,
    segment_tables,
)
from tailor.retrieval.filters import Filter
from tailor.store.models import as_utc

__all__ = [
    "ABLATIONS",
    "METHODS",
    "Case",
    "EvalCustomer",
    "EvalData",
    "EvalEvent",
    "EvaluationReport",
    "MethodResult",
    "PairedResult",
    "Prepared",
    "TimeSplit",
    "evaluate",
    "hit_at",
    "leaf_query",
    "load_eval_data",
    "ndcg_at",
    "paired_comparison",
    "prepare",
    "rank_of",
    "render_markdown",
    "sign_test",
    "summarise",
    "time_split",
    "training_segments",
]

#: The four methods the issue asks for, in report order: key → description.
METHODS: dict[str, str] = {
    "popularity": "(a) popularity: training-view purchase counts, ties by relevance",
    "retrieval": "(b) plain retrieval: the anonymous ranker (relevance + quality, MMR)",
    "segment": "(c) segment-only: segment prior (refitted on the training view), MMR",
    "full": "(d) full personalisation: affinity + segment prior + context, MMR",
}
#: Extra rows: a cosine-only baseline and the full ranker with one signal removed.
ABLATIONS: dict[str, str] = {
    "cosine": "cosine order only (no quality, no MMR)",
    "affinity only": "affinity alone (no segment prior, no context), MMR",
    "full - affinity": "full without affinity (segment prior + context)",
    "full - brand": "full, affinity without its brand shares",
    "full - price": "full, affinity without its price position",
    "full - owned": "full without the owned-item penalty",
    "full - recent views": "full, affinity without the views of the last 3 days before the "
    "purchase (where the demo puts each purchase's own browsing)",
    "full - segment": "full without the segment prior",
    "full - context": "full without season / climate context",
    "full - diversity": "full with MMR off (lambda = 1) and no same-brand penalty",
}
#: Views this close before the held-out purchase are left out by the "full - recent views"
#: ablation (the demo generator views the product it is about to buy up to 3 days before).
RECENT_VIEW_DAYS = 3.0
#: Event kinds that count as browsing for psychographic tags (as in ``profiles.segments``).
BROWSING_KINDS = frozenset({"view", "click", "cart", "purchase", "details"})
#: Fewer customers with training purchases than this: no RFM segments (k-means needs data).
MIN_RFM_CUSTOMERS = 10


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class EvalEvent:
    """One customer interaction with a product (``value``: the amount paid, for purchases)."""

    customer_id: int
    product_id: int
    kind: str
    at: datetime
    value: float | None = None


@dataclass(frozen=True)
class EvalCustomer:
    """What the segment rules and the context need to know about a customer."""

    customer_id: int
    country: str | None = None
    region: str | None = None
    age_band: str | None = None
    climate: str | None = None


@dataclass
class EvalData:
    """A catalog, its customers and their events, as plain data."""

    products: dict[int, Rankable]
    customers: dict[int, EvalCustomer]
    events: list[EvalEvent]
    review_sentiment: dict[int, float] = field(default_factory=dict)


def load_eval_data(session_factory: Callable[[], Any]) -> EvalData:
    """Products, customers and customer events (views, clicks, carts, purchases) of a Tailor
    database. Stored segments, profiles and stated preferences are deliberately not read."""
    from sqlalchemy import select

    from tailor.store.models import Customer, Event, Product

    with session_factory() as session:
        products = list(session.scalars(select(Product).order_by(Product.id)))
        session.expunge_all()
        customers = {
            int(c.id): EvalCustomer(
                customer_id=int(c.id),
                country=c.country,
                region=c.region,
                age_band=c.age_band,
                climate=(c.attributes or {}).get("climate")
                if isinstance((c.attributes or {}).get("climate"), str)
                else None,
            )
            for c in session.scalars(select(Customer).order_by(Customer.id))
        }
        rows = session.execute(
            select(Event.customer_id, Event.product_id, Event.kind, Event.created_at, Event.value)
            .where(
                Event.customer_id.is_not(None),
                Event.product_id.is_not(None),
                Event.kind.in_(tuple(BROWSING_KINDS | set(HISTORY_WEIGHTS))),
            )
            .order_by(Event.created_at, Event.id)
        ).all()
    events = [
        EvalEvent(int(cid), int(pid), str(kind), as_utc(at), None if v is None else float(v))
        for cid, pid, kind, at, v in rows
    ]
    return EvalData(
        products={int(p.id): p for p in products},
        customers=customers,
        events=events,
        review_sentiment={
            int(p.id): float(p.review_sentiment) for p in products if p.review_sentiment is not None
        },
    )


# --------------------------------------------------------------------------- split
@dataclass(frozen=True)
class Case:
    """One held-out purchase: the customer, the product, when, and the customer's own
    events strictly before it (their training history, oldest first)."""

    customer_id: int
    product_id: int
    at: datetime
    history: tuple[EvalEvent, ...]


@dataclass
class TimeSplit:
    """The held-out cases and the global training view (see the module docstring)."""

    cases: list[Case]
    training: list[EvalEvent]
    #: Each customer's cut: the time of their last purchase (customers who bought only).
    cuts: dict[int, datetime]


def time_split(events: Iterable[EvalEvent], min_purchases: int = 2) -> TimeSplit:
    """Hold out each customer's last purchase (customers with ``min_purchases`` or more).

    A customer's events are ordered by time (ties keep the input order); the last purchase in
    that order is held out, and only events *strictly before* its time are training data —
    for every customer who bought anything, evaluated or not, so no held-out purchase is ever
    training data for anyone. Customers without purchases keep all their events.
    """
    if min_purchases < 1:
        raise ValueError(f"min_purchases must be at least 1, got {min_purchases}")
    by_customer: dict[int, list[tuple[int, EvalEvent]]] = defaultdict(list)
    for i, ev in enumerate(events):
        by_customer[ev.customer_id].append((i, ev))
    cases: list[Case] = []
    training: list[EvalEvent] = []
    cuts: dict[int, datetime] = {}
    for cid in sorted(by_customer):
        own = [ev for _, ev in sorted(by_customer[cid], key=lambda t: (as_utc(t[1].at), t[0]))]
        purchases = [ev for ev in own if ev.kind == "purchase"]
        if not purchases:
            training.extend(own)
            continue
        last = purchases[-1]
        cut = as_utc(last.at)
        cuts[cid] = cut
        before = tuple(ev for ev in own if as_utc(ev.at) < cut)
        training.extend(before)
        if len(purchases) >= min_purchases:
            cases.append(Case(cid, last.product_id, cut, before))
    training.sort(key=lambda ev: (as_utc(ev.at), ev.customer_id))
    return TimeSplit(cases=cases, training=training, cuts=cuts)


# --------------------------------------------------------------------------- segments
def training_segments(
    training: Sequence[EvalEvent],
    customers: Mapping[int, EvalCustomer],
    products: Mapping[int, Rankable],
    seed: int = 42,
    min_rfm_customers: int = MIN_RFM_CUSTOMERS,
) -> dict[int, dict[str, str]]:
    """``{customer: {kind: segment}}`` refitted on the training view only.

    * rfm: k-means on log RFM of training purchases (k by silhouette, :func:`fit_rfm`),
      recency measured from the latest training purchase; no purchases → "no purchases yet"
      (everyone, when fewer than ``min_rfm_customers`` bought anything);
    * demographic / geographic: the stated rules over age band, country and climate;
    * psychographic: tags of the products each customer browsed or bought in training
      (at least two signals, as in :func:`tailor.profiles.segments.assign_psychographic_segments`).
    """
    orders: Counter[int] = Counter()
    spent: dict[int, float] = defaultdict(float)
    last: dict[int, datetime] = {}
    tags: dict[int, list[str]] = defaultdict(list)
    for ev in training:
        product = products.get(ev.product_id)
        if ev.kind in BROWSING_KINDS and product is not None:
            tags[ev.customer_id].extend(product.tags or [])
        if ev.kind != "purchase":
            continue
        orders[ev.customer_id] += 1
        amount = ev.value if ev.value is not None else (product.price if product else 0.0)
        spent[ev.customer_id] += max(0.0, float(amount or 0.0))
        at = as_utc(ev.at)
        if ev.customer_id not in last or at > last[ev.customer_id]:
            last[ev.customer_id] = at
    out: dict[int, dict[str, str]] = {}
    for cid, c in customers.items():
        out[cid] = {
            "demographic": demographic_segment(c.age_band),
            "geographic": geographic_segment(c.country, c.climate),
            "psychographic": psychographic_segment([], tags.get(cid, []), min_signal=2),
            "rfm": NO_PURCHASES,
        }
    buyers = sorted(last)
    if len(buyers) >= max(min_rfm_customers, 2):
        reference = max(last.values())
        r = np.array([(reference - last[c]).total_seconds() / 86400 for c in buyers])
        f = np.array([orders[c] for c in buyers], dtype=np.float64)
        m = np.array([spent[c] for c in buyers], dtype=np.float64)
        model = fit_rfm(r, f, m, seed=seed)
        for cid, name in zip(buyers, model.assign(r, f, m), strict=True):
            out.setdefault(cid, {})["rfm"] = name
    return out


# --------------------------------------------------------------------------- metrics
def rank_of(ranked: Sequence[int], target: int) -> int | None:
    """1-based position of ``target`` in ``ranked``, or None if it is not there."""
    for i, pid in enumerate(ranked, start=1):
        if pid == target:
            return i
    return None


def hit_at(rank: int | None, k: int) -> float:
    """1.0 when the relevant item is in the top ``k``, else 0.0."""
    return 1.0 if rank is not None and rank <= k else 0.0


def ndcg_at(rank: int | None, k: int) -> float:
    """NDCG@k with one relevant item: ``1 / log2(rank + 1)`` inside the top ``k`` (the ideal
    DCG is 1), else 0.0."""
    return 1.0 / math.log2(rank + 1) if rank is not None and rank <= k else 0.0


@dataclass(frozen=True)
class MethodResult:
    """Mean hit rate and NDCG of one method, with percentile-bootstrap 95% intervals and
    standard errors, over ``n`` held-out purchases."""

    name: str
    n: int
    hit: float
    hit_ci: tuple[float, float]
    hit_se: float
    ndcg: float
    ndcg_ci: tuple[float, float]
    ndcg_se: float


def _bootstrap_index(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def summarise(
    name: str,
    ranks: Sequence[int | None],
    k: int = 10,
    n_boot: int = 2000,
    seed: int = 42,
) -> MethodResult:
    """Hit rate@k and NDCG@k of ``ranks`` (None = not in the list) with bootstrap CIs."""
    if not ranks:
        raise ValueError(f"no held-out cases to summarise for {name!r}")
    hits = np.array([hit_at(r, k) for r in ranks])
    gains = np.array([ndcg_at(r, k) for r in ranks])
    idx = _bootstrap_index(len(ranks), n_boot, seed)

    def ci(values: np.ndarray) -> tuple[float, float]:
        means = values[idx].mean(axis=1)
        lo, hi = np.percentile(means, [2.5, 97.5])
        return float(lo), float(hi)

    def se(values: np.ndarray) -> float:
        return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0

    return MethodResult(
        name=name,
        n=len(ranks),
        hit=float(hits.mean()),
        hit_ci=ci(hits),
        hit_se=se(hits),
        ndcg=float(gains.mean()),
        ndcg_ci=ci(gains),
        ndcg_se=se(gains),
    )


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign-test p-value of ``wins`` against ``losses`` (ties dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1))
    return min(1.0, 2 * tail / 2**n)


@dataclass(frozen=True)
class PairedResult:
    """``a`` against ``b`` on the same cases: how often ``a`` puts the held-out item higher
    (a miss counts as lower than any hit), the sign test, and the mean NDCG difference with a
    paired-bootstrap 95% interval."""

    a: str
    b: str
    wins: int
    losses: int
    ties: int
    p_value: float
    ndcg_diff: float
    ndcg_diff_ci: tuple[float, float]


def paired_comparison(
    a: str,
    ranks_a: Sequence[int | None],
    b: str,
    ranks_b: Sequence[int | None],
    k: int = 10,
    n_boot: int = 2000,
    seed: int = 42,
) -> PairedResult:
    """Compare two methods case by case (see :class:`PairedResult`)."""
    if len(ranks_a) != len(ranks_b) or not ranks_a:
        raise ValueError(
            f"paired comparison needs two equal, non-empty rank lists, "
            f"got {len(ranks_a)} and {len(ranks_b)}"
        )
    wins = losses = ties = 0
    for ra, rb in zip(ranks_a, ranks_b, strict=True):
        va = ra if ra is not None and ra <= k else math.inf
        vb = rb if rb is not None and rb <= k else math.inf
        if va < vb:
            wins += 1
        elif vb < va:
            losses += 1
        else:
            ties += 1
    diff = np.array(
        [ndcg_at(ra, k) - ndcg_at(rb, k) for ra, rb in zip(ranks_a, ranks_b, strict=True)]
    )
    means = diff[_bootstrap_index(len(diff), n_boot, seed)].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return PairedResult(
        a=a,
        b=b,
        wins=wins,
        losses=losses,
        ties=ties,
        p_value=sign_test(wins, losses),
        ndcg_diff=float(diff.mean()),
        ndcg_diff_ci=(float(lo), float(hi)),
    )


# --------------------------------------------------------------------------- ranking
class SearchLike(Protocol):
    """What the evaluation needs from :class:`~tailor.retrieval.ProductSearch`."""

    def search(self, query: str | np.ndarray, k: int = 10, flt: Filter | None = None) -> Any:
        """Hits (``.product_id``, ``.score``), best first."""
        ...

    def vector(self, product_id: int) -> np.ndarray:
        """The stored embedding of a product."""
        ...


def leaf_query(category: str) -> str:
    """The product type as a shopper would type it: ``"Shoes > Running Shoes"`` →
    ``"running shoes"``."""
    return category.split(" > ")[-1].strip().lower()


@dataclass
class Prepared:
    """Everything learned from the training view, shared by every case and variant."""

    data: EvalData
    split: TimeSplit
    segments: dict[int, dict[str, str]]
    tables: SegmentTables
    popularity: Counter[int]
    prices: PricePositions
    seconds: float = 0.0


def prepare(
    data: EvalData,
    seed: int = 42,
    min_purchases: int = 2,
    min_rfm_customers: int = MIN_RFM_CUSTOMERS,
) -> Prepared:
    """Split the events and fit segments, segment tables and popularity on the training view
    (``min_rfm_customers``: see :func:`training_segments`)."""
    t0 = time.perf_counter()
    split = time_split(data.events, min_purchases=min_purchases)
    segments = training_segments(
        split.training, data.customers, data.products, seed, min_rfm_customers
    )
    purchases = [
        (ev.customer_id, data.products[ev.product_id].category, data.products[ev.product_id].brand)
        for ev in split.training
        if ev.kind == "purchase" and ev.product_id in data.products
    ]
    by_cat: dict[str, list[float]] = defaultdict(list)
    for p in data.products.values():
        by_cat[p.category].append(float(p.price))
    return Prepared(
        data=data,
        split=split,
        segments=segments,
        tables=segment_tables(purchases, segments),
        popularity=Counter(ev.product_id for ev in split.training if ev.kind == "purchase"),
        prices=PricePositions(by_cat),
        seconds=time.perf_counter() - t0,
    )


def _history(
    case: Case, products: Mapping[int, Rankable], views_before: datetime | None = None
) -> list[HistoryItem]:
    """The case's history as :class:`HistoryItem`; views at or after ``views_before`` are
    dropped."""
    out: list[HistoryItem] = []
    for ev in case.history:
        p = products.get(ev.product_id)
        if p is None or ev.kind not in HISTORY_WEIGHTS:
            continue
        if views_before is not None and ev.kind == "view" and as_utc(ev.at) >= views_before:
            continue
        out.append(
            HistoryItem(ev.product_id, ev.kind, ev.at, p.title, p.category, p.brand, float(p.price))
        )
    return out


def _shoppers(case: Case, prep: Prepared) -> dict[str, ShopperContext]:
    """The shopper contexts of every personal_rank-based method for one case."""
    data = prep.data
    customer = data.customers.get(case.customer_id, EvalCustomer(case.customer_id))
    segs = prep.segments.get(case.customer_id, {})
    prior = prep.tables.prior(segs)
    affinity = affinity_from_history(_history(case, data.products), prep.prices, case.at)
    recent = case.at - timedelta(days=RECENT_VIEW_DAYS)
    older = affinity_from_history(_history(case, data.products, recent), prep.prices, case.at)
    context = Context(
        season=season(customer.country, case.at.date()) if customer.country else None,
        climate=customer.climate,
        region=customer.region or customer.country,
    )
    full = ShopperContext(
        customer_id=case.customer_id,
        personalised=True,
        affinity=affinity,
        segments=segs,
        prior=prior,
        context=context,
    )
    return {
        "retrieval": ShopperContext.anonymous(),
        "segment": ShopperContext(
            customer_id=case.customer_id, personalised=True, segments=segs, prior=prior
        ),
        "full": full,
        "affinity only": replace(full, prior=SegmentPrior(), context=Context()),
        "full - affinity": replace(full, affinity=Affinity()),
        "full - brand": replace(full, affinity=replace(affinity, brands={})),
        "full - price": replace(full, affinity=replace(affinity, price_position=None)),
        "full - owned": replace(full, affinity=replace(affinity, purchases=[])),
        "full - recent views": replace(full, affinity=older),
        "full - segment": replace(full, prior=SegmentPrior()),
        "full - context": replace(full, context=Context()),
        "full - diversity": full,
    }


@dataclass
class EvaluationReport:
    """Results of one request variant (filtered to the leaf or not)."""

    variant: str
    k: int
    n_candidates: int
    ranks: dict[str, list[int | None]]
    results: dict[str, MethodResult]
    paired: list[PairedResult]
    #: Share of cases whose held-out product was among the candidates at all.
    candidate_recall: float
    mean_candidates: float
    #: Expected hit rate of a random order of the candidates.
    random_hit: float
    #: Per case: had the customer bought the held-out product before (a repeat purchase)?
    repeat: list[bool]
    #: Share of cases whose customer had viewed the held-out product before buying it.
    viewed_before: float
    seconds: float

    @property
    def repeat_purchases(self) -> float:
        """Share of cases whose held-out product the customer had bought before."""
        return sum(self.repeat) / len(self.repeat) if self.repeat else 0.0

    def subset(self, name: str, repeat: bool) -> tuple[float, float, int]:
        """Mean hit rate and NDCG of ``name`` over the repeat (or the first-time) purchases,
        and how many there are."""
        ranks = [r for r, rep in zip(self.ranks[name], self.repeat, strict=True) if rep == repeat]
        if not ranks:
            return 0.0, 0.0, 0
        hit = sum(hit_at(r, self.k) for r in ranks) / len(ranks)
        return hit, sum(ndcg_at(r, self.k) for r in ranks) / len(ranks), len(ranks)


def evaluate(
    prep: Prepared,
    search: SearchLike,
    filtered: bool = True,
    k: int = 10,
    n_candidates: int = 200,
    weights: RankingWeights | None = None,
    ablations: bool = True,
    n_boot: int = 2000,
    seed: int = 42,
    progress: bool = False,
) -> EvaluationReport:
    """Rank every held-out case with every method and summarise.

    ``filtered``: the request carries a category filter equal to the held-out product's
    leaf (ranking *within* a product type); otherwise the leaf name alone is the query. Stock
    is ignored (``in_stock=False``): it is today's, not the stock at purchase time.
    """
    t0 = time.perf_counter()
    weights = weights or RankingWeights()
    flat = replace(weights, mmr_lambda=1.0, same_brand=0.0)
    data = prep.data
    cases = [c for c in prep.split.cases if c.product_id in data.products]
    if not cases:
        raise ValueError("no held-out cases: need customers with at least two purchases")
    names = list(METHODS) + (list(ABLATIONS) if ablations else [])
    ranks: dict[str, list[int | None]] = {name: [] for name in names}
    hits_cache: dict[tuple[str, bool], list[tuple[int, float]]] = {}
    vectors: dict[int, np.ndarray] = {}
    recall = 0
    n_cand_total = 0
    random_hit = 0.0
    repeat: list[bool] = []
    viewed = 0
    bar: Any = None
    if progress:
        from tqdm import tqdm

        desc = f"ranking ({'filtered' if filtered else 'unfiltered'})"
        bar = tqdm(total=len(cases), desc=desc, unit="case", file=sys.stderr)
    for case in cases:
        target = data.products[case.product_id]
        key = (target.category, filtered)
        if key not in hits_cache:
            flt = Filter(categories=(target.category,), in_stock=False) if filtered else None
            hits = search.search(leaf_query(target.category), n_candidates, flt)
            hits_cache[key] = [
                (int(h.product_id), float(h.score))
                for h in hits
                if int(h.product_id) in data.products
            ]
        hits = hits_cache[key]
        for pid, _ in hits:
            if pid not in vectors:
                vectors[pid] = np.asarray(search.vector(pid), dtype=np.float32)
        candidates = [(data.products[pid], rel) for pid, rel in hits]
        ids = [pid for pid, _ in hits]
        recall += case.product_id in ids
        n_cand_total += len(ids)
        random_hit += min(1.0, k / len(ids)) if case.product_id in ids else 0.0
        viewed += any(ev.kind == "view" and ev.product_id == target.id for ev in case.history)
        repeat.append(
            any(ev.kind == "purchase" and ev.product_id == case.product_id for ev in case.history)
        )
        by_popularity = sorted(hits, key=lambda h: (-prep.popularity[h[0]], -h[1], h[0]))
        ranks["popularity"].append(rank_of([pid for pid, _ in by_popularity[:k]], target.id))
        if "cosine" in ranks:
            ranks["cosine"].append(rank_of(ids[:k], case.product_id))
        shoppers = _shoppers(case, prep)
        for name in names:
            if name in ("popularity", "cosine"):
                continue
            ranked = personal_rank(
                candidates,
                shoppers[name],
                flat if name == "full - diversity" else weights,
                k,
                vectors,
                prices=prep.prices,
                review_sentiment=data.review_sentiment,
                now=case.at,
            )
            ranks[name].append(rank_of([s.product.id for s in ranked], case.product_id))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    results = {name: summarise(name, ranks[name], k=k, n_boot=n_boot, seed=seed) for name in names}
    paired = [
        paired_comparison("full", ranks["full"], other, ranks[other], k, n_boot, seed)
        for other in names
        if other != "full"
    ]
    n = len(cases)
    return EvaluationReport(
        variant="filtered to the leaf" if filtered else "leaf name only, no filter",
        k=k,
        n_candidates=n_candidates,
        ranks=ranks,
        results=results,
        paired=paired,
        candidate_recall=recall / n,
        mean_candidates=n_cand_total / n,
        random_hit=random_hit / n,
        repeat=repeat,
        viewed_before=viewed / n,
        seconds=time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------- report
def _ci(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def render_markdown(report: EvaluationReport) -> str:
    """The report as markdown tables: the four methods, the ablations, paired comparisons."""
    k = report.k
    lines = [
        f"Request: {report.variant}; {report.results['full'].n} held-out purchases; "
        f"candidates: top {report.n_candidates} by cosine (mean {report.mean_candidates:.0f}); "
        f"held-out product among the candidates in {report.candidate_recall:.1%} of cases; "
        f"random order of the candidates would give hit@{k} ≈ {report.random_hit:.3f}; "
        f"the held-out product was a repeat purchase in {report.repeat_purchases:.1%} of cases "
        f"and had been viewed by the customer before in {report.viewed_before:.1%}.",
        "",
        f"| method | hit@{k} | 95% CI | NDCG@{k} | 95% CI | n |",
        "| --- | ---: | --- | ---: | --- | ---: |",
    ]
    for name, desc in METHODS.items():
        r = report.results[name]
        lines.append(
            f"| {desc} | {r.hit:.3f} | {_ci(r.hit_ci)} | {r.ndcg:.3f} | {_ci(r.ndcg_ci)} | {r.n} |"
        )
    extra = [name for name in ABLATIONS if name in report.results]
    if extra:
        lines += [
            "",
            f"| ablation | hit@{k} | 95% CI | NDCG@{k} | 95% CI | n |",
            "| --- | ---: | --- | ---: | --- | ---: |",
        ]
        for name in extra:
            r = report.results[name]
            lines.append(
                f"| {name}: {ABLATIONS[name]} | {r.hit:.3f} | {_ci(r.hit_ci)} | {r.ndcg:.3f} "
                f"| {_ci(r.ndcg_ci)} | {r.n} |"
            )
    lines += [
        "",
        f"| method | first-time purchases: hit@{k} | NDCG@{k} | n "
        f"| repeat purchases: hit@{k} | NDCG@{k} | n |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in [*METHODS, *(["full - owned"] if "full - owned" in report.ranks else [])]:
        h0, g0, n0 = report.subset(name, repeat=False)
        h1, g1, n1 = report.subset(name, repeat=True)
        lines.append(f"| {name} | {h0:.3f} | {g0:.3f} | {n0} | {h1:.3f} | {g1:.3f} | {n1} |")
    lines += [
        "",
        f"| full (d) vs | d higher | d lower | tie | sign test p | ΔNDCG@{k} | 95% CI |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for p in report.paired:
        lines.append(
            f"| {p.b} | {p.wins} | {p.losses} | {p.ties} | {p.p_value:.2g} "
            f"| {p.ndcg_diff:+.3f} | {_ci(p.ndcg_diff_ci)} |"
        )
    return "\n".join(lines)
