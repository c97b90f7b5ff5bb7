"""Fitting and applying behavioural (RFM) segments over the stored purchase history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from tailor.profiles.rfm import NO_PURCHASES, RFMModel, fit_rfm
from tailor.store.segments import (
    PurchaseStats,
    customer_ids,
    latest_segment_model,
    purchase_stats,
    save_segment_model,
    segment_sizes,
    set_segments,
)

KIND = "rfm"


@dataclass(frozen=True)
class FitReport:
    """What ``tailor segments fit`` did."""

    version: int
    model: RFMModel
    reference: datetime
    sizes: dict[str, int]

    def render(self) -> str:
        """A table of segment sizes and centroids in natural units."""
        lines = [
            f"Behavioural segments (k-means on log RFM), model version {self.version}, "
            f"recency as of {self.reference:%Y-%m-%d}",
            "k chosen by silhouette: "
            + ", ".join(f"k={k}: {s:.3f}" for k, s in sorted(self.model.silhouettes.items()))
            + f" → k={self.model.k}",
            f"{'segment':18} {'customers':>9} {'recency (days)':>15} {'orders':>7} {'spent':>10}",
        ]
        for row in self.model.centroid_table():
            name = str(row["segment"])
            lines.append(
                f"{name:18} {self.sizes.get(name, 0):9d} {row['recency_days']:15.0f} "
                f"{row['orders']:7.1f} {row['spent']:10.2f}"
            )
        if self.sizes.get(NO_PURCHASES):
            lines.append(f"{NO_PURCHASES:18} {self.sizes[NO_PURCHASES]:9d}")
        return "\n".join(lines)


def _arrays(
    stats: list[PurchaseStats], reference: datetime
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = np.array([max(0.0, (reference - s.last_purchase).total_seconds() / 86400) for s in stats])
    f = np.array([s.orders for s in stats], dtype=np.float64)
    m = np.array([max(0.0, s.spent) for s in stats], dtype=np.float64)
    return r, f, m


def fit_behavioural(
    factory: sessionmaker[Session], reference: datetime | None = None, seed: int = 42
) -> FitReport:
    """Refit the RFM model on all purchases, store it as a new version, reassign everyone.

    Recency is measured from ``reference`` (default: the latest purchase in the data, so a
    replayed or demo history is judged as of its own end).
    """
    with factory.begin() as session:
        stats = purchase_stats(session)
        if not stats:
            raise ValueError(
                "no purchases stored yet: nothing to segment (load the demo data first)"
            )
        ref = reference or max(s.last_purchase for s in stats)
        model = fit_rfm(*_arrays(stats, ref), seed=seed)
        version = save_segment_model(
            session, KIND, {**model.to_json(), "reference": ref.isoformat()}
        )
        labels = model.assign(*_arrays(stats, ref))
        assigned = {s.customer_id: name for s, name in zip(stats, labels, strict=True)}
        for cid in customer_ids(session):
            assigned.setdefault(cid, NO_PURCHASES)
        set_segments(session, KIND, version, assigned)
        session.flush()
        sizes = segment_sizes(session, KIND)
    return FitReport(version=version, model=model, reference=ref, sizes=sizes)


def refresh_customer(
    session: Session, customer_id: int, reference: datetime | None = None
) -> str | None:
    """Reassign one customer with the latest stored model (after a purchase); their segment."""
    row = latest_segment_model(session, KIND)
    if row is None:
        return None
    model = RFMModel.from_json(row.params)
    stats = purchase_stats(session, customer_id)
    if not stats:
        segment = NO_PURCHASES
    else:
        ref = reference or max(
            stats[0].last_purchase,
            datetime.fromisoformat(row.params.get("reference", stats[0].last_purchase.isoformat())),
        )
        segment = model.assign(*_arrays(stats, ref))[0]
    set_segments(session, KIND, row.version, {customer_id: segment})
    return segment


def assign_rule_segments(factory: sessionmaker[Session]) -> dict[str, dict[str, int]]:
    """Demographic and geographic segments for every customer; sizes per kind."""
    from sqlalchemy import select

    from tailor.profiles.rules import demographic_segment, geographic_segment
    from tailor.store.models import Customer

    with factory.begin() as session:
        demo: dict[int, str] = {}
        geo: dict[int, str] = {}
        for c in session.scalars(select(Customer)):
            demo[c.id] = demographic_segment(c.age_band)
            geo[c.id] = geographic_segment(c.country, (c.attributes or {}).get("climate"))
        set_segments(session, "demographic", None, demo)
        set_segments(session, "geographic", None, geo)
        session.flush()
        return {kind: segment_sizes(session, kind) for kind in ("demographic", "geographic")}


def render_sizes(kind: str, sizes: dict[str, int]) -> str:
    """A small table of segment sizes, largest first."""
    lines = [f"{kind.capitalize()} segments (rules)", f"{'segment':36} {'customers':>9}"]
    for name, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"{name:36} {n:9d}")
    return "\n".join(lines)


def _browsing_tags(session: Session, customer_ids: list[int] | None = None) -> dict[int, list[str]]:
    """Tags of the products each customer viewed, clicked, carted or bought."""
    from sqlalchemy import select

    from tailor.store.models import Event, Product

    stmt = (
        select(Event.customer_id, Product.tags)
        .join(Product, Product.id == Event.product_id)
        .where(
            Event.customer_id.is_not(None),
            Event.kind.in_(("view", "click", "cart", "purchase", "details")),
        )
    )
    if customer_ids is not None:
        stmt = stmt.where(Event.customer_id.in_(customer_ids))
    out: dict[int, list[str]] = {}
    for cid, tags in session.execute(stmt):
        if cid is not None:
            out.setdefault(int(cid), []).extend(tags or [])
    return out


def _stated(session: Session, customer_ids: list[int] | None = None) -> dict[int, list[str]]:
    from sqlalchemy import select

    from tailor.store.models import Profile

    stmt = select(Profile.customer_id, Profile.preferences).where(Profile.customer_id.is_not(None))
    if customer_ids is not None:
        stmt = stmt.where(Profile.customer_id.in_(customer_ids))
    return {
        int(cid): [str(p.get("value")) for p in prefs or [] if p.get("positive", True)]
        for cid, prefs in session.execute(stmt)
        if cid is not None
    }


def psychographic_for(session: Session, customer_id: int) -> str:
    """One customer's psychographic segment from stated preferences and browsing tags."""
    from tailor.profiles.psychographics import psychographic_segment

    tags = _browsing_tags(session, [customer_id]).get(customer_id, [])
    stated = _stated(session, [customer_id]).get(customer_id, [])
    return psychographic_segment(stated, tags, min_signal=2)


