"""Demographic and geographic rule segments."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tailor.demo import load_demo
from tailor.profiles.rules import UNKNOWN_AGE, demographic_segment, geographic_segment, season
from tailor.profiles.segments import assign_rule_segments
from tailor.store import make_session_factory


@pytest.mark.parametrize(
    ("band", "stage"),
    [
        ("18-24", "students & young adults"),
        ("35-44", "established families"),
        ("65+", "retirees"),
        (None, UNKNOWN_AGE),
        ("weird", UNKNOWN_AGE),
    ],
)
def test_life_stage(band: str | None, stage: str) -> None:
    assert demographic_segment(band) == stage


def test_geography_and_season() -> None:
    assert geographic_segment("Canada", "cold") == "cold climate · North America"
    assert geographic_segment("Narnia", "frozen") == "unknown climate · other markets"
    assert season("Germany", date(2026, 1, 10)) == "winter"
    assert season("Australia", date(2026, 1, 10)) == "summer"
    assert season("Australia", date(2026, 7, 10)) == "winter"
    assert season(None, date(2026, 4, 1)) == "spring"


def test_rule_segments_cover_every_customer(tmp_path: Path) -> None:
    factory = make_session_factory(f"sqlite:///{tmp_path / 't.db'}")
    load_demo(factory, 200, 120, 42)
    sizes = assign_rule_segments(factory)
    assert sum(sizes["demographic"].values()) == 120
    assert sum(sizes["geographic"].values()) == 120
    assert len(sizes["geographic"]) >= 5
    assert "unknown climate · other markets" not in sizes["geographic"]
