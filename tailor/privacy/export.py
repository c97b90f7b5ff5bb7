"""Everything Tailor keeps about a shopper, as JSON (the export) and as a readable summary
(the chat's answer to "what do you know about me?")."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from tailor.analytics.events import ConversationEvent
from tailor.privacy.subject import (
    Subject,
    agent_actions_filter,
    check_access,
    events_filter,
    has_analytics_table,
    profiles_filter,
    senders_of,
)
from tailor.privacy.tracker import TrackerStore
from tailor.store.agents import AgentAction
from tailor.store.models import (
    ChannelLink,
    Customer,
    CustomerScore,
    CustomerSegment,
    Event,
    Profile,
    utcnow,
)

#: Where a shopper gets the full export and how they are forgotten, for the chat's summary.
EXPORT_HINT = (
    "For a full copy of it (JSON), use “Download my data” on the store's page "
    "(GET /api/privacy/export)."
)
FORGET_HINT = "To have all of it deleted, say “forget me” — I'll ask you to confirm first."


class DataExport(TypedDict):
    """The export's JSON body."""

    identity: str
    generated_at: str
    conversations: list[str]
    customer: dict[str, Any] | None
    consent: dict[str, Any]
    profiles: list[dict[str, Any]]
    segments: dict[str, str]
    scores: list[dict[str, Any]]
    channel_links: list[dict[str, Any]]
    events: list[dict[str, Any]]
    agent_actions: list[dict[str, Any]]
    analytics_events: list[dict[str, Any]]
    transcripts: dict[str, list[dict[str, Any]]]


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def export_data(session: Session, subject: Subject, tracker: TrackerStore) -> DataExport:
    """Everything stored about ``subject`` in Tailor's database and Rasa's tracker store.

    Raises :class:`~tailor.privacy.subject.ConversationOwned` for a request on a
    conversation that holds another shopper's data.
    """
    check_access(session, subject)
    senders = senders_of(session, subject)
    customer = (
        session.get(Customer, subject.customer_id) if subject.customer_id is not None else None
    )
    profiles = list(session.scalars(select(Profile).where(profiles_filter(subject, senders))))
    own = next((p for p in profiles if p.customer_id is not None), None) or (
        profiles[0] if profiles else None
    )
    events = session.scalars(
        select(Event).where(events_filter(subject, senders)).order_by(Event.created_at, Event.id)
    )
    segments: dict[str, str] = {}
    scores: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    if subject.customer_id is not None:
        segments = {
            s.kind: s.segment
            for s in session.scalars(
                select(CustomerSegment).where(CustomerSegment.customer_id == subject.customer_id)
            )
        }
        # Predictions about the customer (churn risk, restocks due) are profiling: theirs too.
        scores = [
            {
                "kind": sc.kind,
                "value": sc.value,
                "details": dict(sc.payload or {}),
                "model_version": sc.model_version,
                "updated_at": _iso(sc.updated_at),
            }
            for sc in session.scalars(
                select(CustomerScore)
                .where(CustomerScore.customer_id == subject.customer_id)
                .order_by(CustomerScore.kind)
            )
        ]
        links = [
            {
                "channel": link.channel,
                "user_id": link.user_id,
                "linked_at": _iso(link.created_at),
                "marketing_opt_in_at": _iso(link.marketing_opt_in_at),
            }
            for link in session.scalars(
                select(ChannelLink).where(ChannelLink.customer_id == subject.customer_id)
            )
        ]
    analytics: list[dict[str, Any]] = []
    if has_analytics_table(session):
        analytics = [
            {
                "conversation": e.sender_id,
                "type": e.event_type,
                "timestamp": e.timestamp,
                "text": e.text,
            }
            for e in session.scalars(
                select(ConversationEvent)
                .where(ConversationEvent.sender_id.in_(senders))
                .order_by(ConversationEvent.id)
            )
        ]
    return DataExport(
        identity="customer" if subject.identified else "anonymous",
        generated_at=utcnow().isoformat(),
        conversations=senders,
        customer=(
            {
                "external_id": customer.external_id,
                "name": customer.name,
                "email": customer.email,
                "age_band": customer.age_band,
                "gender": customer.gender,
                "country": customer.country,
                "region": customer.region,
                "attributes": dict(customer.attributes or {}),
                "created_at": _iso(customer.created_at),
            }
            if customer is not None
            else None
        ),
        consent={
            "personalisation": bool(own.personalisation) if own is not None else True,
            "recorded": own is not None,
        },
        profiles=[
            {
                "conversation": p.sender_id,
                "personalisation": bool(p.personalisation),
                "preferences": list(p.preferences or []),
                "created_at": _iso(p.created_at),
                "updated_at": _iso(p.updated_at),
            }
            for p in profiles
        ],
        segments=segments,
        scores=scores,
        channel_links=links,
        events=[
            {
                "kind": e.kind,
                "conversation": e.sender_id,
                "product_id": e.product_id,
                "value": e.value,
                "payload": dict(e.payload or {}),
                "at": _iso(e.created_at),
            }
            for e in events
        ],
        agent_actions=[
            {
                "conversation": a.sender_id,
                "kind": a.kind,
                "payload": dict(a.payload or {}),
                "at": _iso(a.created_at),
            }
            for a in session.scalars(
                select(AgentAction).where(agent_actions_filter(senders)).order_by(AgentAction.id)
            )
        ],
        analytics_events=analytics,
        transcripts={s: t for s in senders if (t := tracker.transcript(s))},
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


#: How event kinds read in the summary.
_KIND_WORDS = {
    "message": "message",
    "shown": "product shown to you",
    "click": "click on a product",
    "view": "product view",
    "details": "product you asked about",
    "compare": "comparison",
    "feedback": "reaction to a product",
    "cart": "item added to your cart",
    "purchase": "purchase",
    "handoff": "request for a person",
    "no_results": "search that found nothing",
    "trigger": "reminder or offer we sent you",
}


def summary_text(data: DataExport) -> str:
    """A readable answer to "what do you know about me?" (no raw JSON)."""
    parts: list[str] = []
    customer = data["customer"]
    if customer is not None:
        who = f"You're signed in as {customer['name']}"
        if customer.get("email"):
            who += f" ({customer['email']})"
        details = [
            f"age band {customer['age_band']}" if customer.get("age_band") else "",
            f"gender {customer['gender']}" if customer.get("gender") else "",
            ", ".join(x for x in (customer.get("region"), customer.get("country")) if x),
        ]
        known = "; ".join(d for d in details if d)
        parts.append(who + (f". From the store I have: {known}." if known else "."))
    else:
        parts.append(
            "You're not signed in, so I only know what was said and done in this conversation."
        )
    counts = Counter(e["kind"] for e in data["events"])
    if counts:
        listed = ", ".join(
            _plural(n, _KIND_WORDS.get(kind, kind)) for kind, n in counts.most_common()
        )
        span = _plural(len(data["conversations"]), "conversation")
        parts.append(f"Your activity ({span}): {listed}.")
    else:
        parts.append("I have no activity of yours on record.")
    prefs = [p for prof in data["profiles"] for p in prof["preferences"]]
    if prefs:
        said = "; ".join(
            f"{'' if p.get('positive', True) else 'not '}{p.get('value')}" for p in prefs[-8:]
        )
        parts.append(f"Things you told me you care about: {said}.")
    if data["segments"]:
        segs = ", ".join(f"{k}: {v}" for k, v in sorted(data["segments"].items()))
        parts.append(f"Customer groups you're in: {segs}.")
    if data["channel_links"]:
        chans = ", ".join(sorted({link["channel"] for link in data["channel_links"]}))
        parts.append(f"Linked messaging accounts: {chans}.")
    typed = sum(1 for t in data["transcripts"].values() for m in t if m["from"] == "user")
    if typed:
        parts.append(f"The chat history keeps {_plural(typed, 'message')} from you.")
    consent = data["consent"]["personalisation"]
    parts.append(
        "Personalised suggestions are on."
        if consent
        else "You've turned personalised suggestions off, so I don't use any of this to "
        "pick products for you."
    )
    parts.append(EXPORT_HINT)
    parts.append(FORGET_HINT)
    return " ".join(parts)
