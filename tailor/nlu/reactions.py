"""What a reaction to shown products is about: their colour, price, brand, or the product.

"I hate that colour" → colour; "too expensive" → price; "not that brand" → brand;
"meh", "not my style", "ugly" → the product itself. Which products it refers to is decided
by the caller (ordinals, else the one the shopper last looked at, else all shown).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Aspect = Literal["colour", "price", "brand", "product"]

_ASPECTS: tuple[tuple[Aspect, re.Pattern[str]], ...] = (
    ("colour", re.compile(r"\b(colou?rs?|shades?|hues?|tones?)\b", re.I)),
    (
        "price",
        re.compile(
            r"\b(expensive|pricey|pricy|price[sd]?|costs?|costly|overpriced|budget|"
            r"too much money|dear|afford)\b",
            re.I,
        ),
    ),
    ("brand", re.compile(r"\b(brands?|makers?|labels?|manufacturers?)\b", re.I)),
)


@dataclass(frozen=True)
class Reaction:
    """The aspect a reaction is about."""

    aspect: Aspect


def parse_reaction(text: str) -> Reaction:
    """The aspect of a reaction (the first named one wins; the product if none is named)."""
    found: list[tuple[int, Aspect]] = []
    for aspect, pattern in _ASPECTS:
        m = pattern.search(text or "")
        if m:
            found.append((m.start(), aspect))
    if not found:
        return Reaction("product")
    return Reaction(min(found)[1])
