"""Segment models and assignments, and the purchase aggregates they are fitted on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tailor.store.models import (
    Customer,
    CustomerSegment,
    Event,
    Profile,
    SegmentModel,
    as_utc,
    utcnow,
)


@dataclass(frozen=True)
class PurchaseStats:
    """One customer's purchase aggregates."""

    customer_id: int
    orders: int
    spent: float
    last_purchase: datetime


def purchase_stats(session: Session, customer_id: int | None = None) -> list[PurchaseStats]:
    """Orders, money spent and last purchase per customer (customers with purchases only)."""
    stmt = (
        select(
            Event.customer_id,
            func.count(),
            func.coalesce(func.sum(Event.value), 0.0),
            func.max(Event.created_at),
        )
        .where(Event.kind == "purchase", Event.customer_id.is_not(None))
        .group_by(Event.customer_id)
        .order_by(Event.customer_id)
    )
    if customer_id is not None:
        stmt = stmt.where(Event.customer_id == customer_id)
    return [
        PurchaseStats(int(cid), int(n), float(total or 0.0), as_utc(last))
        for cid, n, total, last in session.execute(stmt)
        if cid is not None and last is not None
    ]


def save_segment_model(session: Session, kind: str, params: Mapping[str, Any]) -> int:
    """Store a new version of a segmentation model; returns its version number."""
    latest = session.scalar(select(func.max(SegmentModel.version)).where(SegmentModel.kind == kind))
    version = int(latest or 0) + 1
    session.add(SegmentModel(kind=kind, version=version, params=dict(params)))
    return version


def latest_segment_model(session: Session, kind: str) -> SegmentModel | None:
    """The newest model of a kind, or ``None``."""
    return session.scalar(
        select(SegmentModel)
        .where(SegmentModel.kind == kind)
        .order_by(SegmentModel.version.desc())
        .limit(1)
    )


def set_segments(
    session: Session, kind: str, version: int | None, segments: Mapping[int, str]
) -> None:
    """Upsert ``{customer id: segment}`` for one kind.

    Customers who turned personalisation (and with it analytics) off are never assigned a
    segment, whichever fit or rule asks: their rows of this kind are removed instead.
    """
    opted_out = set(
        session.scalars(
            select(Profile.customer_id).where(
                Profile.personalisation.is_(False), Profile.customer_id.is_not(None)
            )
        )
    )
    if opted_out:
        withheld = [cid for cid in segments if cid in opted_out]
        if withheld:
            session.execute(
                delete(CustomerSegment).where(
                    CustomerSegment.kind == kind, CustomerSegment.customer_id.in_(withheld)
                )
            )
        segments = {cid: seg for cid, seg in segments.items() if cid not in opted_out}
    existing = {
        row.customer_id: row
        for row in session.scalars(
            select(CustomerSegment).where(
                CustomerSegment.kind == kind, CustomerSegment.customer_id.in_(list(segments))
            )
        )
    }
    now = utcnow()
    for cid, segment in segments.items():
        row = existing.get(cid)
        if row is None:
            session.add(
                CustomerSegment(
                    customer_id=cid,
                    kind=kind,
                    segment=segment,
                    model_version=version,
                    updated_at=now,
                )
            )
        elif row.segment != segment or row.model_version != version:
            row.segment, row.model_version, row.updated_at = segment, version, now


def segments_of(session: Session, customer_id: int) -> dict[str, str]:
    """``{kind: segment}`` of one customer."""
    rows = session.scalars(
        select(CustomerSegment).where(CustomerSegment.customer_id == customer_id)
    )
    return {r.kind: r.segment for r in rows}


def segment_sizes(session: Session, kind: str) -> dict[str, int]:
    """How many customers each segment of a kind holds."""
    rows = session.execute(
        select(CustomerSegment.segment, func.count())
        .where(CustomerSegment.kind == kind)
        .group_by(CustomerSegment.segment)
    )
    return {seg: int(n) for seg, n in rows}


def customer_ids(session: Session) -> list[int]:
    """All customer ids."""
    return list(session.scalars(select(Customer.id).order_by(Customer.id)))
