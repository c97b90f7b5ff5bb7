"""Reasons shown on product cards."""

from __future__ import annotations

from types import SimpleNamespace

from tailor.recommend.criteria import Criteria
from tailor.recommend.reasons import money, reason_for


def test_reason_names_what_was_asked_and_the_rating() -> None:
    crit = Criteria(category="Shoes > Running Shoes", colour="blue", price_max=80)
    product = SimpleNamespace(
        category="Shoes > Running Shoes",
        brand="Brooks",
        colour="blue",
        material="mesh",
        price=64.99,
        currency="USD",
        rating=4.6,
        review_count=212,
    )
    text = reason_for(product, crit)
    assert text == "Running shoes as asked; in blue; $64.99, under $80; rated 4.6/5 by 212 shoppers"


def test_reason_without_constraints_falls_back_to_the_query() -> None:
    product = SimpleNamespace(
        category="Bags > Backpacks",
        brand=None,
        colour=None,
        material=None,
        price=10.0,
        currency="USD",
        rating=None,
        review_count=0,
    )
    text = reason_for(product, Criteria(query="something for hiking"))
    assert "something for hiking" in text


def test_money() -> None:
    assert money(1200) == "$1,200"
    assert money(9.5, "EUR") == "€9.50"
    assert money(3, "CHF") == "3 CHF"


def test_card_is_every_field_of_the_suggestion() -> None:
    """``Suggestion.to_card`` (a flat copy) gives what ``dataclasses.asdict`` gave, keys in
    the same order, with the card's own additions, and shares no dict with the suggestion."""
    from dataclasses import asdict

    from tailor.recommend.service import Suggestion

    product = SimpleNamespace(
        id=7,
        sku="SKU-7",
        title="Trail Runner",
        brand=None,
        category="shoes",
        price=59.99,
        currency="USD",
        rating=4.456,
        review_count=None,
        colour="blue",
        material=None,
        image_url="https://example.com/7.jpg",
        in_stock=False,
    )
    s = Suggestion.of(product, "matches running shoes", 0.123456, {"relevance": 0.612345})
    expected = asdict(s)
    expected["id"] = expected.pop("product_id")
    expected.update(
        price_text=money(59.99, "USD"),
        score=0.1235,
        signals={"relevance": 0.6123},
    )
    card = s.to_card()
    assert card == expected
    assert list(card) == list(expected)
    card["signals"]["relevance"] = 1.0
    assert s.signals == {"relevance": 0.612345}
