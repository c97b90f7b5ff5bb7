"""Psychographics: stated values, styles and interests picked up from what the shopper says,
and the psychographic segment they (with browsing tags) point to.

A lexicon, not a model: every preference can be traced to the words that set it, which is
what a profile shown back to a customer ("you told us you care about sustainability") needs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Kind = Literal["value", "style", "interest"]

#: (kind, preference) → trigger phrases (lower case, matched on word boundaries).
LEXICON: dict[tuple[Kind, str], tuple[str, ...]] = {
    ("value", "sustainability"): (
        "sustainab",
        "eco-friendly",
        "eco friendly",
        "environment",
        "organic",
        "recycled",
        "ethical",
        "fair trade",
        "planet",
        "green choice",
        "carbon",
    ),
    ("value", "quality"): ("quality", "built to last", "durable", "long-lasting", "last for years"),
    ("value", "value for money"): (
        "bargain",
        "good deal",
        "value for money",
        "on a budget",
        "affordable",
        "cheap",
    ),
    ("value", "local"): ("locally made", "local brand", "made locally", "support local"),
    ("style", "minimal"): ("minimal", "minimalist", "simple design", "clean lines", "understated"),
    ("style", "classic"): ("classic", "timeless", "traditional"),
    ("style", "bold"): (
        "bold",
        "colourful",
        "colorful",
        "bright colours",
        "bright colors",
        "statement",
    ),
    ("style", "sporty"): ("sporty", "athletic", "athleisure"),
    ("style", "luxury"): ("luxury", "luxurious", "premium", "high-end", "designer"),
    ("interest", "outdoors"): ("hiking", "camping", "outdoors", "trail", "climbing", "mountains"),
    ("interest", "running"): ("running", "marathon", "jogging", "5k", "10k"),
    ("interest", "fitness"): ("gym", "fitness", "workout", "yoga", "pilates", "training"),
    ("interest", "tech"): ("gadget", "tech", "smart home", "gaming", "gamer"),
    ("interest", "home"): ("home decor", "interior", "cooking", "baking", "gardening"),
    ("interest", "travel"): ("travel", "travelling", "traveling", "trips", "vacation", "holiday"),
    ("interest", "family"): ("my kids", "my children", "my baby", "for the family", "toddler"),
}

#: Phrases that turn a mention into a statement about the shopper ("I love hiking"). Request
#: verbs (want, need, looking for) are left out on purpose: "I need running shoes" is a
#: search, not a trait.
_STANCE = re.compile(
    r"\b(i|i'm|im|i am|we|we're|my|me)\b.{0,40}?\b(care|love|like|into|prefer|value|"
    r"enjoy|fan|go|usually|always|mostly|big on|passionate|"
    r"hate|dislike|avoid|can't stand)",
    re.IGNORECASE,
)
#: A sentence that asks for something ("I need running shoes", "I'd like a minimal lamp")
#: is a search, unless it also states a lasting stance ("I love hiking, I need boots").
_REQUEST = re.compile(
    r"\b(want|need|looking for|searching for|show me|find me|get me|buy|"
    r"i'd like|i would like|we'd like|we would like)\b",
    re.IGNORECASE,
)
_LASTING = re.compile(
    r"\b(care|love|into|prefer|value|enjoy|fan|usually|always|mostly|big on|passionate|"
    r"hate|dislike|avoid|can't stand)\b",
    re.IGNORECASE,
)
_NEGATION = re.compile(
    r"\b(don't|dont|do not|not|never|no|hate|dislike|isn't|aren't)\b", re.IGNORECASE
)

#: Psychographic segment → the preferences (and browsing tags) that point to it.
SEGMENTS: dict[str, frozenset[str]] = {
    "conscious consumers": frozenset(
        {"sustainability", "local", "eco-friendly", "organic", "recycled", "vegan", "reusable"}
    ),
    "minimalists": frozenset({"minimal", "classic", "basics", "everyday", "timeless"}),
    "trend seekers": frozenset({"bold", "luxury", "designer", "streetwear", "party", "retro"}),
    "active & outdoor": frozenset(
        {
            "outdoors",
            "outdoor",
            "running",
            "fitness",
            "sporty",
            "sport",
            "waterproof",
            "breathable",
            "hiking",
            "camping",
            "backpacking",
            "cycling",
            "yoga",
            "trail",
        }
    ),
    "tech enthusiasts": frozenset(
        {"tech", "wireless", "smart", "bluetooth", "gaming", "4k", "usb-c", "smartwatch"}
    ),
    "homebodies": frozenset(
        {"home", "family", "living room", "cosy", "bedroom", "cooking", "kids", "home office"}
    ),
    "value seekers": frozenset({"value for money"}),
    "quality seekers": frozenset({"quality"}),
}
NO_SIGNAL = "not enough signal"


@dataclass(frozen=True)
class Preference:
    """One stated preference and the words that set it."""

    kind: Kind
    value: str
    evidence: str
    positive: bool = True


# "(?<!\s)": a "but" is only looked for from the start of a run of spaces, so a long run of
# whitespace is scanned once, not once per position (quadratic on 100,000 spaces).
_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+|(?<!\s)\s+but\s+")


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_BREAK.split(text) if s.strip()]


def extract_preferences(text: str) -> list[Preference]:
    """Preferences the shopper states about themselves in ``text``.

    Only statements about the shopper count ("I care about sustainability", "we love
    hiking"); a product request alone ("hiking boots") is a search, not a trait. A negated
    statement ("I don't care about brands", "I hate bold colours") yields ``positive=False``.
    """
    found: dict[tuple[Kind, str], Preference] = {}
    for sentence in _sentences(text):
        lowered = sentence.lower()
        if not _STANCE.search(lowered):
            continue
        if _REQUEST.search(lowered) and not _LASTING.search(lowered):
            continue
        negative = bool(_NEGATION.search(lowered))
        for (kind, value), triggers in LEXICON.items():
            for trigger in triggers:
                if re.search(rf"(?<![\w-]){re.escape(trigger)}", lowered):
                    found.setdefault(
                        (kind, value), Preference(kind, value, sentence.strip(), not negative)
                    )
                    break
    return list(found.values())


def psychographic_segment(
    preferences: Iterable[str], browsing_tags: Iterable[str] = (), min_signal: int = 1
) -> str:
    """The segment most supported by stated preferences (weight 2) and browsing tags (1).

    Ties go to the order of :data:`SEGMENTS`; with less than ``min_signal`` support the answer
    is :data:`NO_SIGNAL` rather than a guess.
    """
    votes: Counter[str] = Counter()
    prefs = {p.lower() for p in preferences}
    tags = Counter(t.lower() for t in browsing_tags)
    for segment, markers in SEGMENTS.items():
        votes[segment] += 2 * len(prefs & markers)
        votes[segment] += sum(n for tag, n in tags.items() if tag in markers)
    if not votes or max(votes.values()) < min_signal:
        return NO_SIGNAL
    best = max(votes.values())
    return next(s for s in SEGMENTS if votes[s] == best)
