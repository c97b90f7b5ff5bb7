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
