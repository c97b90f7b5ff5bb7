"""Refinements of the current search: cheaper, pricier, another colour or brand, more, similar.

:data:`REFINEMENTS` maps each canonical value (the ``refinement`` entity's value after
Rasa's synonym mapping) to the phrases that express it. The same phrases are written into
the generated lookup table, so the entity and :func:`detect_refinement` (the fallback when
the entity is missing) agree.

Phrases are chosen to be unambiguous on their own: plain "like the ..." is left out (it
would turn "I don't like the red one" into "similar"), as are "budget" and "cheap" (which
usually describe the request rather than refine it). A bare "more" only counts when it is
(nearly) the whole message, see :data:`BARE_MORE`.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["BARE_MORE", "REFINEMENTS", "detect_refinement", "lookup_phrases"]

REFINEMENTS: dict[str, tuple[str, ...]] = {
    "cheaper": (
        "cheaper",
        "cheapest",
        "less expensive",
        "less pricey",
        "not so expensive",
        "not as expensive",
        "lower price",
        "lower prices",
        "lower priced",
        "lower-priced",
        "lower cost",
        "more affordable",
        "affordable",
        "budget-friendly",
        "budget friendly",
        "budget options",
        "on a budget",
        "inexpensive",
        "too expensive",
        "too pricey",
        "too pricy",
        "too costly",
        "too much money",
        "costs too much",
        "over my budget",
        "out of my budget",
        "out of my price range",
        "can't afford",
        "cannot afford",
        "less money",
        "save money",
        "reasonably priced",
        "bargain",
    ),
    "pricier": (
        "pricier",
        "more expensive",
        "higher price",
        "higher priced",
        "higher-priced",
        "high end",
        "high-end",
        "higher end",
        "higher-end",
        "premium",
        "fancier",
        "better quality",
        "higher quality",
        "top of the range",
        "top-end",
        "luxury",
        "upscale",
        "splurge",
        "spend more",
        "too cheap",
        "look cheap",
        "looks cheap",
    ),
    "other_colour": (
        "other colour",
        "other colours",
        "other color",
        "other colors",
        "another colour",
        "another color",
        "different colour",
        "different colours",
        "different color",
        "different colors",
        "other shades",
        "different shade",
        "colour options",
        "color options",
        "other colourways",
        "don't like the colour",
        "don't like the color",
        "hate the colour",
        "hate the color",
        "not this colour",
        "not this color",
        "not that colour",
        "not that color",
    ),
    "other_brand": (
        "other brand",
        "other brands",
        "another brand",
        "different brand",
        "different brands",
        "other makers",
        "different maker",
        "other manufacturers",
        "different manufacturer",
        "other labels",
        "brand options",
        "don't like the brand",
        "not this brand",
        "not that brand",
    ),
    "more": (
        "more",
        "show more",
        "show me more",
        "see more",
        "some more",
        "a few more",
        "more options",
        "more results",
        "more of them",
        "other options",
        "other ones",
        "different ones",
        "different options",
        "something else",
        "anything else",
        "next ones",
        "next page",
        "keep going",
        "what else",
    ),
    "similar": (
        "more like",
        "similar to",
        "similar",
        "something similar",
        "similar ones",
        "something like",
        "anything like",
        "ones like",
        "stuff like",
        "same style as",
        "in the same style",
        "along those lines",
        "along the lines of",
        "in that style",
    ),
}

#: Phrases that only count as "more" when they are the whole message ("more", "more please").
BARE_MORE: frozenset[str] = frozenset({"more"})
_BARE_MORE_MESSAGE = re.compile(
    r"^\s*(?:(?:ok(?:ay)?|yes|yeah|sure)[,!.]?\s+)?(?:some\s+)?more(?:\s+(?:please|pls|plz))?"
    r"(?:\s+of\s+(?:them|those|these))?\s*[.!?]*\s*$",
    re.IGNORECASE,
)


def lookup_phrases() -> dict[str, tuple[str, ...]]:
    """Phrases safe to put into the Rasa lookup table.

    Rasa turns a lookup table into one regex alternation, so at a given position only one
    phrase can win. A phrase whose last words begin a phrase of another refinement
    ("show me more" + "more expensive") would hide it, so such phrases, and
    :data:`BARE_MORE`, are left to :func:`detect_refinement`.
    """
    owner = _owners()
    words = {p: p.split() for p in owner}
    hiding: set[str] = set()
    for p, pw in words.items():
        for q, qw in words.items():
            if owner[p] == owner[q]:
                continue
            for k in range(1, min(len(pw), len(qw))):
                if pw[-k:] == qw[:k] and len(qw) > k:
                    hiding.add(p)
    if "more" in owner:
        hiding.add("more")
    return {
        canonical: tuple(p for p in phrases if p not in BARE_MORE and p not in hiding)
        for canonical, phrases in REFINEMENTS.items()
    }


@lru_cache(maxsize=1)
def _owners() -> dict[str, str]:
    owner: dict[str, str] = {}
    for canonical, phrases in REFINEMENTS.items():
        for phrase in phrases:
            key = phrase.lower()
            if key in owner and owner[key] != canonical:
                raise ValueError(
                    f"refinement phrase {phrase!r} is listed under both {owner[key]!r} and "
                    f"{canonical!r}; each phrase must have one meaning"
                )
            owner[key] = canonical
    return owner


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern[str]]:
    patterns: dict[str, re.Pattern[str]] = {}
    for canonical, phrases in REFINEMENTS.items():
        usable = sorted(
            (p.lower() for p in phrases if p not in BARE_MORE), key=lambda p: (-len(p), p)
        )
        body = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in usable)
        patterns[canonical] = re.compile(rf"(?<![\w'])(?:{body})(?![\w'])", re.IGNORECASE)
    return patterns


def detect_refinement(text: str) -> str | None:
    """The refinement a message asks for (a key of :data:`REFINEMENTS`), or ``None``.

    Any specific refinement beats "more" ("show me more like the second" → similar,
    "show me more expensive ones" → pricier); among those the longest phrase wins. A bare
    "more" counts only when it is the whole message ("more please").
    """
    if not text:
        return None
    norm = text.replace("\u2019", "'")
    best: tuple[int, int, str] | None = None  # (specific?, length, canonical)
    for canonical, pattern in _patterns().items():
        for m in pattern.finditer(norm):
            key = (int(canonical != "more"), len(m.group(0)), canonical)
            if best is None or key[:2] > best[:2]:
                best = key
    if best is not None:
        return best[2]
    if _BARE_MORE_MESSAGE.match(norm):
        return "more"
    return None
