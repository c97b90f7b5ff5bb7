"""Bias audit (``tailor audit``): what each demographic group is shown, and how well.

For every customer (or a seeded sample) the real :class:`~tailor.recommend.service.Recommender`
answers a fixed query set — one "for you" request (no criteria: the shopper's own history
chooses) and one request per department of the catalog, for that department's most-stocked
product type ("running shoes", with the category filter the bot would set). What it suggests
is measured per group of three dimensions — age band, gender, country:

* **exposure**: share of suggestions at each price level (quintile of the product's price
  position within its own category, :class:`~tailor.recommend.personal.PricePositions`:
  level 1 = cheapest fifth), mean price position, distinct-product coverage (rarefied to the
  same number of suggestions, so group size does not decide it), concentration (Gini of
  product exposure and top-10 share: descriptive, as they depend on group size), and the
  department mix of the "for you" answers (where the ranking, not a filter, chooses the
  department) with its Jensen-Shannon divergence from the overall mix;
* **quality**: hit rate@k and NDCG@k of the held-out last purchase, from the time-split
  offline evaluation of :mod:`tailor.recommend.evaluation` (full personalisation, and the
  anonymous ranker as a baseline that cannot see who is asking).

**Disparity** of a metric for a group is its relative difference from the rest of the
customers, ``(group − rest) / rest``. It is flagged when it is above the threshold *and*
unlikely to be noise: the bootstrap interval (customers resampled within the group and within
the rest, seeded) excludes zero; for the price-level distribution a chi-square test of
group × level must also be significant; coverage (a bootstrap would bias it) and the
department mix (by total-variation distance) are checked with permutation p-values instead
(group labels shuffled across customers). Levels are
Bonferroni-corrected per dimension: 0.05 / m, m = that dimension's groups large enough to
flag (so 97.5% intervals for two genders). Groups smaller than ``min_group`` customers are
reported but never flagged.

Nothing is written to the database. The module does no heavy work at import.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from tailor.recommend.criteria import Criteria
from tailor.recommend.evaluation import (
    SearchLike,
    evaluate,
    hit_at,
    leaf_query,
    load_eval_data,
    ndcg_at,
    prepare,
)
from tailor.recommend.signals import (
    ProtectedPolicy,
    SignalBuilder,
    gender_segment,
    segment_tables,
)

__all__ = [
    "DIMENSIONS",
    "AuditQuery",
    "AuditReport",
    "AuditRun",
    "CustomerExposure",
    "Disparity",
    "GroupRow",
    "audit_queries",
    "bootstrap_ci",
    "chi_square",
    "gini",
    "js_divergence",
    "permutation_p",
    "price_level",
    "rarefied_richness",
    "relative_difference",
    "render_markdown",
    "run_audit",
    "top_share",
    "total_variation",
]

#: Demographic dimensions the audit groups customers by (Customer column → label).
DIMENSIONS: dict[str, str] = {"age_band": "age band", "gender": "gender", "country": "country"}
#: Number of price levels (quintiles of the price position within the category).
PRICE_LEVELS = 5
#: Label of customers whose attribute is missing.
NOT_GIVEN = "not given"
#: Significance level of the statistical checks.
ALPHA = 0.05
#: Metrics checked by a permutation test (the rest by bootstrap intervals).
PERMUTATION_METRICS = frozenset({"department mix", "coverage (distinct per suggestion)"})


# --------------------------------------------------------------------------- pure metrics
def price_level(position: float) -> int:
    """Price level 1 (cheapest fifth of the category) … 5 (dearest fifth) of a position in
    [0, 1]."""
    if not 0.0 <= position <= 1.0 or math.isnan(position):
        raise ValueError(f"price position must be in [0, 1], got {position}")
    return min(PRICE_LEVELS, int(position * PRICE_LEVELS) + 1)


def gini(counts: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of non-negative ``counts`` (0 = all equal; → 1 = one item has all).

    Zero or empty input gives 0.0.
    """
    x = np.sort(np.asarray(counts, dtype=np.float64))
    if x.size and x[0] < 0:
        raise ValueError("gini needs non-negative counts")
    n, total = x.size, float(x.sum())
    if n == 0 or total <= 0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(2.0 * (ranks @ x) / (n * total) - (n + 1) / n)


def top_share(counts: Sequence[float] | np.ndarray, k: int = 10) -> float:
    """Share of the total held by the ``k`` largest counts (0.0 for an empty total)."""
    x = np.asarray(counts, dtype=np.float64)
    total = float(x.sum())
    if total <= 0:
        return 0.0
    return float(np.sort(x)[::-1][:k].sum() / total)


def rarefied_richness(counts: Sequence[int] | np.ndarray, n: int) -> float:
    """Expected number of distinct items in ``n`` draws without replacement from the
    suggestions behind ``counts`` (Hurlbert's rarefaction): coverage at an equal sample size.
    """
    x = np.asarray(counts, dtype=np.int64)
    x = x[x > 0]
    total = int(x.sum())
    if n < 0 or n > total:
        raise ValueError(f"n must be between 0 and the total count {total}, got {n}")
    if n == 0:
        return 0.0
    # P(item i missed) = C(N - N_i, n) / C(N, n), in log space.
    from scipy.special import gammaln

    rest = (total - x).astype(np.float64)
    safe = np.maximum(rest - n, 0.0)
    log_miss = np.where(
        rest >= n,
        gammaln(rest + 1) - gammaln(safe + 1) - gammaln(total + 1) + gammaln(total - n + 1),
        -np.inf,
    )
    return float(np.sum(1.0 - np.exp(log_miss)))


