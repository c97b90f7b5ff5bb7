"""Why a product is suggested: short, factual reasons built from the criteria it satisfies."""

from __future__ import annotations

from typing import Protocol

from tailor.recommend.criteria import Criteria


class Explainable(Protocol):
    """What a reason is built from: a stored product or anything shaped like one."""

    category: str
    brand: str | None
    colour: str | None
    material: str | None
    price: float
    currency: str
    rating: float | None
    review_count: int


def money(amount: float, currency: str = "USD") -> str:
    """``$64.99`` / ``€12`` style price text."""
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get((currency or "USD").upper())
    text = f"{amount:,.2f}"
    if text.endswith(".00"):
        text = text[:-3]
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


def reason_for(product: Explainable, criteria: Criteria, similar_title: str | None = None) -> str:
    """One sentence explaining the suggestion, most specific facts first."""
    category, brand, colour, material = (
        product.category,
        product.brand,
        product.colour,
        product.material,
    )
    price, currency = float(product.price), product.currency
    rating, review_count = product.rating, product.review_count or 0
    parts: list[str] = []
    if similar_title:
        parts.append(f"similar to {similar_title}")
    leaf = category.split(" > ")[-1]
    if criteria.category and category.lower().startswith(criteria.category.lower()):
        parts.append(f"{leaf.lower()} as asked")
    if criteria.brands and brand:
        parts.append(f"from {brand} as you asked")
    if criteria.colour and colour:
        parts.append(f"in {colour}")
    if criteria.material and material:
        parts.append(f"made of {material}")
    if criteria.price_max is not None:
        # "under": the cap may be the shopper's budget or one derived from "cheaper".
        parts.append(f"{money(price, currency)}, under {money(criteria.price_max)}")
    elif criteria.price_min is not None:
        parts.append(f"{money(price, currency)}, above {money(criteria.price_min)}")
    if rating is not None and review_count >= 3 and rating >= 4.0:
        parts.append(f"rated {rating:.1f}/5 by {review_count} shoppers")
    if criteria.exclude_brands and brand:
        parts.append(f"not {', '.join(criteria.exclude_brands)}")
    if not parts:
        parts.append(f"a close match for “{criteria.query_text() or leaf}”")
    text = "; ".join(parts[:4])
    return text[0].upper() + text[1:]
