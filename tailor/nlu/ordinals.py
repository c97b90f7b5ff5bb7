"""Which of the last shown products a message points at: "the second one", "#3", "both".

Positions are parsed into 0-based indexes into the list the shopper was last shown.
Positions outside that list are not dropped silently: they are reported (1-based, as the
shopper said them) in :attr:`OrdinalResult.invalid` so the bot can say "I only showed 3".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ORDINAL_WORDS", "OrdinalResult", "parse_ordinals"]

#: Ordinal words and their 1-based position.
ORDINAL_WORDS: dict[str, int] = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
}
_CARDINAL_WORDS: dict[str, int] = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}


@dataclass(frozen=True)
class OrdinalResult:
    """Parsed references: valid 0-based ``indexes`` (in order of mention, no repeats) and
    the 1-based positions the shopper named that are not in the shown list (``invalid``).

    Iterating, ``len()`` and truthiness use ``indexes``.
    """

    indexes: tuple[int, ...] = ()
    invalid: tuple[int, ...] = ()

    def __iter__(self) -> Iterator[int]:
        return iter(self.indexes)

    def __len__(self) -> int:
        return len(self.indexes)

    def __bool__(self) -> bool:
        return bool(self.indexes)

    @property
    def positions(self) -> tuple[int, ...]:
        """The valid references as 1-based positions."""
        return tuple(i + 1 for i in self.indexes)


_ORD = "|".join(ORDINAL_WORDS)
_CARD = "|".join(_CARDINAL_WORDS)
_COUNT = rf"(?:\d{{1,2}}|{_CARD})"
_SMALL_NUM = rf"(?:\d{{1,2}}|{_CARD})"
# Bare numbers after these words are positions ("compare 1 and 3", "option 2").
_POINTERS = r"compare|comparing|pick|choose|take|option|item|product|result|choice|numbers?"
_NOT_AFTER_NUMBER = (
    r"(?!\s*(?:%|\$|€|£|dollars?|bucks?|usd|eur|euros?|pounds?|quid|k\b|pairs?|items?|"
    r"stars?|inch|cm|mm|kg|lbs?|gb|tb|years?|hours?|days?|people|sizes?))"
)

_PATTERN = re.compile(
    "|".join(
        [
            # "first two", "top 3" (but "first one" is just the first)
            rf"(?P<firstn>\b(?:first|top)\s+(?P<fn>{_COUNT})\b(?!\s*(?:st|nd|rd|th)\b))",
            rf"(?P<lastn>\blast\s+(?P<ln>{_COUNT})\b)",
            r"(?P<second_last>\b(?:second|2nd)[\s-]+(?:to[\s-]+|from[\s-]+(?:the[\s-]+)?)?last\b"
            r"|\bpenultimate\b|\blast\s+but\s+one\b|\bnext[\s-]+to[\s-]+last\b"
            r"|\bone\s+before\s+(?:the\s+)?last\b)",
            r"(?P<last>\blast\b(?!\s+(?:time|week|month|year|night|season)\b)|\bfinal\s+one\b"
            r"|\bbottom\s+one\b)",
            r"(?P<top>\btop\s+(?:one|pick|result|choice|option|item|suggestion|product)\b)",
            rf"(?P<word>\b(?:{_ORD})\b(?!\s+(?:of\s+all|time|things?\s+first)\b))",
            r"(?P<ordnum>\b(?P<on>\d{1,2})(?:st|nd|rd|th)\b)",
            r"(?P<hash>#\s?(?P<hn>\d{1,3})\b)",
            rf"(?P<numbered>\b(?:number|no\.|nr\.?|num\.?)\s*#?\s*(?P<nn>{_SMALL_NUM})\b)",
            r"(?P<both>\bboth\b)",
            rf"(?P<all>\ball\s+(?:(?P<an>{_COUNT})\b|of\s+(?:them|these|those)\b|(?=the\s+above)))",
            r"(?P<former>\bthe\s+former\b)",
            r"(?P<latter>\bthe\s+latter\b)",
            # "compare 1 and 3", "1 vs 2", "option 2"
            rf"(?P<pointed>\b(?:{_POINTERS})\s+(?:the\s+)?(?:ones?\s+)?"
            rf"(?P<plist>\d{{1,2}}(?:\s*(?:,|and|&|vs\.?|versus|or|with|to)\s*\d{{1,2}})*)\b"
            rf"{_NOT_AFTER_NUMBER})",
            rf"(?P<list>(?<![\w$€£.,#-])\d{{1,2}}(?:\s*(?:,|and|&|vs\.?|versus|or)\s*\d{{1,2}})+\b"
            rf"{_NOT_AFTER_NUMBER})",
        ]
    ),
    re.IGNORECASE,
)
_PRICE_OR_SIZE_BEFORE = re.compile(
    r"(?:between|from|under|over|below|above|than|sizes?|sz|size|around|about|\$|€|£)\s*$",
    re.IGNORECASE,
)


def _count(token: str) -> int:
    token = token.lower()
    return int(token) if token.isdigit() else _CARDINAL_WORDS[token]


def _positions(m: re.Match[str], n: int, text: str) -> list[int]:
    """1-based positions (possibly out of range) for one match."""
    kind = m.lastgroup
    if kind == "firstn":
        return list(range(1, _count(m.group("fn")) + 1))
    if kind == "lastn":
        k = _count(m.group("ln"))
        return list(range(max(1, n - k + 1), n + 1))
    if kind == "second_last":
        return [n - 1] if n >= 2 else []
    if kind == "last":
        return [n] if n >= 1 else []
    if kind == "top":
        return [1]
    if kind == "word":
        return [ORDINAL_WORDS[m.group("word").lower()]]
    if kind == "ordnum":
        return [int(m.group("on"))]
    if kind == "hash":
        return [int(m.group("hn"))]
    if kind == "numbered":
        return [_count(m.group("nn"))]
    if kind == "both":
        return [1, 2]
    if kind == "all":
        count = m.group("an")
        return list(range(1, (_count(count) if count else n) + 1))
    if kind == "former":
        return [1]
    if kind == "latter":
        return [2]
    if kind in ("pointed", "list"):
        if kind == "list" and _PRICE_OR_SIZE_BEFORE.search(text, 0, m.start()):
            return []
        numbers = re.findall(r"\d{1,2}", m.group("plist") if kind == "pointed" else m.group(0))
        return [int(x) for x in numbers]
    return []  # pragma: no cover - every named group is handled above


def parse_ordinals(text: str, n_shown: int) -> OrdinalResult:
    """References to shown products in ``text``, given ``n_shown`` products were shown.

    "the second one" → indexes (1,); "2nd", "#3", "number 3", "option 3"; "the last one" →
    (n-1,); "first two" → (0, 1); "the first and third" → (0, 2); "compare 1 and 3";
    "both" → (0, 1); "the top one" → (0,). Out-of-range positions go to ``invalid``.
    """
    if n_shown < 0:
        raise ValueError(f"n_shown must be 0 or more, got {n_shown}")
    indexes: list[int] = []
    invalid: list[int] = []
    for m in _PATTERN.finditer(text or ""):
        for pos in _positions(m, n_shown, text):
            if 1 <= pos <= n_shown:
                if pos - 1 not in indexes:
                    indexes.append(pos - 1)
            elif pos not in invalid:
                invalid.append(pos)
    return OrdinalResult(indexes=tuple(indexes), invalid=tuple(invalid))