def _dist(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    total = float(x.sum())
    if x.size == 0 or total <= 0 or (x < 0).any():
        raise ValueError("a distribution needs non-negative values with a positive sum")
    return x / total


def js_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two distributions (normalised here)."""
    a, b = _dist(p), _dist(q)
    if a.shape != b.shape:
        raise ValueError(f"distributions differ in length: {a.size} and {b.size}")
    m = (a + b) / 2

    def kl(u: np.ndarray) -> float:
        nz = u > 0
        return float(np.sum(u[nz] * np.log2(u[nz] / m[nz])))

    return max(0.0, 0.5 * kl(a) + 0.5 * kl(b))


def total_variation(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Total-variation distance (half the L1 distance) of two distributions (normalised)."""
    a, b = _dist(p), _dist(q)
    if a.shape != b.shape:
        raise ValueError(f"distributions differ in length: {a.size} and {b.size}")
    return float(0.5 * np.abs(a - b).sum())


def chi_square(table: Sequence[Sequence[float]] | np.ndarray) -> tuple[float, int, float]:
    """Pearson chi-square test of independence of a contingency table (no continuity
    correction); all-zero rows and columns are dropped. ``(statistic, dof, p-value)``."""
    from scipy.stats import chi2

    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2 or (t < 0).any():
        raise ValueError("chi_square needs a 2-D table of non-negative counts")
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if t.shape[0] < 2 or t.shape[1] < 2:
        return 0.0, 0, 1.0
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / t.sum()
    stat = float(((t - expected) ** 2 / expected).sum())
    dof = (t.shape[0] - 1) * (t.shape[1] - 1)
    return stat, dof, float(chi2.sf(stat, dof))


def relative_difference(group: float, rest: float) -> float | None:
    """``(group − rest) / rest``; None when both are 0, ±inf when only ``rest`` is."""
    if rest == 0:
        return None if group == 0 else math.copysign(math.inf, group)
    return (group - rest) / abs(rest)


def bootstrap_ci(
    stat: Callable[[np.ndarray, np.ndarray], float | None],
    n_group: int,
    n_rest: int,
    n_boot: int = 1000,
    seed: int = 42,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``stat(group weights, rest weights)``.

    Each replicate resamples the group's ``n_group`` units and the rest's ``n_rest`` units
    with replacement (weights = how often each unit was drawn), so a statistic of customers'
    summed suggestions is resampled by customer. Replicates where ``stat`` is None or NaN are
    dropped (±inf is kept: a share the rest never got); None when fewer than half remain.
    The bounds are order statistics of the replicates (no interpolation).
    """
    if n_group < 1 or n_rest < 1:
        return None
    rng = np.random.default_rng(seed)
    values: list[float] = []
    for _ in range(n_boot):
        wg = np.bincount(rng.integers(0, n_group, n_group), minlength=n_group).astype(float)
        wr = np.bincount(rng.integers(0, n_rest, n_rest), minlength=n_rest).astype(float)
        v = stat(wg, wr)
        if v is not None and not math.isnan(v):
            values.append(v)
    if not values or len(values) < n_boot / 2:
        return None
    values.sort()
    tail = (1 - level) / 2
    lo = values[min(len(values) - 1, math.floor(tail * len(values)))]
    hi = values[max(0, math.ceil((1 - tail) * len(values)) - 1)]
    return float(lo), float(hi)


def permutation_p(
    stat: Callable[[np.ndarray], float],
    labels: np.ndarray,
    n_perm: int = 1000,
    seed: int = 42,
) -> float:
    """One-sided permutation p-value of ``stat(labels)`` (a boolean group mask) against the
    same statistic with the labels shuffled: ``(1 + #{perm ≥ observed}) / (1 + n_perm)``."""
    rng = np.random.default_rng(seed)
    observed = stat(labels)
    perm = labels.copy()
    ge = 0
    for _ in range(n_perm):
        rng.shuffle(perm)
        ge += stat(perm) >= observed - 1e-12
    return (1 + ge) / (1 + n_perm)


# --------------------------------------------------------------------------- queries
@dataclass(frozen=True)
class AuditQuery:
    """One request of the fixed query set."""

    label: str
    criteria: Criteria


def audit_queries(
    leaf_counts: Mapping[str, int], departments: int | None = None
) -> list[AuditQuery]:
    """The fixed query set: "for you", then per department (top of the category path) its
    most-stocked leaf as a product-type request with the category filter the bot would set
    (ties by path; departments ordered by name; ``departments`` keeps the largest ones)."""
    if not leaf_counts:
        raise ValueError("the catalog has no categories: nothing to ask for")
    best: dict[str, tuple[int, str]] = {}
    for path, count in leaf_counts.items():
        top = path.split(" > ")[0]
        cand = (-int(count), path)
        if top not in best or cand < best[top]:
            best[top] = cand
    tops = sorted(best)
    if departments is not None:
        if departments < 0:
            raise ValueError(f"departments must be 0 or more, got {departments}")
        tops = sorted(sorted(best, key=lambda t: (best[t][0], t))[:departments])
    out = [AuditQuery("for you", Criteria())]
    for top in tops:
        path = best[top][1]
        out.append(
            AuditQuery(leaf_query(path), Criteria(product_type=leaf_query(path), category=path))
        )
    return out


# --------------------------------------------------------------------------- exposure
@dataclass
class CustomerExposure:
    """What one customer was shown over the query set, summed."""

    customer_id: int
    groups: dict[str, str]
    suggestions: int = 0
    levels: list[int] = field(default_factory=lambda: [0] * PRICE_LEVELS)
    position_sum: float = 0.0
    positioned: int = 0
    departments: Counter[str] = field(default_factory=Counter)
    products: Counter[int] = field(default_factory=Counter)


def _demographics(session_factory: Any, ids: Sequence[int] | None) -> dict[int, dict[str, str]]:
    from sqlalchemy import select

    from tailor.store.models import Customer

    stmt = select(Customer.id, Customer.age_band, Customer.gender, Customer.country)
    if ids is not None:
        stmt = stmt.where(Customer.id.in_(list(ids)))
    with session_factory() as session:
        rows = session.execute(stmt.order_by(Customer.id)).all()
    return {
        int(cid): {
            "age_band": (age or "").strip() or NOT_GIVEN,
            "gender": (gender or "").strip().lower() or NOT_GIVEN,
            "country": (country or "").strip() or NOT_GIVEN,
        }
        for cid, age, gender, country in rows
    }


def collect_exposure(
    recommender: Any,
    customers: Mapping[int, dict[str, str]],
    queries: Sequence[AuditQuery],
    progress: bool = False,
    label: str = "",
) -> list[CustomerExposure]:
    """Ask every query as every customer (signed in, no conversation yet) and sum what the
    recommender suggests. ``recommender`` is a :class:`Recommender` (read-only use)."""
    prices = recommender.signals.prices
    out: list[CustomerExposure] = []
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=len(customers),
            desc=f"suggestions {label}".strip(),
            unit="customer",
            file=sys.stderr,
        )
    for cid, groups in customers.items():
        shopper = recommender.shopper(None, customer_id=cid)
        row = CustomerExposure(cid, dict(groups))
        for q in queries:
            rec = recommender.recommend(q.criteria, shopper=shopper)
            for s in rec.suggestions:
                row.suggestions += 1
                row.products[s.product_id] += 1
                if q.criteria.category is None:  # the ranking, not a filter, chose it
                    row.departments[s.category.split(" > ")[0]] += 1
                pos = prices.position(s.category, s.price)
                if pos is not None:
                    row.levels[price_level(pos) - 1] += 1
                    row.position_sum += pos
                    row.positioned += 1
        out.append(row)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class GroupRow:
    """Descriptive metrics of one group (or of everyone, ``group == "all"``)."""

    dimension: str
    group: str
    customers: int
    suggestions: int
    level_shares: list[float]
    mean_position: float | None
    coverage: float | None
    coverage_at: int
    gini: float
    top10_share: float
    department_jsd: float | None
    quality_cases: int
    hit: float | None
    ndcg: float | None
    baseline_hit: float | None


@dataclass(frozen=True)
class Disparity:
    """One metric of one group against the rest, with its statistical check."""

    dimension: str
    group: str
    metric: str
    group_value: float | None
    rest_value: float | None
    #: Relative difference (group − rest) / rest; for "department mix" the total-variation
    #: distance between the group's and the rest's mix.
    difference: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    customers: int
    flagged: bool
    note: str = ""


@dataclass
class AuditRun:
    """The audit under one protected-attribute policy."""

    policy: str
    use_protected: bool
    customers: int
    suggestions: int
    quality_cases: int
    rows: list[GroupRow]
    disparities: list[Disparity]
    seconds: float

    @property
    def flags(self) -> list[Disparity]:
        """The flagged disparities."""
        return [d for d in self.disparities if d.flagged]


@dataclass
class AuditReport:
    """Everything ``tailor audit`` found, with how it was run."""

    threshold: float
    min_group: int
    k: int
    n_boot: int
    seed: int
    queries: list[str]
    runs: list[AuditRun]
    command: str = "tailor audit"

    @property
    def flagged(self) -> bool:
        """Whether the first (configured) run has a flag: ``tailor audit`` exits with 1."""
        return bool(self.runs and self.runs[0].flags)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (infinities as strings)."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [clean(x) for x in v]
            return v

        data = clean(asdict(self))
        for run, out in zip(self.runs, data["runs"], strict=True):
            out["flags"] = len(run.flags)
        data["flagged"] = self.flagged
        return data


# --------------------------------------------------------------------------- analysis
def _ratio(w: np.ndarray, num: np.ndarray, den: np.ndarray) -> float | None:
    d = float(w @ den)
    return float(w @ num) / d if d > 0 else None


def _rel(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return relative_difference(a, b)


class _Analysis:
    """Group metrics and disparities of one run's exposure and quality data."""

    def __init__(
        self,
        exposure: Sequence[CustomerExposure],
        quality: Mapping[int, tuple[float, float, float]],
        threshold: float,
        min_group: int,
        n_boot: int,
        seed: int,
    ) -> None:
        from scipy.sparse import csr_matrix

        self.rows_in = list(exposure)
        self.threshold = threshold
        self.min_group = min_group
        self.n_boot = n_boot
        self.seed = seed
        n = len(self.rows_in)
        self.levels = np.array([r.levels for r in self.rows_in], dtype=np.float64).reshape(
            n, PRICE_LEVELS
        )
        self.pos_sum = np.array([r.position_sum for r in self.rows_in], dtype=np.float64)
        self.pos_n = np.array([r.positioned for r in self.rows_in], dtype=np.float64)
        self.count = np.array([r.suggestions for r in self.rows_in], dtype=np.float64)
        self.dept_names = sorted({d for r in self.rows_in for d in r.departments})
        self.dept = np.array(
            [[r.departments.get(d, 0) for d in self.dept_names] for r in self.rows_in],
            dtype=np.float64,
        ).reshape(n, len(self.dept_names))
        self.product_ids = sorted({p for r in self.rows_in for p in r.products})
        col = {p: i for i, p in enumerate(self.product_ids)}
        data, ri, ci = [], [], []
        for i, r in enumerate(self.rows_in):
            for p, c in r.products.items():
                data.append(float(c))
                ri.append(i)
                ci.append(col[p])
        self.products = csr_matrix((data, (ri, ci)), shape=(n, max(1, len(self.product_ids))))
        self.quality = quality
        self._splits: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        #: Significance level of the current dimension (Bonferroni over its groups).
        self.alpha = ALPHA
        self.hit = np.array([quality.get(r.customer_id, (math.nan,) * 3)[0] for r in self.rows_in])
        self.ndcg = np.array([quality.get(r.customer_id, (math.nan,) * 3)[1] for r in self.rows_in])
        self.base = np.array([quality.get(r.customer_id, (math.nan,) * 3)[2] for r in self.rows_in])

    # -- descriptive ----------------------------------------------------------------
    def _product_totals(self, w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.products[idx].T @ w).ravel()

    def row(self, dimension: str, group: str, mask: np.ndarray, coverage_at: int) -> GroupRow:
        idx = np.flatnonzero(mask)
        w = np.ones(idx.size)
        lv = self.levels[idx].sum(axis=0)
        totals = self._product_totals(w, idx)
        dept = self.dept[idx].sum(axis=0)
        overall = self.dept.sum(axis=0)
        hits = self.hit[idx][~np.isnan(self.hit[idx])]
        gains = self.ndcg[idx][~np.isnan(self.ndcg[idx])]
        base = self.base[idx][~np.isnan(self.base[idx])]
        n_sugg = int(self.count[idx].sum())
        return GroupRow(
            dimension=dimension,
            group=group,
            customers=int(idx.size),
            suggestions=n_sugg,
            level_shares=[float(v / lv.sum()) if lv.sum() else 0.0 for v in lv],
            mean_position=_ratio(w, self.pos_sum[idx], self.pos_n[idx]),
            coverage=rarefied_richness(totals, coverage_at)
            if 0 < coverage_at <= totals.sum()
            else None,
            coverage_at=coverage_at,
            gini=gini(totals[totals > 0]),
            top10_share=top_share(totals, 10),
            department_jsd=js_divergence(dept, overall) if dept.sum() and overall.sum() else None,
            quality_cases=int(hits.size),
            hit=float(hits.mean()) if hits.size else None,
            ndcg=float(gains.mean()) if gains.size else None,
            baseline_hit=float(base.mean()) if base.size else None,
        )

    # -- disparities ----------------------------------------------------------------
    def _scalar(
        self,
        dimension: str,
        group: str,
        metric: str,
        mask: np.ndarray,
        value: Callable[[np.ndarray, np.ndarray], float | None],
        extra_ok: bool = True,
        seed_offset: int = 0,
    ) -> Disparity:
        gi, ri = self._split(mask)
        g = value(np.ones(gi.size), gi) if gi.size else None
        r = value(np.ones(ri.size), ri) if ri.size else None
        diff = _rel(g, r)

        def stat(wg: np.ndarray, wr: np.ndarray) -> float | None:
            return _rel(value(wg, gi), value(wr, ri))

        ci = bootstrap_ci(
            stat, gi.size, ri.size, self.n_boot, self.seed + seed_offset, 1 - self.alpha
        )
        return self._disparity(dimension, group, metric, g, r, diff, ci, None, gi.size, extra_ok)

    def _disparity(
        self,
        dimension: str,
        group: str,
        metric: str,
        g: float | None,
        r: float | None,
        diff: float | None,
        ci: tuple[float, float] | None,
        p: float | None,
        n: int,
        extra_ok: bool,
    ) -> Disparity:
        note = ""
        flagged = False
        if n < self.min_group:
            note = f"fewer than {self.min_group} customers: not flagged"
        elif diff is None:
            note = "no data"
        elif abs(diff) > self.threshold:
            tested = metric in PERMUTATION_METRICS
            noise = False if tested else ci is None or ci[0] <= 0 <= ci[1]
            if noise:
                note = "above threshold, but the interval includes no difference"
            elif not extra_ok:
                note = f"above threshold, but the test gives p ≥ {self.alpha:.3g}"
            else:
                flagged = True
        return Disparity(dimension, group, metric, g, r, diff, ci, p, n, flagged, note)

    def _split(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of the group and of the rest (the same arrays for the same mask)."""
        key = mask.tobytes()
        if key not in self._splits:
            self._splits = {key: (np.flatnonzero(mask), np.flatnonzero(~mask))}
        return self._splits[key]

    def disparities(self, dimension: str, group: str, mask: np.ndarray) -> list[Disparity]:
        out: list[Disparity] = []
        gi, ri = self._split(mask)
        # Price levels: the distribution (chi-square) and each level's share.
        table = np.vstack([self.levels[gi].sum(axis=0), self.levels[ri].sum(axis=0)])
        _, _, p_levels = chi_square(table)
        level_rows = []
        for q in range(PRICE_LEVELS):

            def share(w: np.ndarray, idx: np.ndarray, q: int = q) -> float | None:
                return _ratio(w, self.levels[idx, q], self.levels[idx].sum(axis=1))

            d = self._scalar(
                dimension,
                group,
                f"price level {q + 1} share",
                mask,
                share,
                p_levels < self.alpha,
                q,
            )
            level_rows.append(replace(d, p_value=p_levels))
        out.extend(level_rows)
        out.append(
            self._scalar(
                dimension,
                group,
                "mean price position",
                mask,
                lambda w, idx: _ratio(w, self.pos_sum[idx], self.pos_n[idx]),
                seed_offset=10,
            )
        )
        # Coverage: distinct products per suggestion, rarefied to the smaller side's count.
        # A bootstrap would be biased here (a customer drawn twice adds no new product), so
        # the check is a permutation test: group labels shuffled across customers.
        if gi.size and ri.size:
            n_at = int(min(self.count[gi].sum(), self.count[ri].sum()))
            by_product = self.products.T.tocsr()

            def coverage(labels: np.ndarray) -> float | None:
                a = np.asarray(by_product @ labels.astype(np.float64)).ravel()
                b = np.asarray(by_product @ (~labels).astype(np.float64)).ravel()
                m = int(min(n_at, a.sum(), b.sum()))
                if m <= 0:
                    return None
                return _rel(rarefied_richness(a, m) / m, rarefied_richness(b, m) / m)

            diff = coverage(mask)
            p_cov = permutation_p(
                lambda labels: abs(coverage(labels) or 0.0),
                mask.copy(),
                n_perm=self.n_boot,
                seed=self.seed + 11,
            )
            m = int(min(n_at, self.count[gi].sum(), self.count[ri].sum()))
            g_cov = rarefied_richness(self._product_totals(np.ones(gi.size), gi), m) / m
            r_cov = rarefied_richness(self._product_totals(np.ones(ri.size), ri), m) / m
            out.append(
                self._disparity(
                    dimension,
                    group,
                    "coverage (distinct per suggestion)",
                    g_cov,
                    r_cov,
                    diff,
                    None,
                    p_cov,
                    int(gi.size),
                    p_cov < self.alpha,
                )
            )
        # Department mix: total-variation distance group vs rest, permutation test.
        if self.dept.size and gi.size and ri.size and self.dept[gi].sum() and self.dept[ri].sum():

            def tvd(labels: np.ndarray) -> float:
                a, b = self.dept[labels].sum(axis=0), self.dept[~labels].sum(axis=0)
                if not a.sum() or not b.sum():
                    return 0.0
                return total_variation(a, b)

            observed = tvd(mask)
            p = permutation_p(tvd, mask.copy(), n_perm=self.n_boot, seed=self.seed + 12)
            out.append(
                self._disparity(
                    dimension,
                    group,
                    "department mix",
                    None,
                    None,
                    observed,
                    None,
                    p,
                    gi.size,
                    p < self.alpha,
                )
            )
        # Quality: hit rate and NDCG of the held-out purchase (customers with a case).
        qg = gi[~np.isnan(self.hit[gi])]
        qr = ri[~np.isnan(self.hit[ri])]
        for metric, arr, off in (("hit rate", self.hit, 13), ("NDCG", self.ndcg, 14)):
            if not qg.size or not qr.size:
                continue
            g, r = float(arr[qg].mean()), float(arr[qr].mean())

            def stat(wg: np.ndarray, wr: np.ndarray, arr: np.ndarray = arr) -> float | None:
                return _rel(float(wg @ arr[qg]) / wg.sum(), float(wr @ arr[qr]) / wr.sum())

            ci = bootstrap_ci(stat, qg.size, qr.size, self.n_boot, self.seed + off, 1 - self.alpha)
            out.append(
                self._disparity(
                    dimension, group, metric, g, r, _rel(g, r), ci, None, int(qg.size), True
                )
            )
        return out


def _analyse(
    exposure: Sequence[CustomerExposure],
    quality: Mapping[int, tuple[float, float, float]],
    threshold: float,
    min_group: int,
    n_boot: int,
    seed: int,
) -> tuple[list[GroupRow], list[Disparity]]:
    a = _Analysis(exposure, quality, threshold, min_group, n_boot, seed)
    n = len(a.rows_in)
    everyone = np.ones(n, dtype=bool)
    rows: list[GroupRow] = []
    disparities: list[Disparity] = []
    sizes = Counter[tuple[str, str]]()
    for r in a.rows_in:
        for dim in DIMENSIONS:
            sizes[(dim, r.groups[dim])] += 1
    smallest = min(
        (int(a.count[np.array([r.groups[d] == g for r in a.rows_in])].sum()) for (d, g) in sizes),
        default=0,
    )
    rows.append(a.row("all", "all", everyone, smallest))
    for dim in DIMENSIONS:
        groups = sorted({r.groups[dim] for r in a.rows_in})
        eligible = sum(1 for g in groups if sizes[(dim, g)] >= min_group)
        a.alpha = ALPHA / max(1, eligible)
        for group in groups:
            mask = np.array([r.groups[dim] == group for r in a.rows_in], dtype=bool)
            rows.append(a.row(dim, group, mask, smallest))
            if mask.all():
                continue
            disparities.extend(a.disparities(dim, group, mask))
    return rows, disparities


# --------------------------------------------------------------------------- quality
def _quality(
    recommender: Any,
    policy: ProtectedPolicy,
    customers: Sequence[int],
    k: int,
    progress: bool,
    data: Any,
) -> dict[int, tuple[float, float, float]]:
    """Per customer with a held-out purchase: (hit@k, NDCG@k) of full personalisation and
    hit@k of the anonymous ranker, from the time-split evaluation under ``policy``."""
    prep = prepare(data)
    wanted = set(customers)
    if "gender" in policy.ranking_kinds:
        genders = _genders(recommender.session_factory)
        for cid, segs in prep.segments.items():
            name = gender_segment(genders.get(cid))
            if name is not None:
                segs["gender"] = name
    purchases = [
        (ev.customer_id, data.products[ev.product_id].category, data.products[ev.product_id].brand)
        for ev in prep.split.training
        if ev.kind == "purchase" and ev.product_id in data.products
    ]
    prep.tables = segment_tables(purchases, prep.segments, policy.ranking_kinds)
    cases = [
        c for c in prep.split.cases if c.customer_id in wanted and c.product_id in data.products
    ]
    if not cases:
        return {}
    prep.split = replace(prep.split, cases=cases)
    search: SearchLike = recommender.search
    report = evaluate(
        prep,
        search,
        filtered=True,
        k=k,
        weights=recommender.weights,
        ablations=False,
        n_boot=10,
        progress=progress,
    )
    out: dict[int, tuple[float, float, float]] = {}
    for case, full, anon in zip(
        cases, report.ranks["full"], report.ranks["retrieval"], strict=True
    ):
        out[case.customer_id] = (hit_at(full, k), ndcg_at(full, k), hit_at(anon, k))
    return out


def _genders(session_factory: Any) -> dict[int, str | None]:
    from sqlalchemy import select

    from tailor.store.models import Customer

    with session_factory() as session:
        return {int(c): g for c, g in session.execute(select(Customer.id, Customer.gender))}


def _leaf_counts(session_factory: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from tailor.store.models import Product

    with session_factory() as session:
        return {
            str(c): int(n)
            for c, n in session.execute(
                select(Product.category, func.count()).group_by(Product.category)
            )
        }


# --------------------------------------------------------------------------- driver
def run_audit(
    recommender: Any,
    policies: Sequence[ProtectedPolicy],
    customers: int | Sequence[int] | None = None,
    threshold: float = 0.2,
    departments: int | None = None,
    k: int = 10,
    min_group: int = 10,
    n_boot: int = 1000,
    seed: int = 42,
    quality: bool = True,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> AuditReport:
    """Audit ``recommender`` (a :class:`Recommender`) once per policy (see the module doc).

    ``customers``: all (None), a seeded sample of that many, or explicit ids. The recommender
    is used as is, except that its signal builder is swapped per policy (and restored).
    """
    if not policies:
        raise ValueError("give at least one protected-attribute policy to audit")
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    if min_group < 1:
        raise ValueError(f"min_group must be at least 1, got {min_group}")
    say = log or (lambda _msg: None)
    factory = recommender.session_factory
    if customers is None or isinstance(customers, int):
        everyone = _demographics(factory, None)
        if not everyone:
            raise ValueError("no customers in this database (load the demo with `tailor demo`)")
        ids = sorted(everyone)
        if isinstance(customers, int):
            if customers < 1:
                raise ValueError(f"customers must be at least 1, got {customers}")
            ids = sorted(random.Random(seed).sample(ids, min(customers, len(ids))))
        demo = {cid: everyone[cid] for cid in ids}
    else:
        demo = _demographics(factory, list(customers))
        missing = sorted(set(customers) - set(demo))
        if missing:
            raise ValueError(f"unknown customer id(s) {missing[:10]}")
    queries = audit_queries(_leaf_counts(factory), departments)
    say(
        f"Auditing {len(demo)} customers × {len(queries)} requests: "
        + ", ".join(q.label for q in queries)
    )
    data = load_eval_data(factory) if quality else None
    original = recommender.signals
    runs: list[AuditRun] = []
    try:
        for policy in policies:
            t0 = time.perf_counter()
            say(policy.describe())
            recommender.signals = SignalBuilder(
                factory,
                session_minutes=getattr(original, "session_minutes", 60),
                protected=policy,
            )
            label = "(protected used)" if policy.use_in_ranking else "(protected excluded)"
            exposure = collect_exposure(recommender, demo, queries, progress, label)
            q = _quality(recommender, policy, list(demo), k, progress, data) if data else {}
            rows, disp = _analyse(exposure, q, threshold, min_group, n_boot, seed)
            runs.append(
                AuditRun(
                    policy=policy.describe(),
                    use_protected=policy.use_in_ranking,
                    customers=len(exposure),
                    suggestions=sum(r.suggestions for r in exposure),
                    quality_cases=len(q),
                    rows=rows,
                    disparities=disp,
                    seconds=time.perf_counter() - t0,
                )
            )
            say(f"  {len(runs[-1].flags)} flag(s) in {runs[-1].seconds:.0f} s")
    finally:
        recommender.signals = original
    return AuditReport(
        threshold=threshold,
        min_group=min_group,
        k=k,
        n_boot=n_boot,
        seed=seed,
        queries=[q.label for q in queries],
        runs=runs,
    )


# --------------------------------------------------------------------------- report
def _f(v: float | None, fmt: str = ".3f") -> str:
    if v is None:
        return "–"
    if not math.isfinite(v):
        return "∞" if v > 0 else "−∞"
    return format(v, fmt)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:+.0%}" if math.isfinite(v) else ("+∞" if v > 0 else "−∞")


def _group_table(run: AuditRun, k: int) -> list[str]:
    lines = [
        "| dimension | group | customers | suggestions | L1 | L2 | L3 | L4 | L5 "
        f"| mean price pos. | distinct @{run.rows[0].coverage_at if run.rows else 0} | Gini "
        f"| top-10 share | dept. JSD | held-out | hit@{k} | NDCG@{k} | anon. hit@{k} |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in run.rows:
        shares = " | ".join(f"{s:.0%}" for s in r.level_shares)
        lines.append(
            f"| {DIMENSIONS.get(r.dimension, r.dimension)} | {r.group} | {r.customers} "
            f"| {r.suggestions} | {shares} | {_f(r.mean_position)} | {_f(r.coverage, '.0f')} "
            f"| {_f(r.gini)} | {_f(r.top10_share)} | {_f(r.department_jsd)} | {r.quality_cases} "
            f"| {_f(r.hit)} | {_f(r.ndcg)} | {_f(r.baseline_hit)} |"
        )
    return lines


def _order(d: Disparity, min_group: int) -> tuple[bool, bool, float]:
    return (d.flagged, d.customers >= min_group, abs(d.difference or 0.0))


def _largest(run: AuditRun, min_group: int) -> dict[tuple[str, str], Disparity]:
    """Per (dimension, metric): the disparity with the largest magnitude, among groups large
    enough to flag if there are any (flagged ones first)."""
    best: dict[tuple[str, str], Disparity] = {}
    for d in run.disparities:
        if d.difference is None:
            continue
        key = (d.dimension, d.metric)
        cur = best.get(key)
        if cur is None or _order(d, min_group) > _order(cur, min_group):
            best[key] = d
    return best


def _disparity_table(run: AuditRun, min_group: int) -> list[str]:
    lines = [
        "| dimension | metric | largest: group | group | rest | difference | 95% CI | p | flag |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for (dim, metric), d in sorted(_largest(run, min_group).items()):
        ci = f"[{_pct(d.ci[0])}, {_pct(d.ci[1])}]" if d.ci else "–"
        diff = _f(d.difference) + " TVD" if metric == "department mix" else _pct(d.difference)
        flag = "**FLAG**" if d.flagged else (d.note or "")
        lines.append(
            f"| {DIMENSIONS.get(dim, dim)} | {metric} | {d.group} ({d.customers}) "
            f"| {_f(d.group_value)} | {_f(d.rest_value)} | {diff} | {ci} "
            f"| {_f(d.p_value, '.3g')} | {flag} |"
        )
    return lines


def render_markdown(report: AuditReport) -> str:
    """The audit as markdown: summary, flags, tables per run, comparison, method, re-run."""
    lines = [
        "# Bias audit",
        "",
        f"Generated by `{report.command}`. Threshold {report.threshold:.0%} relative difference "
        f"(department mix: {report.threshold:.2f} total-variation distance); groups under "
        f"{report.min_group} customers are never flagged; {report.n_boot} bootstrap / "
        f"permutation replicates, seed {report.seed}.",
        "",
        "Requests asked as every audited customer: "
        + ", ".join(f"“{q}”" for q in report.queries)
        + ".",
        "",
    ]
    for run in report.runs:
        lines += [
            f"## {run.policy}",
            "",
            f"{run.customers} customers, {run.suggestions} suggestions, {run.quality_cases} "
            f"held-out purchases; {len(run.flags)} flag(s); {run.seconds:.0f} s.",
            "",
        ]
        if run.flags:
            lines += ["Flags:", ""]
            for d in run.flags:
                diff = (
                    f"TVD {d.difference:.2f}, p = {d.p_value:.3g}"
                    if d.metric == "department mix"
                    else f"{_pct(d.difference)} vs the rest"
                )
                lines.append(
                    f"- {DIMENSIONS.get(d.dimension, d.dimension)} **{d.group}** "
                    f"({d.customers} customers): {d.metric} {diff}"
                )
            lines.append("")
        lines += [
            "### Largest disparity per metric",
            "",
            *_disparity_table(run, report.min_group),
            "",
        ]
        lines += ["### Groups", "", *_group_table(run, report.k), ""]
    if len(report.runs) == 2:
        a, b = report.runs
        la, lb = _largest(a, report.min_group), _largest(b, report.min_group)
        lines += [
            "## What using protected attributes changes",
            "",
            f"Largest disparity per dimension and metric, {a.policy} → {b.policy}.",
            "",
            "| dimension | metric | first run | second run | flag first → second |",
            "| --- | --- | ---: | ---: | --- |",
        ]
        for key in sorted(set(la) | set(lb)):
            da, db = la.get(key), lb.get(key)

            def show(d: Disparity | None) -> str:
                if d is None:
                    return "–"
                if d.metric == "department mix":
                    return f"{_f(d.difference)} ({d.group})"
                return f"{_pct(d.difference)} ({d.group})"

            fa = "flag" if da and da.flagged else "–"
            fb = "flag" if db and db.flagged else "–"
            lines.append(
                f"| {DIMENSIONS.get(key[0], key[0])} | {key[1]} | {show(da)} | {show(db)} "
                f"| {fa} → {fb} |"
            )
        lines.append("")
    lines += [
        "## Method",
        "",
        "- **Who**: every demo customer (or a seeded sample), signed in, at the start of a "
        "conversation (no session signals), through the real recommender "
        "(`Recommender.from_settings`, `shopper(customer_id=…)`, `recommend`). Nothing is "
        "written to the database.",
        "- **Requests**: “for you” (no criteria: the shopper's own history chooses; customers "
        "without history get nothing for it) and, per department, its most-stocked product "
        "type with the category filter the bot sets when a shopper names it.",
        "- **Price level**: quintile of the product's price position within its own category "
        "(mid-rank percentile; L1 = cheapest fifth). Mean price position: 0 cheapest, 1 dearest.",
        "- **Coverage**: expected distinct products among the same number of suggestions "
        "(rarefaction), so a large group is not favoured by its size; the disparity compares "
        "distinct products per suggestion rarefied to the smaller side. **Gini** and **top-10 "
        "share** of product exposure are descriptive only (they depend on group size). "
        "**Department mix** counts the “for you” answers only (in the other requests the "
        "category filter fixes the department); **dept. JSD**: its Jensen-Shannon divergence "
        "(base 2) from everyone's.",
        f"- **Quality**: the time-split evaluation of `tailor.recommend.evaluation` (each "
        f"customer's last purchase held out, segments refitted on the training view, the "
        f"request filtered to the purchase's product type), hit@{report.k} and NDCG@{report.k} "
        "of full personalisation; “anon.” is the anonymous ranker, which cannot see who asks: "
        "a gap there comes from what the group buys, not from personalisation.",
        "- **Disparity**: (group − rest) / rest, flagged above the threshold when the "
        "bootstrap interval (customers resampled within group and rest) excludes 0; price "
        "levels also need a significant chi-square test of group × level (it counts "
        "suggestions as independent, hence the bootstrap by customer as well); coverage (which "
        "a bootstrap would bias: a customer drawn twice adds no new product) and department mix "
        "(total-variation distance) use a permutation p-value (labels shuffled by customer). "
        "Levels are Bonferroni-corrected per dimension (0.05 / the number of groups large "
        "enough to flag; the CI column shows that interval). Several metrics are still tested "
        "per group, so an isolated flag near the threshold deserves a second look.",
        "- **Protected attributes** (`TAILOR_PROTECTED_ATTRIBUTES`, default age band and "
        "gender) are not ranking inputs unless `TAILOR_RANK_USE_PROTECTED=true`: the "
        "life-stage segment (from the age band) and the gender segment are then left out of "
        "the segment prior. Country is geographic (season, climate) and not protected by "
        "default. A disparity by age band or gender under the default policy therefore comes "
        "from the customers' own histories (what they bought and browsed) or from signals "
        "correlated with them, not from the attribute itself.",
        "",
        "## Re-run",
        "",
        "```bash",
        ".venv/bin/tailor audit --compare-protected   # all customers; docs/audit.md + .json",
        ".venv/bin/tailor audit --customers 100 --threshold 0.2 --out /tmp/audit.md",
        "```",
        "",
        "Exit code: 0 when the configured policy's run has no flag, 1 when it has one, 2 on "
        "errors (the comparison run's flags are shown but do not change the exit code).",
        "",
    ]
    return "\n".join(lines)


def group_index(rows: Sequence[GroupRow]) -> dict[tuple[str, str], GroupRow]:
    """Rows by (dimension, group), for callers that look groups up."""
    return {(r.dimension, r.group): r for r in rows}


def flags_by_dimension(run: AuditRun) -> dict[str, list[Disparity]]:
    """The flagged disparities of a run, per dimension."""
    out: dict[str, list[Disparity]] = defaultdict(list)
    for d in run.flags:
        out[d.dimension].append(d)
    return dict(out)
