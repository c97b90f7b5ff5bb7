"""Replies as data: a short text, product cards (custom JSON payload) and quick replies.

Channels that show cards get text + cards; others get the same content as readable text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tailor.recommend.criteria import Criteria
from tailor.recommend.reasons import money
from tailor.recommend.service import ProductDetails, Recommendation, Suggestion

#: Input channels whose clients render the ``product_cards`` payload.
#: Channels that receive the ``product_cards`` payload: the web page and widget render it, and
#: the messaging platforms' output channels (bot/tailor_channels.py) turn it into Telegram
#: keyboards, Slack blocks, Messenger templates or numbered SMS text.
RICH_CHANNELS: frozenset[str] = frozenset(
    {"rest", "socketio", "tailor", "callback", "telegram", "slack", "facebook", "twilio"}
)


@dataclass
class Reply:
    """One bot message: text, optional custom payload and quick-reply buttons."""

    text: str
    payload: dict[str, Any] | None = None
    buttons: list[dict[str, str]] = field(default_factory=list)


def quick(title: str, payload: str | None = None) -> dict[str, str]:
    """A quick-reply button; the payload is what the shopper 'says' when clicking."""
    return {"title": title, "payload": payload or title}


def _card_line(i: int, s: Suggestion) -> str:
    rating = f", {s.rating:.1f}★ ({s.review_count})" if s.rating is not None else ""
    brand = f" by {s.brand}" if s.brand else ""
    return f"{i}. {s.title}{brand} — {money(s.price, s.currency)}{rating}. {s.reason}."


def recommendation_replies(
    rec: Recommendation, mode: str, rich: bool, notes: Sequence[str] = ()
) -> list[Reply]:
    """Messages for a recommendation turn."""
    c = rec.criteria
    if not rec.suggestions:
        what = c.describe()
        text = f"I couldn't find anything for {what}."
        buttons = [quick("Start over", "start over")]
        if rec.relaxations:
            options = "; ".join(f"{r.label} ({r.matches} found)" for r in rec.relaxations)
            text += f" I could look with {options}."
            if any(
                r.criteria.price_max is None and c.price_max is not None for r in rec.relaxations
            ):
                buttons.insert(0, quick("Raise my budget", "show me pricier ones"))
            if c.colour:
                buttons.insert(0, quick("Any colour", "any colour is fine"))
        if "no_reference_price" in notes:
            text = "Tell me a budget, e.g. “under $50”, and I'll find cheaper options."
        return [Reply(text=text, buttons=buttons)]

    lead = _lead(rec, mode)
    buttons = [
        quick("Cheaper", "show me cheaper ones"),
        quick("Show more", "show me more"),
        quick("Compare the first two", "compare the first two"),
        quick("Start over", "start over"),
    ]
    if len(rec.suggestions) < 2:
        buttons = [b for b in buttons if not b["title"].startswith("Compare")]
    if rich:
        payload = {
            "type": "product_cards",
            "criteria": c.describe(),
            "total_matches": rec.total_matches,
            "products": [s.to_card() for s in rec.suggestions],
        }
        return [Reply(text=lead, payload=payload, buttons=buttons)]
    lines = [lead] + [_card_line(i, s) for i, s in enumerate(rec.suggestions, 1)]
    lines.append("Say “tell me more about the second one”, “cheaper” or “compare the first two”.")
    return [Reply(text="\n".join(lines), buttons=buttons)]


def _lead(rec: Recommendation, mode: str) -> str:
    c = rec.criteria
    n = len(rec.suggestions)
    what = c.describe()
    if mode == "similar" and rec.similar_title:
        return f"Here are {n} like {rec.similar_title}:"
    if mode == "more":
        return f"Here are {n} more for {what}:"
    if mode == "exclude_shown":
        return f"No problem — here are {n} different ones for {what}:"
    if mode == "refine":
        return f"Updated: {n} picks for {what}:"
    total = rec.total_matches
    of = f" (of {total} matching)" if total > n else ""
    return f"Here are {n} picks for {what}{of}:"


def details_replies(details: ProductDetails, rich: bool) -> list[Reply]:
    """Messages describing one product."""
    d = details
    facts = [money(d.price, d.currency)]
    if d.rating is not None:
        facts.append(f"{d.rating:.1f}/5 from {d.review_count} reviews")
    if d.colour:
        facts.append(d.colour)
    if d.material:
        facts.append(d.material)
    if d.sizes:
        facts.append("sizes " + ", ".join(d.sizes[:10]))
    facts.append("in stock" if d.stock > 0 else "out of stock")
    text = f"{d.title}{' by ' + d.brand if d.brand else ''}: " + " · ".join(facts) + "."
    text += f"\n{d.description.strip()}"
    if d.reviews:
        best = d.reviews[0]
        text += f"\nA shopper said ({best['rating']}★): “{best['text']}”"
    buttons = [quick("More like this", "more like this one"), quick("Show more", "show me more")]
    payload = {"type": "product_details", "product": d.to_json()} if rich else None
    return [Reply(text=text, payload=payload, buttons=buttons)]


def comparison_replies(
    items: Sequence[ProductDetails], positions: Sequence[int], rich: bool
) -> list[Reply]:
    """A side-by-side comparison of two or more products with a short verdict."""
    rows = []
    for pos, d in zip(positions, items, strict=True):
        rating = f"{d.rating:.1f}/5 ({d.review_count})" if d.rating is not None else "no rating"
        rows.append(
            f"#{pos + 1} {d.title} — {money(d.price, d.currency)}, {rating}"
            + (f", {d.colour}" if d.colour else "")
            + (f", {d.material}" if d.material else "")
            + ("" if d.stock > 0 else ", out of stock")
        )
    cheapest = min(range(len(items)), key=lambda i: items[i].price)
    best = max(range(len(items)), key=lambda i: (items[i].rating or 0.0, items[i].review_count))
    verdict = f"#{positions[cheapest] + 1} is the cheapest"
    if best != cheapest:
        verdict += f"; #{positions[best] + 1} is the best rated"
    else:
        verdict += " and the best rated"
    text = "Comparison:\n" + "\n".join(rows) + f"\n{verdict}."
    payload = (
        {
            "type": "comparison",
            "positions": [p + 1 for p in positions],
            "products": [d.to_json() for d in items],
            "cheapest": positions[cheapest] + 1,
            "best_rated": positions[best] + 1,
        }
        if rich
        else None
    )
    return [Reply(text=text, payload=payload)]


def criteria_summary(c: Criteria) -> str:
    """What the bot currently searches for, for confirmations."""
    return c.describe()
