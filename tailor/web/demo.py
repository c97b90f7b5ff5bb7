"""Demo sign-in: a handful of demo customers who together span the segments.

In the demo the web app plays the store's site: it lists a few customers and signs a token
for the one the visitor picks. Off (404) when ``Settings.demo_login`` is false.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tailor.profiles.segments import KIND as BEHAVIOURAL
from tailor.store.models import Customer, CustomerSegment
from tailor.store.segments import segments_of

#: How many customers the "Shop as" list offers.
DEMO_CUSTOMER_COUNT = 8
#: Segment kinds to spread the picks over, most telling first (behavioural RFM segments).
SPREAD_KINDS: tuple[str, ...] = (BEHAVIOURAL, "demographic", "geographic")
#: Lifetime of a demo customer token, in seconds.
DEMO_TOKEN_TTL = 3600


def pick_demo_customers(session: Session, limit: int = DEMO_CUSTOMER_COUNT) -> list[Customer]:
    """Up to ``limit`` customers: the first of each behavioural segment, then of each
    demographic and geographic segment, then the first customers by id.

    One grouped query per segment kind (``min(customer_id)`` per segment), so it stays fast
    on a large customer table.
    """
    chosen: list[int] = []
    for kind in SPREAD_KINDS:
        rows = session.execute(
            select(CustomerSegment.segment, func.min(CustomerSegment.customer_id))
            .where(CustomerSegment.kind == kind)
            .group_by(CustomerSegment.segment)
            .order_by(CustomerSegment.segment)
        )
        for _segment, cid in rows:
            if len(chosen) >= limit:
                break
            if cid is not None and cid not in chosen:
                chosen.append(int(cid))
    if len(chosen) < limit:
        stmt = select(Customer.id).order_by(Customer.id).limit(limit - len(chosen))
        if chosen:
            stmt = stmt.where(Customer.id.not_in(chosen))
        chosen += list(session.scalars(stmt))
    found = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(chosen)))}
    return [found[cid] for cid in chosen if cid in found]


def demo_customer_list(session: Session, limit: int = DEMO_CUSTOMER_COUNT) -> list[dict[str, Any]]:
    """The "Shop as" list: name, external id and ``{kind: segment}`` of each pick."""
    return [
        {"external_id": c.external_id, "name": c.name, "segments": segments_of(session, c.id)}
        for c in pick_demo_customers(session, limit)
    ]
