"""Predictive scores: churn risk and when a consumable runs out (replenishment).

Both are learnt from the purchase history, nothing is configured by hand:

- **Churn risk**: a logistic regression on recency / frequency / trend / monetary features
  computed at a date, labelled by whether the customer bought anything in the ``horizon``
  days after it. It is trained on several past snapshots (each with a fully observed
  horizon) and applied at ``now``; the fitted parameters are stored as a ``SegmentModel`` of
  kind ``"churn"``.
- **Replenishment**: a category is *replenishable* when its repeat buyers buy it at regular
  intervals (median coefficient of variation of their intervals at most
  :data:`MAX_INTERVAL_CV`); the population's median interval, and the median gap after a
  *starter* category (a coffee machine before the first coffee), are stored as kind
  ``"restock"``. A customer's next restock is their last purchase plus their own median
  interval shrunk towards the population's (or the population's alone with one purchase).

:func:`fit_scores` fits both and stores per-customer scores (``customer_scores``);
:func:`churn_risk`, :func:`restock_due` and :func:`outlook` answer for one customer at a
time (for the greeting triggers and the assist panel); :func:`evaluate` measures both with a
time split against simple baselines.
"""

from __future__ import annotations

import itertools
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tailor.store.models import Event, Product, as_utc
from tailor.store.scores import opted_out_customers, set_scores
from tailor.store.segments import latest_segment_model, save_segment_model

__all__ = [
    "CHURN_FEATURES",
    "CHURN_KIND",
    "DEFAULT_HORIZON_DAYS",
    "HIGH_RISK",
    "MAX_INTERVAL_CV",
    "MIN_INTERVALS",
    "MIN_RESTOCK_CUSTOMERS",
    "MIN_RHYTHM_INTERVALS",
    "RESTOCK_KIND",
    "ChurnModel",
    "EvalReport",
    "FitReport",
    "Outlook",
    "Purchase",
    "RestockCategory",
    "RestockDue",
    "RestockModel",
    "churn_features",
    "churn_label",
    "churn_risk",
    "default_cutoff",
    "evaluate",
    "fit_churn_model",
    "fit_restock_model",
    "fit_scores",
    "intervals_days",
    "load_purchases",
    "order_times",
    "outlook",
    "predict_restock",
    "report_document",
    "restock_due",
    "risk_band",
    "spread",
]

#: Model kinds in ``segment_models`` and score kinds in ``customer_scores``.
CHURN_KIND = "churn"
RESTOCK_KIND = "restock"
#: Churn label: no purchase in this many days after the date scored.
DEFAULT_HORIZON_DAYS = 90
#: Churn risk at or above which a customer counts as at risk (a retention offer).
HIGH_RISK = 0.7
MEDIUM_RISK = 0.4
#: A customer buys a category at a rhythm when their intervals vary at most this much
#: (:func:`spread`, over at least :data:`MIN_INTERVALS` intervals).
MAX_INTERVAL_CV = 0.35
MIN_INTERVALS = 3
#: ... and at least this many customers show such a rhythm, with this many intervals together.
MIN_RESTOCK_CUSTOMERS = 3
MIN_RHYTHM_INTERVALS = 15
#: Weight of the population's interval against one own interval (shrinkage).
_PRIOR_WEIGHT = 1.0
#: Purchases of one category within this many days count as one order.
_SAME_ORDER_DAYS = 1.0
_DAY = 86400.0

#: Features of the churn model, in order (all computed from purchases before the date).
CHURN_FEATURES: tuple[str, ...] = (
    "log_recency_days",
    "log_orders",
    "log_orders_30d",
    "log_orders_90d",
    "log_orders_180d",
    "trend_90d",
    "log_tenure_days",
    "log_mean_interval_days",
    "log_overdue_ratio",
    "log_spent",
    "log_order_value",
)


# -- data -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Purchase:
    """One purchase event, as the predictors see it."""

    customer_id: int
    at: datetime
    value: float
    category: str | None = None
    product_id: int | None = None


def load_purchases(
    session: Session, customer_id: int | None = None, before: datetime | None = None
) -> list[Purchase]:
    """Purchases (optionally of one customer, optionally strictly before ``before``), oldest
    first, with the product's category."""
    stmt = (
        select(Event.customer_id, Event.created_at, Event.value, Product.category, Event.product_id)
        .outerjoin(Product, Product.id == Event.product_id)
        .where(Event.kind == "purchase", Event.customer_id.is_not(None))
        .order_by(Event.created_at, Event.id)
    )
    if customer_id is not None:
        stmt = stmt.where(Event.customer_id == customer_id)
    cut = as_utc(before) if before is not None else None
    out = []
    for cid, at, value, category, pid in session.execute(stmt):
        when = as_utc(at)
        if cid is None or (cut is not None and when >= cut):
            continue
        out.append(Purchase(int(cid), when, float(value or 0.0), category, pid))
    return out


def _by_customer(purchases: Iterable[Purchase]) -> dict[int, list[Purchase]]:
    grouped: dict[int, list[Purchase]] = defaultdict(list)
    for p in purchases:
        grouped[p.customer_id].append(p)
    for items in grouped.values():
        items.sort(key=lambda p: p.at)
    return dict(grouped)


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / _DAY


def _check_aware(name: str, t: datetime) -> datetime:
    if not isinstance(t, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(t).__name__}")
    return as_utc(t)


