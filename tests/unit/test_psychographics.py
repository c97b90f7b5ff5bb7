"""Stated preferences from chat text, and the psychographic segment they point to."""

from __future__ import annotations

import pytest

from tailor.profiles.psychographics import NO_SIGNAL, extract_preferences, psychographic_segment


def prefs(text: str) -> set[tuple[str, str, bool]]:
    return {(p.kind, p.value, p.positive) for p in extract_preferences(text)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I care about sustainability", {("value", "sustainability", True)}),
        ("I like minimal design", {("style", "minimal", True)}),
        ("we love hiking and camping", {("interest", "outdoors", True)}),
        ("I'm into running, I do a marathon every year", {("interest", "running", True)}),
        ("I don't care about luxury brands", {("style", "luxury", False)}),
        ("I hate bold colours", {("style", "bold", False)}),
        (
            "I prefer eco-friendly stuff. I always go for quality",
            {("value", "sustainability", True), ("value", "quality", True)},
        ),
    ],
)
def test_statements_about_the_shopper(text: str, expected: set[tuple[str, str, bool]]) -> None:
    assert prefs(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "hiking boots under $100",
        "show me minimal watches",
        "organic cotton t-shirt",
        "",
        "I need running shoes under $80",
        "I'm looking for a gym bag",
        "I'd like a minimal lamp",
        "we want camping chairs",
    ],
)
def test_a_product_request_is_not_a_trait(text: str) -> None:
    assert prefs(text) == set()


def test_a_lasting_stance_counts_even_next_to_a_request() -> None:
    assert prefs("I love hiking so I need new boots") == {("interest", "outdoors", True)}


def test_evidence_is_the_sentence() -> None:
    (p,) = extract_preferences("Hi! I care about the environment. Show me jackets.")
    assert p.value == "sustainability" and p.evidence == "I care about the environment."


def test_segment_from_preferences_and_tags() -> None:
    assert psychographic_segment(["sustainability"]) == "conscious consumers"
    assert psychographic_segment([], ["wireless", "bluetooth", "smart"]) == "tech enthusiasts"
    # A stated preference outweighs one browsing tag.
    assert psychographic_segment(["minimal"], ["wireless"]) == "minimalists"
    assert psychographic_segment([], []) == NO_SIGNAL
    assert psychographic_segment(["sustainability"], min_signal=3) == NO_SIGNAL
