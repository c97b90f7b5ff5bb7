"""Price expressions → PriceRange (table-driven)."""

from __future__ import annotations

import pytest

from tailor.nlu.price import PriceRange, parse_price

CASES: list[tuple[str, tuple[float | None, float | None] | None]] = [
    # ceilings
    ("under $80", (None, 80)),
    ("I need running shoes under $80", (None, 80)),
    ("below 80 dollars", (None, 80)),
    ("less than 30 bucks", (None, 30)),
    ("no more than €50", (None, 50)),
    ("not more than 45", (None, 45)),
    ("max 100", (None, 100)),
    ("maximum of $250", (None, 250)),
    ("up to 60", (None, 60)),
    ("$50 or less", (None, 50)),
    ("80 dollars max", (None, 80)),
    ("100 tops", (None, 100)),
    ("at most £25", (None, 25)),
    ("under 80$", (None, 80)),
    ("under 80 euros", (None, 80)),
    ("cheaper than $70", (None, 70)),
    ("my budget is 90", (None, 90)),
    ("I can spend 120", (None, 120)),
    ("under a hundred dollars", (None, 100)),
    ("less than fifty bucks", (None, 50)),
    ("under 2k", (None, 2000)),
    ("within $300", (None, 300)),
    # floors
    ("over 200", (200, None)),
    ("more than 200", (200, None)),
    ("at least 150", (150, None)),
    ("above $90", (90, None)),
    ("$50+", (50, None)),
    ("$100 or more", (100, None)),
    ("starting at $40", (40, None)),
    ("not under 50", (50, None)),
    ("no less than 75", (75, None)),
    # ranges
    ("between 50 and 100", (50, 100)),
    ("between $50 and $100", (50, 100)),
    ("$50-$100", (50, 100)),
    ("$50 - $100", (50, 100)),
    ("50 to 100 dollars", (50, 100)),
    ("from 50 to 100", (50, 100)),
    ("between 100 and 50", (50, 100)),
    ("over 50 but under 100", (50, 100)),
    ("under $100 and over $40", (40, 100)),
    # approximately
    ("around $40", (32, 48)),
    ("about 40", (32, 48)),
    ("roughly 55 bucks", (44, 66)),
    ("40ish", (32, 48)),
    ("~40", (32, 48)),
    ("around $49.99", (39.99, 59.99)),
    # bare amounts with a currency are budgets
    ("$1,200", (None, 1200)),
    ("1.5k", (None, 1500)),
    ("£25", (None, 25)),
    ("$49.99", (None, 49.99)),
    ("100 euros", (None, 100)),
    ("jacket for 60 bucks", (None, 60)),
    # other numbers in the message do not interfere
    ("more than 2 pairs under $50", (None, 50)),
    ("top 3 under 100", (None, 100)),
    ("size 10 under $100", (None, 100)),
    ("iphone 15 under 1000", (None, 1000)),
    ("under 80 in blue", (None, 80)),
    # not prices
    ("size 10", None),
    ("size 10.5 please", None),
    ("the 2nd one", None),
    ("#3", None),
    ("number 3", None),
    ("2 pairs", None),
    ("over 4 stars", None),
    ("rated over 4", None),
    ("at least 2 pairs", None),
    ("first two", None),
    ("compare 1 and 3", None),
    ("50-100", None),
    ("running shoes", None),
    ("", None),
    ("more than 3 colours", None),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] or "empty" for c in CASES])
def test_parse_price(text: str, expected: tuple[float | None, float | None] | None) -> None:
    got = parse_price(text)
    if expected is None:
        assert got is None
    else:
        assert got == PriceRange(*expected)


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 40


def test_bounds_are_ordered_and_rounded_to_cents() -> None:
    rng = parse_price("about $33.33")
    assert rng is not None and rng.min is not None and rng.max is not None
    assert rng.min == round(33.33 * 0.8, 2) and rng.max == round(33.33 * 1.2, 2)
    assert rng.min <= rng.max


def test_price_range_needs_a_bound() -> None:
    with pytest.raises(ValueError, match="min or max"):
        PriceRange(None, None)