def _check_horizon(horizon_days: int) -> None:
    if not isinstance(horizon_days, int) or isinstance(horizon_days, bool) or horizon_days < 1:
        raise ValueError(f"horizon_days must be a whole number of days >= 1, got {horizon_days!r}")


# -- churn ----------------------------------------------------------------------------
def churn_features(
    times: Sequence[datetime], values: Sequence[float], at: datetime
) -> dict[str, float] | None:
    """Recency / frequency / trend / monetary features of one customer at ``at``, in natural
    units, from the purchases strictly before ``at`` (``None`` if there is none).

    ``recency_days`` since the last purchase; ``orders`` in all, and in the last 30, 90 and
    180 days; ``trend_90d`` = orders in the last 90 days minus the 90 days before;
    ``tenure_days`` since the first purchase; ``mean_interval_days`` = tenure / (orders - 1)
    (the tenure with one order); ``overdue_ratio`` = recency / mean interval; ``spent`` and
    ``order_value`` (mean).
    """
    if len(times) != len(values):
        raise ValueError(f"{len(times)} times but {len(values)} values")
    at = as_utc(at)
    past = sorted(
        (as_utc(t), float(v)) for t, v in zip(times, values, strict=True) if as_utc(t) < at
    )
    if not past:
        return None
    ages = [_days(at - t) for t, _ in past]
    orders = len(past)
    recency = ages[-1]
    tenure = ages[0]
    mean_interval = tenure / (orders - 1) if orders > 1 else tenure
    spent = sum(v for _, v in past)
    n90 = sum(a <= 90 for a in ages)
    return {
        "recency_days": recency,
        "orders": float(orders),
        "orders_30d": float(sum(a <= 30 for a in ages)),
        "orders_90d": float(n90),
        "orders_180d": float(sum(a <= 180 for a in ages)),
        "trend_90d": float(n90 - sum(90 < a <= 180 for a in ages)),
        "tenure_days": tenure,
        "mean_interval_days": mean_interval,
        "overdue_ratio": recency / mean_interval if mean_interval > 0 else 1.0,
        "spent": spent,
        "order_value": spent / orders,
    }


def _vector(raw: Mapping[str, float]) -> list[float]:
    """The model's feature vector (:data:`CHURN_FEATURES`) from :func:`churn_features`."""
    out = []
    for name in CHURN_FEATURES:
        if name.startswith("log_"):
            out.append(math.log1p(max(0.0, raw[name[4:]])))
        else:
            out.append(float(raw[name]))
    return out


def churn_label(times: Sequence[datetime], at: datetime, horizon_days: int) -> bool | None:
    """Whether the customer churned at ``at``: bought before ``at`` but nothing in
    ``[at, at + horizon_days)``. ``None`` when they had not bought before ``at``."""
    _check_horizon(horizon_days)
    at = as_utc(at)
    end = at + timedelta(days=horizon_days)
    stamps = [as_utc(t) for t in times]
    if not any(t < at for t in stamps):
        return None
    return not any(at <= t < end for t in stamps)


