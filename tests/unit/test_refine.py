"""Refinement phrases and detection."""

from __future__ import annotations

import pytest

from tailor.nlu.refine import REFINEMENTS, detect_refinement, lookup_phrases

CASES: list[tuple[str, str | None]] = [
    ("show me cheaper ones", "cheaper"),
    ("anything less expensive?", "cheaper"),
    ("something more affordable", "cheaper"),
    ("too pricey", "cheaper"),
    ("that's over my budget", "cheaper"),
    ("show me more expensive ones", "pricier"),
    ("something pricier", "pricier"),
    ("any premium options?", "pricier"),
    ("these look cheap", "pricier"),
    ("in a different colour", "other_colour"),
    ("other colors?", "other_colour"),
    ("I don't like the colour", "other_colour"),
    ("any other brands?", "other_brand"),
    ("a different brand please", "other_brand"),
    ("more", "more"),
    ("more please", "more"),
    ("ok more", "more"),
    ("show me more", "more"),
    ("other options", "more"),
    ("something else", "more"),
    ("more like the second one", "similar"),
    ("show me more like the second one", "similar"),
    ("something similar to the first", "similar"),
    ("anything like that", "similar"),
    ("meh", None),
    ("I don't like Nike", None),
    ("I don't like the red one", None),
    ("I'd like the blue ones", None),
    ("more blue ones", None),
    ("my budget is 80", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] or "empty" for c in CASES])
def test_detect_refinement(text: str, expected: str | None) -> None:
    assert detect_refinement(text) == expected


def test_canonical_values_are_the_contract() -> None:
    assert set(REFINEMENTS) == {
        "cheaper",
        "pricier",
        "other_colour",
        "other_brand",
        "more",
        "similar",
    }


def test_each_phrase_has_one_meaning() -> None:
    seen: dict[str, str] = {}
    for canonical, phrases in REFINEMENTS.items():
        for phrase in phrases:
            assert seen.setdefault(phrase.lower(), canonical) == canonical, phrase


def test_each_phrase_detects_its_own_refinement() -> None:
    for canonical, phrases in REFINEMENTS.items():
        for phrase in phrases:
            assert detect_refinement(phrase) == canonical, phrase


def test_lookup_phrases_cannot_hide_each_other() -> None:
    phrases = lookup_phrases()
    assert "more" not in phrases["more"]  # bare "more" is too ambiguous for a lookup
    assert "show me more" not in phrases["more"]  # would hide "more expensive"
    assert "more expensive" in phrases["pricier"] and "more like" in phrases["similar"]
