"""Is an entity negated? "not red", "no Nike", "I don't like Nike", "anything but blue".

The window is deliberately tight: a cue must govern the entity within the same clause,
with only a few filler words ("not in red", "nothing from Puma") or a coordination
("I don't like Nike or Adidas") in between. A comma, "but", "maybe" and similar words end
the clause, so "not sure, maybe blue" leaves blue wanted.
"""

from __future__ import annotations

import re

__all__ = ["is_negated"]

# Cues that negate what follows. Leftmost match in the clause is used.
_CUES = r"""
    (?:do|does|did|would|will|could|really)\s*(?:n't|nt|\s+not)\s+
        (?:really\s+)?(?:like|love|want|need|fancy|care\s+for|dig|do|show|give|suggest|recommend|
        include|offer|send)
  | (?:can't|cant|cannot|can\s+not)\s+(?:stand|stand\s+the|bear|do)
  | (?:i'm|im|i\s+am)\s+(?:not\s+(?:into|a\s+fan\s+of|keen\s+on|interested\s+in|feeling)
        |over|done\s+with|sick\s+of|tired\s+of)
  | not\s+(?:a\s+(?:big\s+|huge\s+)?fan\s+of|into|keen\s+on|interested\s+in|feeling)
  | no\s+fan\s+of
  | (?:sick|tired)\s+of
  | (?:anything|everything|all|something)\s+(?:but|except|other\s+than|besides|apart\s+from)
  | other\s+than | except(?:\s+for)? | excluding | exclude | apart\s+from | minus
  | w/o | without | instead\s+of | rather\s+than | but\s+not
  | rather\s+not(?:\s+(?:have|get|buy|see|go\s+(?:for|with)))?
  | (?:nothing|none)(?:\s+(?:of|from|in|by|made\s+(?:of|from)|with))?
  | neither | nor
  | hate | hated | hates | dislike | dislikes | detest | avoid | skip | ditch | lose
  | get\s+rid\s+of | stay\s+away\s+from | steer\s+clear\s+of | allergic\s+to
  | (?:not|no|never)(?!\s+(?:only|just|sure|too|so|that|bad|really\s+sure)\b)
"""
_FILLERS = (
    r"a|an|the|any|anything|something|stuff|things|items|products|ones|more|in|from|by|of|"
    r"made|with|that|those|these|this|really|so|too|very|much|colou?r|brand|shade|either|even|"
    r"all|at|for|me|please|thanks|products?|gear|clothes|ones|color|colour|coloured|colored"
)
_COORDINATION = r"(?:\s+[\w'’&.-]+){1,3}\s+(?:or|nor|and|&)"
_NEGATED_BEFORE = re.compile(
    rf"(?:^|(?<=[^\w']))(?:{_CUES})(?:\s+(?:{_FILLERS}))*(?:{_COORDINATION})?"
    rf"(?:\s+(?:{_FILLERS}))*\s*$",
    re.IGNORECASE | re.VERBOSE,
)
# Where a clause ends (the cue must sit after the last of these).
_BOUNDARY = re.compile(
    r"[,.;:!?()\n]|\s[-–—]\s|(?<!anything )(?<!everything )(?<!all )\bbut\b(?!\s+not\b)"
    r"|\b(?:maybe|perhaps|though|although|however|whereas|ideally|preferably|prefer|"
    r"except\s+that|then|also)\b"
    r"|\brather\b(?!\s+(?:not|than)\b)",
    re.IGNORECASE,
)
# Negation after the entity: "Nike is a no", "red isn't my colour", "leather? no thanks".
_NEGATED_AFTER = re.compile(
    r"^\s*(?:(?:is|are|'s)\s+(?:a\s+)?(?:no|no-go|no\s+go|out|not\s+for\s+me|not\s+my\s+\w+"
    r"|not\s+really\s+my\s+\w+|off\s+the\s+table)\b"
    r"|(?:isn't|aren't|is\s+not|are\s+not)\s+(?:really\s+)?(?:for\s+me|my\s+\w+|my\s+thing)\b"
    r"|\s*(?:is|are)\s+(?:ugly|awful|terrible|horrible|hideous)\b"
    r"|[?!.,]*\s*(?:no\s+thanks|no\s+thank\s+you|please\s+no|no\s+way)\b)",
    re.IGNORECASE,
)


def is_negated(text: str, start: int, end: int) -> bool:
    """True when the entity at ``text[start:end]`` is negated or excluded.

    Negated: "not red", "no Nike", "I don't like Nike", "anything but blue", "except
    Adidas", "without leather", "other than black", "nothing from Puma", "hate red",
    "I don't like Nike or Adidas" (both), "Nike is a no". Not negated: "not sure, maybe
    blue", "no, blue ones", "not only red", "I don't like Nike but love Adidas" (Adidas).
    """
    if not 0 <= start <= end <= len(text):
        raise ValueError(
            f"entity span [{start}, {end}) lies outside the text of length {len(text)}"
        )
    left = text[:start].replace("\u2019", "'")
    # Only the current clause counts.
    cut = max((m.end() for m in _BOUNDARY.finditer(left)), default=0)
    clause = left[cut:]
    if _NEGATED_BEFORE.search(clause):
        return True
    return bool(_NEGATED_AFTER.match(text[end:].replace("\u2019", "'")))