@dataclass(frozen=True)
class ChurnModel:
    """A fitted churn model: standardisation and logistic-regression weights."""

    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray
    intercept: float
    horizon_days: int
    features: tuple[str, ...] = CHURN_FEATURES
    info: dict[str, Any] = field(default_factory=dict)

    def predict(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """Churn probability for each raw feature dict (from :func:`churn_features`)."""
        if not rows:
            return np.zeros(0)
        x = (np.asarray([_vector(r) for r in rows], dtype=np.float64) - self.mean) / self.std
        z = x @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-z)))

    def to_json(self) -> dict[str, Any]:
        """JSON-safe parameters for persistence."""
        return {
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "horizon_days": self.horizon_days,
            "info": dict(self.info),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChurnModel:
        """Inverse of :meth:`to_json`; rejects parameters of another feature set."""
        features = tuple(data.get("features", ()))
        if features != CHURN_FEATURES:
            raise ValueError(
                f"stored churn model has features {list(features)}, this code expects "
                f"{list(CHURN_FEATURES)}; refit with `tailor predict fit`"
            )
        return cls(
            mean=np.asarray(data["mean"], dtype=np.float64),
            std=np.asarray(data["std"], dtype=np.float64),
            coef=np.asarray(data["coef"], dtype=np.float64),
            intercept=float(data["intercept"]),
            horizon_days=int(data["horizon_days"]),
            info=dict(data.get("info", {})),
        )


def _training_rows(
    by_customer: Mapping[int, Sequence[Purchase]],
    now: datetime,
    horizon_days: int,
    snapshots: int,
    step_days: int,
) -> tuple[list[dict[str, float]], list[int]]:
    """Features at past anchors ``now - horizon - k * step`` and their observed labels."""
    rows: list[dict[str, float]] = []
    labels: list[int] = []
    for k in range(snapshots):
        anchor = now - timedelta(days=horizon_days + k * step_days)
        for items in by_customer.values():
            times = [p.at for p in items if p.at < now]
            feats = churn_features(times, [p.value for p in items if p.at < now], anchor)
            if feats is None:
                continue
            label = churn_label(times, anchor, horizon_days)
            rows.append(feats)
            labels.append(int(bool(label)))
    return rows, labels


def fit_churn_model(
    purchases: Iterable[Purchase],
    now: datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    snapshots: int = 6,
    step_days: int = 30,
) -> ChurnModel:
    """Fit the churn model on purchases strictly before ``now`` (labels fully observed).

    Training rows are every customer with a purchase before each anchor ``now - horizon -
    k * step_days`` (``k < snapshots``), labelled by :func:`churn_label` at that anchor.
    Raises ``ValueError`` when the history holds no two classes to learn from.
    """
    from sklearn.linear_model import LogisticRegression

    _check_horizon(horizon_days)
    if snapshots < 1 or step_days < 1:
        raise ValueError(f"snapshots and step_days must be >= 1, got {snapshots}, {step_days}")
    now = as_utc(now)
    by_customer = _by_customer(p for p in purchases if p.at < now)
    rows, labels = _training_rows(by_customer, now, horizon_days, snapshots, step_days)
    positives = sum(labels)
    if not rows or positives in (0, len(labels)):
        raise ValueError(
            f"cannot fit a churn model at {now:%Y-%m-%d} with a {horizon_days}-day horizon: "
            f"{len(rows)} training rows, {positives} churned; it needs purchase history of "
            f"more than {horizon_days} days with both returning and lapsed customers"
        )
    x = np.asarray([_vector(r) for r in rows], dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    clf = LogisticRegression(C=1.0, max_iter=2000)
    clf.fit((x - mean) / std, np.asarray(labels))
    return ChurnModel(
        mean=mean,
        std=std,
        coef=np.asarray(clf.coef_[0], dtype=np.float64),
        intercept=float(clf.intercept_[0]),
        horizon_days=horizon_days,
        info={
            "fitted_at": now.isoformat(),
            "rows": len(rows),
            "churned": positives,
            "snapshots": snapshots,
            "step_days": step_days,
        },
    )


def risk_band(risk: float) -> str:
    """``"high"``, ``"medium"`` or ``"low"`` for a churn probability."""
    if not 0.0 <= risk <= 1.0:
        raise ValueError(f"risk must be a probability in [0, 1], got {risk!r}")
    return "high" if risk >= HIGH_RISK else "medium" if risk >= MEDIUM_RISK else "low"


# -- replenishment ----------------------------------------------------------------------
@dataclass(frozen=True)
class RestockCategory:
    """A replenishable category: the population's rhythm and what starts it."""

    path: str
    median_interval_days: float
    cv: float
    customers: int
    intervals: int
    #: Starter category → median days from buying it to the first purchase of this one.
    starters: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RestockModel:
    """The replenishable categories learnt from a history."""

    categories: dict[str, RestockCategory]
    fitted_at: datetime

    def to_json(self) -> dict[str, Any]:
        """JSON-safe parameters for persistence."""
        return {
            "fitted_at": self.fitted_at.isoformat(),
            "categories": {
                path: {
                    "median_interval_days": c.median_interval_days,
                    "cv": c.cv,
                    "customers": c.customers,
                    "intervals": c.intervals,
                    "starters": dict(c.starters),
                }
                for path, c in self.categories.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RestockModel:
        """Inverse of :meth:`to_json`."""
        return cls(
            categories={
                path: RestockCategory(
                    path=path,
                    median_interval_days=float(c["median_interval_days"]),
                    cv=float(c["cv"]),
                    customers=int(c["customers"]),
                    intervals=int(c["intervals"]),
                    starters={k: float(v) for k, v in c.get("starters", {}).items()},
                )
                for path, c in data.get("categories", {}).items()
            },
            fitted_at=as_utc(datetime.fromisoformat(data["fitted_at"])),
        )


def order_times(times: Iterable[datetime]) -> list[datetime]:
    """Sorted purchase times with those within a day of the previous one merged (one order)."""
    out: list[datetime] = []
    for t in sorted(as_utc(t) for t in times):
        if out and _days(t - out[-1]) < _SAME_ORDER_DAYS:
            continue
        out.append(t)
    return out


def intervals_days(times: Iterable[datetime]) -> list[float]:
    """Days between consecutive orders (see :func:`order_times`)."""
    orders = order_times(times)
    return [_days(b - a) for a, b in itertools.pairwise(orders)]


def spread(xs: Sequence[float]) -> float:
    """Coefficient of variation of intervals (population std / mean): 0 for a perfect
    rhythm, about 1 for purchases at random times. ``inf`` when the mean is 0."""
    if not xs:
        raise ValueError("spread of no intervals")
    mean = statistics.fmean(xs)
    return statistics.pstdev(xs) / mean if mean > 0 else math.inf


def fit_restock_model(
    purchases: Iterable[Purchase],
    now: datetime,
    max_cv: float = MAX_INTERVAL_CV,
    min_customers: int = MIN_RESTOCK_CUSTOMERS,
) -> RestockModel:
    """Learn the replenishable categories from purchases strictly before ``now``.

    A category qualifies when at least ``min_customers`` customers buy it at a rhythm
    (:data:`MIN_INTERVALS` or more intervals whose :func:`spread` is at most ``max_cv``),
    they are at least half of those with that many intervals, and they show
    :data:`MIN_RHYTHM_INTERVALS` intervals together (a few chance regularities among
    purchases at random times are not enough). Its interval is the median of those
    customers' median intervals.
    A *starter* is another category after whose first purchase at least 3 customers, and
    at least a fifth of its buyers, bought this one for the first time within three
    intervals (at least 60 days).
    """
    now = as_utc(now)
    by_customer = _by_customer(p for p in purchases if p.at < now and p.category)
    cat_times: dict[str, dict[int, list[datetime]]] = defaultdict(dict)
    for cid, items in by_customer.items():
        per: dict[str, list[datetime]] = defaultdict(list)
        for p in items:
            per[str(p.category)].append(p.at)
        for cat, times in per.items():
            cat_times[cat][cid] = order_times(times)
    categories: dict[str, RestockCategory] = {}
    for cat in sorted(cat_times):
        gaps_all: list[float] = []
        cvs: list[float] = []
        rhythm_medians: list[float] = []
        rhythmic = rhythm_intervals = 0
        for times in cat_times[cat].values():
            gaps = [_days(b - a) for a, b in itertools.pairwise(times)]
            if len(gaps) >= MIN_INTERVALS:
                cvs.append(spread(gaps))
                if cvs[-1] <= max_cv:
                    rhythmic += 1
                    rhythm_intervals += len(gaps)
                    rhythm_medians.append(statistics.median(gaps))
            if len(gaps) >= 2 and spread(gaps) <= 2 * max_cv:
                gaps_all.extend(gaps)
        if (
            rhythmic < min_customers
            or 2 * rhythmic < len(cvs)
            or rhythm_intervals < MIN_RHYTHM_INTERVALS
            or not gaps_all
        ):
            continue
        median_interval = statistics.median(rhythm_medians)
        window = max(60.0, 3.0 * median_interval)
        starters: dict[str, float] = {}
        for other in sorted(cat_times):
            if other == cat:
                continue
            buyers = cat_times[other]
            follow: list[float] = []
            for cid, other_times in buyers.items():
                mine = cat_times[cat].get(cid)
                if not mine:
                    continue
                first = mine[0]
                before = [t for t in other_times if t <= first]
                if before and other_times[0] <= first and _days(first - before[-1]) <= window:
                    follow.append(_days(first - before[-1]))
            if len(follow) >= 3 and len(follow) >= 0.2 * len(buyers):
                starters[other] = float(statistics.median(follow))
        categories[cat] = RestockCategory(
            path=cat,
            median_interval_days=float(median_interval),
            cv=float(statistics.median(cvs)),
            customers=len(cvs),
            intervals=len(gaps_all),
            starters=starters,
        )
    return RestockModel(categories=categories, fitted_at=now)


@dataclass(frozen=True)
class RestockDue:
    """A consumable the customer probably needs again soon."""

    category: str
    #: The product to offer: their last one of this category, or the best match.
    product_id: int | None
    last_bought_at: datetime
    due_at: datetime
    confidence: float
    reason: str
    interval_days: float
    #: ``"own"`` (their own intervals), ``"typical"`` (one purchase: the population's
    #: interval) or ``"starter"`` (they bought the durable it goes with).
    basis: str

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict."""
        data = dict(self.__dict__)
        data["last_bought_at"] = self.last_bought_at.isoformat()
        data["due_at"] = self.due_at.isoformat()
        return data


def _leaf(path: str) -> str:
    return path.split(">")[-1].strip()


def _singular(name: str) -> str:
    low = name.lower()
    return low[:-1] if low.endswith("s") and not low.endswith("ss") else low


def _ago(days: float) -> str:
    if days < 1.5:
        return "a day ago" if days >= 0.5 else "today"
    if days < 14:
        return f"{round(days)} days ago"
    if days < 60:
        weeks = round(days / 7)
        return f"{weeks} weeks ago"
    return f"{round(days / 30.44)} months ago"


def predict_restock(
    model: RestockModel,
    purchases: Sequence[Purchase],
    now: datetime,
    own_intervals: bool = True,
    include_lapsed: bool = False,
) -> list[RestockDue]:
    """Every replenishable category one customer is expected to restock, soonest first.

    ``purchases`` are the customer's (those at or after ``now`` are ignored). With
    ``own_intervals`` false every interval is the population's (the baseline). A category
    whose due date passed by more than one interval (and a week) is left out unless
    ``include_lapsed``: the customer has most likely stopped or buys it elsewhere.
    """
    now = as_utc(now)
    past = [p for p in purchases if p.at < now and p.category]
    by_cat: dict[str, list[Purchase]] = defaultdict(list)
    for p in sorted(past, key=lambda p: p.at):
        by_cat[str(p.category)].append(p)
    out: list[RestockDue] = []
    for path, cat in model.categories.items():
        pop = cat.median_interval_days
        mine = by_cat.get(path, [])
        if mine:
            gaps = intervals_days(p.at for p in mine) if own_intervals else []
            m = len(gaps)
            if m:
                interval = (m * statistics.median(gaps) + _PRIOR_WEIGHT * pop) / (m + _PRIOR_WEIGHT)
                var = spread(gaps) if m >= 2 else cat.cv
            else:
                interval, var = pop, cat.cv
            last = mine[-1]
            last_at, product_id, basis = last.at, last.product_id, "own" if m else "typical"
            name = _leaf(path).lower()
            verb = "are" if name.endswith("s") else "is"
            reason = f"your {name} from {_ago(_days(now - last_at))} {verb} probably running low"
            evidence = m
        else:
            starts = [(p.at, s) for s in cat.starters for p in by_cat.get(s, [])]
            if not starts:
                continue
            last_at, starter = max(starts)
            interval = cat.starters[starter] if own_intervals else pop
            var, product_id, basis, evidence = cat.cv, None, "starter", 0
            reason = (
                f"{_leaf(path)} for the {_singular(_leaf(starter))} you bought "
                f"{_ago(_days(now - last_at))}"
            )
        due = last_at + timedelta(days=interval)
        overdue = _days(now - due)
        if overdue > max(7.0, interval) and not include_lapsed:
            continue
        confidence = (0.3 + 0.6 * evidence / (evidence + 2)) * math.exp(-min(var, 5.0))
        if overdue > 0:
            confidence *= math.exp(-overdue / interval)
        out.append(
            RestockDue(
                category=path,
                product_id=product_id,
                last_bought_at=last_at,
                due_at=due.replace(microsecond=0),
                confidence=round(min(1.0, max(0.0, confidence)), 3),
                reason=reason,
                interval_days=round(interval, 1),
                basis=basis,
            )
        )
    out.sort(key=lambda d: (d.due_at, d.category))
    return out


def _offer(session: Session, due: RestockDue) -> int | None:
    """Their last product if it is still sold and in stock, else the best match: the most
    bought in-stock product of the category (their last brand first), then the best rated."""
    last = session.get(Product, due.product_id) if due.product_id is not None else None
    if last is not None and last.in_stock:
        return last.id
    bought = func.count(Event.id)
    stmt = (
        select(Product.id)
        .outerjoin(Event, (Event.product_id == Product.id) & (Event.kind == "purchase"))
        .where(Product.category == due.category, Product.stock > 0)
        .group_by(Product.id)
    )
    order: list[Any] = [bought.desc(), Product.rating.desc().nulls_last(), Product.id]
    if last is not None and last.brand:
        order.insert(0, (Product.brand == last.brand).desc())
    found = session.scalar(stmt.order_by(*order).limit(1))
    return int(found) if found is not None else None


# -- stored models and per-customer answers -------------------------------------------------
def _stored_churn(session: Session) -> tuple[ChurnModel, int] | None:
    row = latest_segment_model(session, CHURN_KIND)
    return (ChurnModel.from_json(row.params), row.version) if row is not None else None


def _stored_restock(session: Session) -> tuple[RestockModel, int] | None:
    row = latest_segment_model(session, RESTOCK_KIND)
    return (RestockModel.from_json(row.params), row.version) if row is not None else None


def _opted_out(session: Session, customer_id: int) -> bool:
    return customer_id in opted_out_customers(session)


def _churn_from(model: ChurnModel, items: Sequence[Purchase], now: datetime) -> float | None:
    feats = churn_features([p.at for p in items], [p.value for p in items], now)
    return None if feats is None else float(model.predict([feats])[0])


def churn_risk(session: Session, customer_id: int, now: datetime) -> float | None:
    """Probability that the customer buys nothing in the model's horizon after ``now``.

    ``None`` when no churn model is fitted (``tailor predict fit``), the customer never
    bought anything before ``now``, or they turned personalisation off.
    """
    now = _check_aware("now", now)
    stored = _stored_churn(session)
    if stored is None or _opted_out(session, customer_id):
        return None
    return _churn_from(stored[0], load_purchases(session, customer_id, before=now), now)


def restock_due(
    session: Session, customer_id: int, now: datetime, horizon_days: int = 7
) -> list[RestockDue]:
    """The consumables the customer will probably need within ``horizon_days`` of ``now``
    (overdue ones included), soonest first, each with the product to offer.

    Uses the stored restock model; without one it is learnt from the purchases before
    ``now`` (slower: run ``tailor predict fit``). Empty for customers who opted out.
    """
    now = _check_aware("now", now)
    _check_horizon(horizon_days)
    if _opted_out(session, customer_id):
        return []
    stored = _stored_restock(session)
    model = stored[0] if stored else fit_restock_model(load_purchases(session, before=now), now)
    limit = now + timedelta(days=horizon_days)
    dues = [
        d
        for d in predict_restock(model, load_purchases(session, customer_id, before=now), now)
        if d.due_at <= limit
    ]
    return [RestockDue(**{**d.__dict__, "product_id": _offer(session, d)}) for d in dues]


@dataclass(frozen=True)
class Outlook:
    """What the predictors say about one customer now (for greetings and the panel)."""

    churn_risk: float | None
    churn_band: str | None
    restock: list[RestockDue]
    horizon_days: int | None

    @property
    def at_risk(self) -> bool:
        """Whether a retention offer is warranted (risk at or above :data:`HIGH_RISK`)."""
        return self.churn_risk is not None and self.churn_risk >= HIGH_RISK

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "churn_risk": None if self.churn_risk is None else round(self.churn_risk, 3),
            "churn_band": self.churn_band,
            "churn_horizon_days": self.horizon_days,
            "at_risk": self.at_risk,
            "restock": [d.to_json() for d in self.restock],
        }


def outlook(
    session: Session, customer_id: int, now: datetime, horizon_days: int = 7
) -> Outlook | None:
    """Churn risk and restocks due within ``horizon_days``, from the stored models only (fast
    enough for every greeting); ``None`` when nothing is fitted or the customer opted out.

    The greeting triggers call this: ``restock`` non-empty → offer the first item's
    ``product_id`` with its ``reason``; ``at_risk`` → a retention offer.
    """
    now = _check_aware("now", now)
    churn, restock = _stored_churn(session), _stored_restock(session)
    if (churn is None and restock is None) or _opted_out(session, customer_id):
        return None
    items = load_purchases(session, customer_id, before=now)
    risk = _churn_from(churn[0], items, now) if churn else None
    limit = now + timedelta(days=horizon_days)
    dues = (
        [d for d in predict_restock(restock[0], items, now) if d.due_at <= limit] if restock else []
    )
    dues = [RestockDue(**{**d.__dict__, "product_id": _offer(session, d)}) for d in dues]
    return Outlook(
        churn_risk=risk,
        churn_band=risk_band(risk) if risk is not None else None,
        restock=dues,
        horizon_days=churn[0].horizon_days if churn else None,
    )


# -- fit and store ----------------------------------------------------------------------
@dataclass(frozen=True)
class FitReport:
    """What :func:`fit_scores` fitted and stored."""

    now: datetime
    churn_version: int
    restock_version: int
    training_rows: int
    training_churned: int
    scored: int
    at_risk: int
    restock_categories: dict[str, float]
    restock_due_week: int

    def render(self) -> str:
        """A readable summary."""
        cats = ", ".join(f"{_leaf(k)} ~{v:.0f} d" for k, v in self.restock_categories.items())
        return "\n".join(
            [
                f"Predictive scores at {self.now:%Y-%m-%d}",
                f"  churn model v{self.churn_version}: {self.training_rows} training rows "
                f"({self.training_churned} churned); {self.scored} customers scored, "
                f"{self.at_risk} at risk (>= {HIGH_RISK:.0%})",
                f"  restock model v{self.restock_version}: "
                f"{len(self.restock_categories)} replenishable categories ({cats or 'none'}); "
                f"{self.restock_due_week} customers due within 7 days",
            ]
        )


def fit_scores(
    session: Session,
    now: datetime,
    progress: bool = True,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> FitReport:
    """Fit the churn and restock models on the purchases before ``now``, store them (new
    versions), and store every customer's ``"churn"`` and ``"restock"`` scores.

    ``"churn"``: value = risk, payload = the features and band. ``"restock"``: value = days
    from ``now`` to the soonest due date (negative: overdue), payload = every item.
    """
    from tqdm import tqdm

    now = _check_aware("now", now)
    purchases = load_purchases(session, before=now)
    churn = fit_churn_model(purchases, now, horizon_days)
    restock = fit_restock_model(purchases, now)
    churn_version = save_segment_model(session, CHURN_KIND, churn.to_json())
    restock_version = save_segment_model(session, RESTOCK_KIND, restock.to_json())
    by_customer = _by_customer(purchases)
    churn_scores: dict[int, tuple[float, dict[str, Any]]] = {}
    restock_scores: dict[int, tuple[float, dict[str, Any]]] = {}
    ids = sorted(by_customer)
    for cid in tqdm(ids, desc="scoring", unit="customer", file=sys.stderr, disable=not progress):
        items = by_customer[cid]
        feats = churn_features([p.at for p in items], [p.value for p in items], now)
        if feats is not None:
            risk = float(churn.predict([feats])[0])
            churn_scores[cid] = (
                risk,
                {
                    "band": risk_band(risk),
                    "horizon_days": horizon_days,
                    "features": {k: round(v, 3) for k, v in feats.items()},
                },
            )
        dues = predict_restock(restock, items, now)
        if dues:
            soonest = _days(dues[0].due_at - now)
            restock_scores[cid] = (round(soonest, 2), {"items": [d.to_json() for d in dues]})
    set_scores(session, CHURN_KIND, churn_version, churn_scores)
    set_scores(session, RESTOCK_KIND, restock_version, restock_scores)
    return FitReport(
        now=now,
        churn_version=churn_version,
        restock_version=restock_version,
        training_rows=int(churn.info["rows"]),
        training_churned=int(churn.info["churned"]),
        scored=len(churn_scores),
        at_risk=sum(v >= HIGH_RISK for v, _ in churn_scores.values()),
        restock_categories={
            k: round(c.median_interval_days, 1) for k, c in restock.categories.items()
        },
        restock_due_week=sum(v <= 7 for v, _ in restock_scores.values()),
    )


# -- evaluation ---------------------------------------------------------------------------
def _auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def _pr(predicted: Sequence[bool], actual: Sequence[bool]) -> tuple[float, float, int]:
    tp = sum(p and a for p, a in zip(predicted, actual, strict=True))
    flagged, positives = sum(predicted), sum(actual)
    return (tp / flagged if flagged else 0.0, tp / positives if positives else 0.0, flagged)


@dataclass
class EvalReport:
    """Both predictors against their baselines on a time split."""

    cutoff: datetime
    horizon_days: int
    customers: int
    churned: int
    training_rows: int
    churn: dict[str, dict[str, float | int | None]]
    restock: dict[str, dict[str, float | int | None]]
    restock_snapshots: int
    restock_pairs: int
    restock_positives: int
    restock_dated: int
    categories: dict[str, float]

    def markdown(self) -> str:
        """The report as Markdown tables."""

        def f(v: float | int | None, digits: int = 3) -> str:
            if v is None:
                return "–"
            return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

        lines = [
            f"Time split at **{self.cutoff:%Y-%m-%d}**: models fitted on purchases before it, "
            f"scored at it, compared with what happened after.",
            "",
            f"### Churn (no purchase in the next {self.horizon_days} days)",
            "",
            f"{self.customers} customers with a purchase before the cutoff, {self.churned} "
            f"of them churned ({self.churned / max(1, self.customers):.0%}); "
            f"{self.training_rows} training rows from earlier snapshots.",
            "",
            "| predictor | AUC | flagged | precision | recall |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for name, m in self.churn.items():
            lines.append(
                f"| {name} | {f(m['auc'])} | {f(m['flagged'])} | {f(m['precision'])} | "
                f"{f(m['recall'])} |"
            )
        cats = ", ".join(f"{_leaf(k)} ({v:.0f} d)" for k, v in self.categories.items())
        lines += [
            "",
            "### Restock (due within the next 7 days)",
            "",
            f"Replenishable categories learnt before the cutoff: {cats or 'none'}. "
            f"{self.restock_snapshots} weekly snapshots from the cutoff on; "
            f"{self.restock_pairs} (customer, category) pairs with a prior purchase, "
            f"{self.restock_positives} of them bought again within the week; the date error "
            f"is over {self.restock_dated} pairs whose next purchase came within "
            f"{self.horizon_days} days.",
            "",
            "| predictor | flagged | precision | recall | date MAE (days) |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for name, m in self.restock.items():
            lines.append(
                f"| {name} | {f(m['flagged'])} | {f(m['precision'])} | {f(m['recall'])} | "
                f"{f(m['mae_days'], 1)} |"
            )
        return "\n".join(lines)


def _restock_eval(
    model: RestockModel,
    by_customer: Mapping[int, Sequence[Purchase]],
    cutoff: datetime,
    horizon_days: int,
    snapshots: int,
    window_days: int = 7,
) -> tuple[dict[str, dict[str, float | int | None]], int, int, int]:
    flags: dict[str, list[bool]] = {"model": [], "baseline": []}
    errors: dict[str, list[float]] = {"model": [], "baseline": []}
    actual: list[bool] = []
    dated = 0
    for j in range(snapshots):
        at = cutoff + timedelta(days=window_days * j)
        end = at + timedelta(days=window_days)
        for items in by_customer.values():
            past = [p for p in items if p.at < at]
            if not past:
                continue
            preds = {
                name: {d.category: d for d in predict_restock(model, past, at, own_intervals=own)}
                for name, own in (("model", True), ("baseline", False))
            }
            dates = {
                name: {
                    d.category: d.due_at
                    for d in predict_restock(
                        model, past, at, own_intervals=own, include_lapsed=True
                    )
                }
                for name, own in (("model", True), ("baseline", False))
            }
            bought = {str(p.category) for p in past if p.category}
            for path, cat in model.categories.items():
                if path not in bought and not (bought & set(cat.starters)):
                    continue
                later = [p.at for p in items if p.category == path and p.at >= at]
                actual.append(any(t < end for t in later))
                nxt = min(later) if later else None
                in_horizon = nxt is not None and _days(nxt - at) < horizon_days
                dated += in_horizon
                for name, by_path in preds.items():
                    due = by_path.get(path)
                    flags[name].append(due is not None and due.due_at < end)
                    when = dates[name].get(path)
                    if when is not None and in_horizon and nxt is not None:
                        errors[name].append(abs(_days(nxt - when)))
    out: dict[str, dict[str, float | int | None]] = {}
    labels = {"model": "own intervals (shrunk)", "baseline": "population median interval"}
    for name in ("model", "baseline"):
        precision, recall, flagged = _pr(flags[name], actual)
        out[labels[name]] = {
            "flagged": flagged,
            "precision": precision,
            "recall": recall,
            "mae_days": statistics.fmean(errors[name]) if errors[name] else None,
        }
    return out, len(actual), sum(actual), dated


def default_cutoff(session: Session, horizon_days: int = DEFAULT_HORIZON_DAYS) -> datetime:
    """The latest cutoff whose whole horizon is observed: the day of the last purchase minus
    ``horizon_days`` (midnight UTC)."""
    _check_horizon(horizon_days)
    last = session.scalar(select(func.max(Event.created_at)).where(Event.kind == "purchase"))
    if last is None:
        raise ValueError("no purchases stored: nothing to evaluate (load data first)")
    day = as_utc(last).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=horizon_days)


def evaluate(
    session: Session,
    cutoff: datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    restock_weeks: int | None = None,
) -> EvalReport:
    """Fit both predictors on the purchases before ``cutoff`` and compare their predictions
    at ``cutoff`` with what happened after it, next to baselines.

    Churn: AUC, and precision / recall of risk >= 0.5, against recency alone (AUC of days
    since the last purchase; flagged when it exceeds the horizon). Restock: precision /
    recall of "due within 7 days" over weekly snapshots from the cutoff on (default: as many
    as fit in the horizon; the model is not refitted between them), and the mean absolute
    error in days of the predicted date, against the population's median interval.
    """
    cutoff = _check_aware("cutoff", cutoff)
    _check_horizon(horizon_days)
    purchases = load_purchases(session)
    if not purchases:
        raise ValueError("no purchases stored: nothing to evaluate (load data first)")
    latest = max(p.at for p in purchases)
    if cutoff + timedelta(days=horizon_days) > latest + timedelta(days=1):
        raise ValueError(
            f"cutoff {cutoff:%Y-%m-%d} + {horizon_days} days is after the last purchase "
            f"({latest:%Y-%m-%d}); pick a cutoff on or before "
            f"{latest - timedelta(days=horizon_days):%Y-%m-%d}"
        )
    weeks = restock_weeks if restock_weeks is not None else max(1, horizon_days // 7 - 1)
    if weeks < 1:
        raise ValueError(f"restock_weeks must be >= 1, got {weeks}")
    before = [p for p in purchases if p.at < cutoff]
    churn = fit_churn_model(before, cutoff, horizon_days)
    restock = fit_restock_model(before, cutoff)
    by_customer = _by_customer(purchases)
    rows, labels, recency = [], [], []
    for items in by_customer.values():
        feats = churn_features([p.at for p in items], [p.value for p in items], cutoff)
        if feats is None:
            continue
        rows.append(feats)
        labels.append(int(bool(churn_label([p.at for p in items], cutoff, horizon_days))))
        recency.append(feats["recency_days"])
    risk = churn.predict(rows).tolist()
    truth = [bool(x) for x in labels]
    p_m, r_m, n_m = _pr([r >= 0.5 for r in risk], truth)
    p_b, r_b, n_b = _pr([d > horizon_days for d in recency], truth)
    restock_metrics, pairs, positives, dated = _restock_eval(
        restock, by_customer, cutoff, horizon_days, weeks
    )
    return EvalReport(
        cutoff=cutoff,
        horizon_days=horizon_days,
        customers=len(rows),
        churned=sum(labels),
        training_rows=int(churn.info["rows"]),
        churn={
            "logistic regression (risk >= 0.5)": {
                "auc": _auc(risk, labels),
                "flagged": n_m,
                "precision": p_m,
                "recall": r_m,
            },
            f"recency only (> {horizon_days} days)": {
                "auc": _auc(recency, labels),
                "flagged": n_b,
                "precision": p_b,
                "recall": r_b,
            },
        },
        restock=restock_metrics,
        restock_snapshots=weeks,
        restock_pairs=pairs,
        restock_positives=positives,
        restock_dated=dated,
        categories={k: round(c.median_interval_days, 1) for k, c in restock.categories.items()},
    )


def report_document(report: EvalReport, table: str | None = None) -> str:
    """The whole ``docs/predictive.md``: how the scores are made and used, and the results."""
    return "\n".join(
        [
            "# Predictive scores: churn risk and replenishment",
            "",
            "Written by `tailor predict evaluate` (`--cutoff YYYY-MM-DD`, `--horizon DAYS`); "
            "the code is `tailor/profiles/predict.py`.",
            "",
            "## What is predicted",
            "",
            f"- **Churn risk**: the probability that a customer buys nothing in the next "
            f"{report.horizon_days} days. Features at a date, from the purchases before it: days "
            "since the last purchase, orders in all and in the last 30 / 90 / 180 days, the "
            "trend (last 90 days against the 90 before), tenure, mean interval between orders, "
            "how overdue the customer is against their own rhythm (recency / mean interval), "
            "money spent and mean order value (log-scaled, standardised). A logistic "
            "regression is trained on six monthly snapshots whose horizon is fully observed, "
            "and its weights are stored in the database (`segment_models`, kind `churn`).",
            "- **Replenishment**: a category is learnt as replenishable when its repeat buyers "
            "buy it at a steady rhythm (coefficient of variation of their intervals "
            f"<= {MAX_INTERVAL_CV} over {MIN_INTERVALS}+ intervals: at least "
            f"{MIN_RESTOCK_CUSTOMERS} such customers, half of the repeat buyers, "
            f"{MIN_RHYTHM_INTERVALS}+ intervals together); its "
            "typical interval is the median of those rhythms, and a *starter* category is one "
            "after which many buyers start buying it (a coffee machine, then coffee). A "
            "customer's next restock is their last purchase plus their own median interval, "
            "shrunk towards the typical one (one own interval weighs as much as the typical "
            "one); with a single purchase the typical interval; with only the starter, the "
            "typical gap after it. Stored as `segment_models` kind `restock`.",
            "",
            "`tailor predict fit` stores both models and every customer's scores "
            "(`customer_scores`: kind `churn` = risk, kind `restock` = days to the soonest due "
            "date, with the items). `tailor predict show CUSTOMER` prints one customer's "
            "outlook. The assist panel's customer box shows the churn risk and the restocks "
            "due; the greeting triggers call `tailor.profiles.predict.outlook()` (restock due "
            "→ offer it; `at_risk` → a retention offer).",
            "",
            "## Evaluation (time split on the demo histories)",
            "",
            "The demo customers (`tailor demo`) buy consumables at their own interval "
            "(coffee about every 3 weeks after a coffee machine, vitamins monthly, …) until "
            "they churn; the predictors are not told which categories those are. Baselines "
            "are measured in the same run: recency alone for churn (AUC of days since the "
            "last purchase; flagged when it exceeds the horizon) and the population's median "
            "interval for every customer for restock.",
            "",
            table if table is not None else report.markdown(),
            "",
        ]
    )
