"""Price expressions in shopper messages: "under $80", "between 50 and 100", "around €40".

A number only counts as a price when a currency marks it ("$80", "80 bucks", "€50",
"1.5k") or a price cue word governs it ("under 80", "at least 150", "between 50 and 100").
Sizes ("size 10"), ordinals ("2nd", "#3"), counts ("2 pairs") and ratings ("over 4 stars")
never parse.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["APPROX_SPREAD", "PriceRange", "parse_price", "price_spans"]

#: "around $40" means 40 ± this fraction.
APPROX_SPREAD = 0.2


@dataclass(frozen=True)
class PriceRange:
    """A price band; either bound may be open (``None``)."""

    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.min is None and self.max is None:
            raise ValueError("PriceRange needs at least one of min or max")


# --- amounts ---------------------------------------------------------------------------

_UNITS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SMALL = "|".join([*_TEENS, *_UNITS])
_TEN = "|".join(_TENS)
# "fifty", "twenty-five", "a hundred", "two hundred", "one thousand", "ten" (small numbers
# only count when a currency word follows; see _is_amount).
_WORD_NUMBER = (
    rf"(?:(?:a|an|one|{'|'.join(_UNITS)})\s+(?:hundred|thousand|grand)"
    rf"(?:\s+(?:and\s+)?(?:(?:{_TEN})(?:[\s-](?:{'|'.join(_UNITS)}))?|{_SMALL}))?"
    rf"|(?:{_TEN})(?:[\s-](?:{'|'.join(_UNITS)}))?"
    rf"|{_SMALL})"
)
_CURRENCY_WORD = r"(?:us\s+)?dollars?|bucks?|usd|eur|euros?|pounds?(?:\s+sterling)?|quid|gbp"
_AMOUNT = re.compile(
    r"(?<![\w.#$€£/])"
    r"(?:(?P<pre>[$€£])\s?)?"
    rf"(?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|{_WORD_NUMBER}\b)"
    r"(?:\s?(?P<k>k)\b)?"
    rf"(?:\s?(?P<post>[$€£]|(?:{_CURRENCY_WORD})\b))?",
)
# A number followed by one of these is a count or a measure, not a price.
_NON_PRICE_UNIT = re.compile(
    r"\s*(?:pairs?|items?|ones?|options?|results?|products?|pieces?|pcs|packs?|sets?|"
    r"stars?|star rating|reviews?|inch(?:es)?|cm|mm|m\b|km|ft|feet|foot|"
    r"meters?|metres?|miles?|gb|tb|mb|kg|g\b|grams?|lbs?|oz|ml|l\b|lit(?:er|re)s?|"
    r"%|percent|hours?|hrs?|h\b|minutes?|mins?|days?|weeks?|months?|years?|yrs?|"
    r"people|persons?|seats?|watts?|w\b|mah|hz|mp\b|megapixels?|x\b|times?|"
    r"colou?rs?|sizes?|kids?|adults?|of\b|st\b|nd\b|rd\b|th\b)",
)
# Words just before a number that make it something other than a price.
_NON_PRICE_LEFT = re.compile(
    r"(?:\bsizes?|\bsz|\brated|\brating|\bratings|\bstars?|\bnumber|\bno\.|\bnum|\btop|"
    r"\bmodel|\bversion|\bgen(?:eration)?|\bseries|\bwidth|\blength|\bwaist|\bchapter|\bpage)"
    r"\s*(?:over|above|under|below|at\s+least|at\s+most|more\s+than|less\s+than|of|is)?\s*$",
)


@dataclass(frozen=True)
class _Amount:
    value: float
    marked: bool  # a currency symbol, currency word or "k" says it is money
    start: int
    end: int


def _word_value(words: str) -> float | None:
    total = 0
    current = 0
    for word in re.split(r"[\s-]+", words.strip()):
        if word in ("and", ""):
            continue
        if word in ("a", "an"):
            current = max(current, 1)
        elif word in _UNITS:
            current += _UNITS[word]
        elif word in _TEENS:
            current += _TEENS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in ("thousand", "grand"):
            total += max(current, 1) * 1000
            current = 0
        else:
            return None
    value = total + current
    return float(value) if value else None


# How far left of an amount its cue words are looked for. The longest cue ("somewhere
# around", "under a budget of just") is well inside it; a bounded window keeps a message
# with thousands of amounts linear instead of quadratic.
_LOOKBACK = 80


def _left(start: int) -> int:
    return max(0, start - _LOOKBACK)


def _amounts(text: str) -> list[_Amount]:
    found: list[_Amount] = []
    for m in _AMOUNT.finditer(text):
        raw = m.group("num")
        end = m.end()
        if (
            end < len(text)
            and (text[end].isalnum() or text[end] == "_")
            and not text.startswith("ish", end)
        ):
            continue  # "2nd", "10th", "4x", "ps5"
        is_digit = raw[0].isdigit()
        if is_digit:
            value = float(raw.replace(",", ""))
        else:
            word_value = _word_value(raw)
            if word_value is None:
                continue
            value = word_value
        marked = bool(m.group("pre") or m.group("post") or m.group("k"))
        if m.group("k"):
            value *= 1000
        if not math.isfinite(value):
            continue  # hundreds of digits: not a price anyone means
        if not is_digit and not marked and value < 20:
            continue  # "two", "first two": small word numbers need a currency word
        if not marked:
            if _NON_PRICE_UNIT.match(text, m.end()):
                continue
            if _NON_PRICE_LEFT.search(text, _left(m.start()), m.start()):
                continue
        found.append(_Amount(value, marked, m.start(), end))
    return found


# --- cues --------------------------------------------------------------------------------

_MAX_BEFORE = (
    r"no\s+more\s+than|not\s+more\s+than|no\s+higher\s+than|not\s+over|not\s+above|"
    r"under|below|beneath|less\s+than|lower\s+than|cheaper\s+than|fewer\s+than|"
    r"max(?:imum)?(?:\s+of)?\.?|at\s+(?:the\s+)?most|up\s*to|upto|within|not\s+exceeding|"
    r"under\s+a\s+budget\s+of|budget(?:\s+(?:is|of|around|about))?|"
    r"(?:can|could|want\s+to|willing\s+to)\s+(?:only\s+)?spend(?:\s+up\s+to)?|"
    r"spend\s+(?:up\s+to\s+)?|afford|<=?"
)
_MIN_BEFORE = (
    r"no\s+less\s+than|not\s+less\s+than|not\s+under|not\s+below|no\s+lower\s+than|"
    r"over|above|more\s+than|greater\s+than|higher\s+than|pricier\s+than|"
    r"more\s+expensive\s+than|at\s+least|min(?:imum)?(?:\s+of)?\.?|"
    r"starting\s+(?:at|from)|from|>=?"
)
_APPROX_BEFORE = (
    r"around|about|approximately|approx\.?|roughly|circa|ca\.|~|close\s+to|near|"
    r"in\s+the\s+region\s+of|somewhere\s+around|somewhere\s+about"
)
_MAX_AFTER = (
    r"or\s+(?:less|under|below|lower|cheaper)|and\s+(?:under|below|less)|"
    r"max(?:imum)?\b|tops\b|at\s+(?:the\s+)?most|or\s+thereabouts\s+max"
)
_MIN_AFTER = r"or\s+(?:more|above|higher|over)|and\s+(?:up|above|over)\b|plus\b|\+|min(?:imum)?\b"
_APPROX_AFTER = r"ish\b|-ish\b|or\s+so\b|give\s+or\s+take|more\s+or\s+less"

_FILLER = r"(?:\s+(?:like|just|only|about|roughly|a|of))?"
_BEFORE = {
    # Leftmost match wins, so "no more than" (max) beats "more than" (min).
    kind: re.compile(rf"(?:^|(?<=[^\w]))(?:{cues}){_FILLER}\s*$")
    for kind, cues in (
        ("max", _MAX_BEFORE),
        ("min", _MIN_BEFORE),
        ("approx", _APPROX_BEFORE),
    )
}
_AFTER = {
    kind: re.compile(rf"\s*(?:{cues})")
    for kind, cues in (("max", _MAX_AFTER), ("min", _MIN_AFTER), ("approx", _APPROX_AFTER))
}
_RANGE_JOIN = re.compile(r"\s*(?:-|–|—|to|and|&)\s*$")
_RANGE_CUE = re.compile(
    r"(?:\bbetween|\bfrom|\bprice(?:d)?|\bbudget(?:\s+(?:is|of))?|\brange(?:\s+of)?|"
    r"\bcosts?(?:ing)?|\bspend)\s*$"
)


def _before_kind(text: str, start: int) -> tuple[str, int] | None:
    best: tuple[str, int] | None = None
    for kind, pattern in _BEFORE.items():
        m = pattern.search(text, _left(start), start)
        if m and (best is None or m.start() < best[1]):
            best = (kind, m.start())
    return best


def _after_kind(text: str, end: int) -> str | None:
    for kind in ("max", "min", "approx"):
        if _AFTER[kind].match(text, end):
            return kind
    return None


def _after_match(text: str, end: int) -> int | None:
    """End of the cue right after an amount ("80 or less" → end of "or less"), if any."""
    for kind in ("max", "min", "approx"):
        m = _AFTER[kind].match(text, end)
        if m:
            return m.end()
    return None


def _cents(value: float) -> float:
    return round(value + 0.0, 2)


def parse_price(text: str) -> PriceRange | None:
    """The price band a message asks for, or ``None`` when it names no price.

    Examples: "under $80" → (None, 80); "between 50 and 100" → (50, 100); "over 200" →
    (200, None); "around $40" → (32, 48) (±20 %, rounded to cents); "$1,200", "1.5k" and
    "80$" are understood. Swapped bounds are put in order. A bare amount with a currency
    ("running shoes, $80") is read as a budget ceiling.
    """
    return _parse(text)[0]


def price_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the price phrases :func:`parse_price` reads, cue words included
    ("waterproof boots under 120" → ``[(16, 26)]``), so a caller can cut them out of the text
    used for semantic search. Amounts that do not parse as prices give no span."""
    return _parse(text)[1]


