"""A customer's whole profile in one view: who, where, what they do, what they value.

What ``tailor profile show`` prints and what an assist panel or a "your data" page reads.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tailor.profiles.predict import outlook
from tailor.profiles.rules import demographic_segment, geographic_segment
from tailor.store.models import Customer, CustomerSegment, Event, Profile, utcnow
from tailor.store.profiles import customer_by_external_id

#: Event kinds counted as behaviour.
BEHAVIOUR_KINDS = ("purchase", "view", "cart", "click", "details", "feedback", "message")


@dataclass(frozen=True)
class ProfileSummary:
    """Everything Tailor keeps about one customer."""

    external_id: str
    name: str
    age_band: str | None
    gender: str | None
    country: str | None
    region: str | None
    climate: str | None
    behaviour: dict[str, int]
    spent: float
    last_purchase: datetime | None
    segments: dict[str, str]
    preferences: list[dict[str, Any]] = field(default_factory=list)
    personalisation: bool = True
    #: Churn risk and restocks due now (``Outlook.to_json``), when the models are fitted.
    predictions: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict."""
        data = dict(self.__dict__)
        data["last_purchase"] = self.last_purchase.isoformat() if self.last_purchase else None
        return data

    def render(self) -> str:
        """A readable block of text."""
        lines = [
            f"{self.name} ({self.external_id})",
            f"  demographics : age {self.age_band or '?'}, gender {self.gender or 'not given'}"
            f" → {demographic_segment(self.age_band)}",
            f"  geography    : {self.region or '?'}, {self.country or '?'}"
            f" ({self.climate or 'climate unknown'}) → "
            f"{geographic_segment(self.country, self.climate)}",
            "  behaviour    : "
            + ", ".join(f"{n} {k}" for k, n in self.behaviour.items() if n)
            + f"; spent {self.spent:.2f}"
            + (f"; last purchase {self.last_purchase:%Y-%m-%d}" if self.last_purchase else ""),
            "  segments     : " + ", ".join(f"{k}: {v}" for k, v in sorted(self.segments.items())),
            "  stated       : "
            + (
                "; ".join(
                    f"{'' if p.get('positive', True) else 'not '}{p.get('value')}"
                    f" ({p.get('kind')}: “{p.get('evidence', '')}”)"
                    for p in self.preferences
                )
                or "nothing yet"
            ),
            f"  personalised : {'yes' if self.personalisation else 'no (opted out)'}",
        ]
        if self.predictions is not None:
            risk = self.predictions.get("churn_risk")
            due = self.predictions.get("restock") or []
            lines.append(
                "  predicted    : "
                + (
                    f"churn risk {risk:.0%} ({self.predictions.get('churn_band')})"
                    if risk is not None
                    else "churn risk unknown"
                )
                + "; "
                + ("; ".join(d["reason"] for d in due) if due else "no restock due")
            )
        return "\n".join(lines)


def profile_summary(
    session: Session, external_id: str, now: datetime | None = None
) -> ProfileSummary | None:
    """The profile of the customer the store knows as ``external_id`` (None if unknown);
    the predictions are made at ``now`` (default: the current time)."""
    customer = customer_by_external_id(session, external_id)
    if customer is None:
        return None
    return _summary(session, customer, now or utcnow())


def _summary(session: Session, customer: Customer, now: datetime) -> ProfileSummary:
    counts: Counter[str] = Counter(
        {
            kind: int(n)
            for kind, n in session.execute(
                select(Event.kind, func.count())
                .where(Event.customer_id == customer.id, Event.kind.in_(BEHAVIOUR_KINDS))
                .group_by(Event.kind)
            )
        }
    )
    spent, last = session.execute(
        select(func.coalesce(func.sum(Event.value), 0.0), func.max(Event.created_at)).where(
            Event.customer_id == customer.id, Event.kind == "purchase"
        )
    ).one()
    segments = {
        row.kind: row.segment
        for row in session.scalars(
            select(CustomerSegment).where(CustomerSegment.customer_id == customer.id)
        )
    }
    profile = session.scalar(select(Profile).where(Profile.customer_id == customer.id))
    attrs = customer.attributes or {}
    return ProfileSummary(
        external_id=customer.external_id,
        name=customer.name,
        age_band=customer.age_band,
        gender=customer.gender,
        country=customer.country,
        region=customer.region,
        climate=attrs.get("climate") if isinstance(attrs.get("climate"), str) else None,
        behaviour={kind: counts.get(kind, 0) for kind in BEHAVIOUR_KINDS},
        spent=float(spent or 0.0),
        last_purchase=last,
        segments=segments,
        preferences=list(profile.preferences or []) if profile is not None else [],
        personalisation=profile.personalisation if profile is not None else True,
        predictions=_predictions(session, customer.id, now),
    )


def _predictions(session: Session, customer_id: int, now: datetime) -> dict[str, Any] | None:
    seen = outlook(session, customer_id, now)
    return seen.to_json() if seen is not None else None
