"""What a reaction is about."""

from __future__ import annotations

import pytest

from tailor.nlu.reactions import parse_reaction


@pytest.mark.parametrize(
    ("text", "aspect"),
    [
        ("I hate that colour", "colour"),
        ("the color of the second one is awful", "colour"),
        ("ugly shades", "colour"),
        ("too expensive", "price"),
        ("way too pricey for me", "price"),
        ("that's over my budget", "price"),
        ("not that brand again", "brand"),
        ("meh", "product"),
        ("not my style", "product"),
        ("those are hideous", "product"),
        ("", "product"),
        # The first aspect named wins.
        ("the colour is nice but the price is too high", "colour"),
        ("too expensive, and I hate the colour", "price"),
    ],
)
def test_aspect(text: str, aspect: str) -> None:
    assert parse_reaction(text).aspect == aspect
