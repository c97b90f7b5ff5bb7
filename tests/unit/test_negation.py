"""Is an entity span negated? (table-driven)"""

from __future__ import annotations

import pytest

from tailor.nlu.negation import is_negated

# (text, entity span as written in text, negated?)
CASES: list[tuple[str, str, bool]] = [
    ("not red", "red", True),
    ("no Nike", "Nike", True),
    ("no more Nike", "Nike", True),
    ("I don't like Nike", "Nike", True),
    ("I dont like nike", "nike", True),
    ("I do not like red", "red", True),
    ("I don’t want red", "red", True),
    ("don't show me red", "red", True),
    ("anything but blue", "blue", True),
    ("except Adidas", "Adidas", True),
    ("anything except Adidas", "Adidas", True),
    ("without leather", "leather", True),
    ("other than black", "black", True),
    ("nothing from Puma", "Puma", True),
    ("hate red", "red", True),
    ("I hate red", "red", True),
    ("I can't stand Puma", "Puma", True),
    ("I'm not a fan of Nike", "Nike", True),
    ("I'd rather not have leather", "leather", True),
    ("not in red", "red", True),
    ("not the red one", "red", True),
    ("I don't want anything in leather", "leather", True),
    ("I don't like Nike or Adidas", "Adidas", True),
    ("neither Nike nor Adidas", "Nike", True),
    ("neither Nike nor Adidas", "Adidas", True),
    ("blue but not red", "red", True),
    ("I want blue not red", "red", True),
    ("blue instead of red", "red", True),
    ("Nike is a no", "Nike", True),
    ("red isn't my colour", "red", True),
    ("leather? no thanks", "leather", True),
    # not negated
    ("not sure, maybe blue", "blue", False),
    ("not sure maybe blue", "blue", False),
    ("no, blue ones", "blue", False),
    ("no I want red", "red", False),
    ("blue please", "blue", False),
    ("show me red ones", "red", False),
    ("not only red", "red", False),
    ("do you have Nike?", "Nike", False),
    ("I don't like Nike but love Adidas", "Adidas", False),
    ("blue but not red", "blue", False),
    ("I want blue not red", "blue", False),
    ("blue instead of red", "blue", False),
    ("I don't want leather and I like blue", "blue", False),
    ("not too pricey, in blue", "blue", False),
    ("any Nike? not Adidas", "Nike", False),
    ("I would rather have red", "red", False),
    ("nothing fancy, just Nike", "Nike", False),
]


@pytest.mark.parametrize(("text", "span", "negated"), CASES, ids=[f"{c[0]}|{c[1]}" for c in CASES])
def test_is_negated(text: str, span: str, negated: bool) -> None:
    start = text.index(span)
    assert is_negated(text, start, start + len(span)) is negated


def test_first_of_two_occurrences_is_judged_by_its_own_window() -> None:
    text = "red is fine but not red stripes"
    second = text.index("red", 1)
    assert is_negated(text, 0, 3) is False
    assert is_negated(text, second, second + 3) is True


def test_span_outside_text_is_rejected() -> None:
    with pytest.raises(ValueError, match="outside"):
        is_negated("red", 2, 10)
