"""The text of a product that gets embedded."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

#: Word budget for the whole text. all-MiniLM-L6-v2 reads at most 256 word pieces and English
#: averages ~1.3 pieces per word, so 170 words keeps nearly every text whole.
MAX_WORDS = 170

_SPACE = re.compile(r"\s+")


def _clean(value: Any) -> str:
    if value is None:
        return ""
    return _SPACE.sub(" ", str(value)).strip()


def _leaf(category: Any) -> str:
    text = _clean(category)
    return text.rsplit(">", 1)[-1].strip() if text else ""


def _tags(tags: Iterable[Any] | None) -> str:
    seen: list[str] = []
    for tag in tags or ():
        text = _clean(tag)
        if text and text.casefold() not in (s.casefold() for s in seen):
            seen.append(text)
    return ", ".join(seen)


def product_text(product: Any, max_words: int = MAX_WORDS) -> str:
    """Embedding text: title, brand, category leaf, colour, material, tags, then description.

    Works on any object with the Product attributes. Short fields come first so truncation
    (to ``max_words`` words, description last) never loses them; empty fields are skipped.
    Example: ``"Pegasus 40. Brand: Nike. Running Shoes. Colour: black. Material: mesh.
    Tags: road, cushioned. Responsive everyday trainer..."``.
    """
    parts: list[str] = []
    title = _clean(getattr(product, "title", ""))
    if title:
        parts.append(title.rstrip(".") + ".")
    for label, value in (
        ("Brand", _clean(getattr(product, "brand", None))),
        ("", _leaf(getattr(product, "category", None))),
        ("Colour", _clean(getattr(product, "colour", None))),
        ("Material", _clean(getattr(product, "material", None))),
        ("Tags", _tags(getattr(product, "tags", None))),
    ):
        if value:
            parts.append(f"{label}: {value}." if label else f"{value}.")
    head = " ".join(parts)
    budget = max_words - len(head.split())
    description = _clean(getattr(product, "description", ""))
    if description and budget > 0:
        words = description.split(" ")
        if len(words) > budget:
            description = " ".join(words[:budget])
        head = f"{head} {description}" if head else description
    return head


def text_hash(text: str) -> str:
    """SHA-1 of an embedding text; equal hashes mean the stored vector is still valid."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()
