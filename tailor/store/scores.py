"""Predicted scores per customer (churn risk, restock due): stored, read and ranked.

The scores are written by ``tailor.profiles.predict.fit_scores``; the caller owns the session.
Customers who turned personalisation off are never scored: their rows are removed instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tailor.store.models import CustomerScore, Profile, as_utc, utcnow

__all__ = ["ScoreRow", "opted_out_customers", "score_rows", "scores_of", "set_scores"]

_CHUNK = 500


@dataclass(frozen=True)
class ScoreRow:
    """One stored score."""

    customer_id: int
    kind: str
    value: float
    payload: dict[str, Any]
    model_version: int | None
    updated_at: datetime


def _row(s: CustomerScore) -> ScoreRow:
    return ScoreRow(
        customer_id=s.customer_id,
        kind=s.kind,
        value=float(s.value),
        payload=dict(s.payload or {}),
        model_version=s.model_version,
        updated_at=as_utc(s.updated_at),
    )


def opted_out_customers(session: Session) -> set[int]:
    """Ids of the customers who turned personalisation (and with it profiling) off."""
    return set(
        session.scalars(
            select(Profile.customer_id).where(
                Profile.personalisation.is_(False), Profile.customer_id.is_not(None)
            )
        )
    )


def set_scores(
    session: Session,
    kind: str,
    version: int | None,
    scores: Mapping[int, tuple[float, Mapping[str, Any]]],
    replace: bool = True,
) -> int:
    """Store ``{customer id: (value, payload)}`` for one kind; returns the rows written.

    With ``replace`` (the default, a full refit) the kind's rows of customers not in
    ``scores`` are deleted, so no stale score outlives a refit. Opted-out customers' rows
    are deleted whatever ``scores`` says.
    """
    if not kind or len(kind) > 32:
        raise ValueError(f"score kind must be 1-32 characters, got {kind!r}")
    for cid, (value, _payload) in scores.items():
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"score of customer {cid} for {kind!r} is not finite: {value!r}")
    opted_out = opted_out_customers(session)
    wanted = {cid: v for cid, v in scores.items() if cid not in opted_out}
    if replace:
        stale = set(
            session.scalars(select(CustomerScore.customer_id).where(CustomerScore.kind == kind))
        ) - set(wanted)
    else:
        stale = opted_out & set(scores)
    stale_ids = sorted(stale)
    for start in range(0, len(stale_ids), _CHUNK):
        session.execute(
            delete(CustomerScore).where(
                CustomerScore.kind == kind,
                CustomerScore.customer_id.in_(stale_ids[start : start + _CHUNK]),
            ),
            execution_options={"synchronize_session": False},
        )
    ids = sorted(wanted)
    existing: dict[int, CustomerScore] = {}
    for start in range(0, len(ids), _CHUNK):
        for row in session.scalars(
            select(CustomerScore).where(
                CustomerScore.kind == kind,
                CustomerScore.customer_id.in_(ids[start : start + _CHUNK]),
            )
        ):
            existing[row.customer_id] = row
    now = utcnow()
    for cid in ids:
        value, payload = wanted[cid]
        current = existing.get(cid)
        if current is None:
            session.add(
                CustomerScore(
                    customer_id=cid,
                    kind=kind,
                    value=float(value),
                    payload=dict(payload),
                    model_version=version,
                    updated_at=now,
                )
            )
        else:
            current.value, current.payload = float(value), dict(payload)
            current.model_version, current.updated_at = version, now
    session.flush()
    return len(ids)


def scores_of(session: Session, customer_id: int) -> dict[str, ScoreRow]:
    """``{kind: score}`` of one customer."""
    rows = session.scalars(select(CustomerScore).where(CustomerScore.customer_id == customer_id))
    return {r.kind: _row(r) for r in rows}


def score_rows(
    session: Session,
    kind: str,
    min_value: float | None = None,
    max_value: float | None = None,
    limit: int | None = None,
    descending: bool = True,
) -> list[ScoreRow]:
    """The stored scores of one kind, optionally within ``[min_value, max_value]``, ordered by
    value (highest first unless ``descending`` is false), at most ``limit`` rows."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    stmt = select(CustomerScore).where(CustomerScore.kind == kind)
    if min_value is not None:
        stmt = stmt.where(CustomerScore.value >= min_value)
    if max_value is not None:
        stmt = stmt.where(CustomerScore.value <= max_value)
    order = CustomerScore.value.desc() if descending else CustomerScore.value.asc()
    stmt = stmt.order_by(order, CustomerScore.customer_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_row(r) for r in session.scalars(stmt)]