def _parse(text: str) -> tuple[PriceRange | None, list[tuple[int, int]]]:
    spans: list[tuple[int, int]] = []
    if not text:
        return None, spans
    # lower-case without changing the length ("İ".lower() has two characters), so spans
    # index the caller's text
    lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    lowered = lowered.replace("\u2019", "'")
    amounts = _amounts(lowered)
    if not amounts:
        return None, spans

    lows: list[float] = []
    highs: list[float] = []
    approx: list[float] = []
    used: set[int] = set()

    # Ranges first: "between 50 and 100", "$50-$100", "50 to 100 dollars", "from 50 to 100".
    for i in range(len(amounts) - 1):
        a, b = amounts[i], amounts[i + 1]
        if i in used:
            continue
        gap = lowered[a.end : b.start]
        if not _RANGE_JOIN.match(gap) or len(gap) > 6:
            continue
        joiner = gap.strip()
        cue = _RANGE_CUE.search(lowered, _left(a.start), a.start)
        if joiner in ("and", "&") and not (cue and cue.group(0).strip().startswith("between")):
            continue
        if not (a.marked or b.marked or cue):
            continue
        low, high = sorted((a.value, b.value))
        lows.append(low)
        highs.append(high)
        used.update((i, i + 1))
        spans.append((cue.start() if cue else a.start, b.end))

    for i, amt in enumerate(amounts):
        if i in used:
            continue
        before = _before_kind(lowered, amt.start)
        kind = before[0] if before else _after_kind(lowered, amt.end)
        if kind == "min" and before and lowered[before[1] :].startswith("from") and not amt.marked:
            kind = None  # "from 3" is not a price without a currency
        if kind is None:
            if not amt.marked:
                continue
            kind = "max"
        after = _after_match(lowered, amt.end) if before is None else None
        spans.append((before[1] if before else amt.start, after or amt.end))
        if kind == "max":
            highs.append(amt.value)
        elif kind == "min":
            lows.append(amt.value)
        else:
            approx.append(amt.value)

    lo: float | None = max(lows) if lows else None
    hi: float | None = min(highs) if highs else None
    if approx and lo is None and hi is None:
        centre = approx[0]
        lo, hi = centre * (1 - APPROX_SPREAD), centre * (1 + APPROX_SPREAD)
    if lo is None and hi is None:
        return None, []
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    rng = PriceRange(
        min=_cents(lo) if lo is not None else None,
        max=_cents(hi) if hi is not None else None,
    )
    return rng, sorted(spans)