def assign_psychographic_segments(factory: sessionmaker[Session]) -> dict[str, int]:
    """Psychographic segments for every customer (stated preferences weigh double the
    browsing tags; fewer than two signals → "not enough signal"); sizes."""
    from tailor.profiles.psychographics import psychographic_segment

    with factory.begin() as session:
        tags = _browsing_tags(session)
        stated = _stated(session)
        assigned = {
            cid: psychographic_segment(stated.get(cid, []), tags.get(cid, []), min_signal=2)
            for cid in customer_ids(session)
        }
        set_segments(session, "psychographic", None, assigned)
        session.flush()
        return segment_sizes(session, "psychographic")


@dataclass(frozen=True)
class SegmentsReport:
    """All four segmentations of one refit."""

    behavioural: FitReport
    rules: dict[str, dict[str, int]]
    psychographic: dict[str, int]

    def render(self) -> str:
        """The behavioural table, then the rule-based and psychographic sizes."""
        parts = [self.behavioural.render()]
        for kind, sizes in self.rules.items():
            parts.append(render_sizes(kind, sizes))
        parts.append(
            render_sizes("psychographic", self.psychographic).replace(
                "(rules)", "(stated preferences ×2 + browsing tags)"
            )
        )
        return "\n\n".join(parts)


def fit_all_segments(
    factory: sessionmaker[Session], reference: datetime | None = None, seed: int = 42
) -> SegmentsReport:
    """Refit behavioural segments and reassign demographic, geographic and psychographic."""
    behavioural = fit_behavioural(factory, reference=reference, seed=seed)
    rules = assign_rule_segments(factory)
    psychographic = assign_psychographic_segments(factory)
    return SegmentsReport(behavioural=behavioural, rules=rules, psychographic=psychographic)


def has_segments(factory: sessionmaker[Session]) -> bool:
    """Whether a behavioural model has been fitted on this database."""
    with factory() as session:
        return latest_segment_model(session, KIND) is not None
