"""Protected attributes: which segment kinds and context a policy lets reach the ranking."""

from __future__ import annotations

import pytest

from tailor.config import Settings
from tailor.recommend.personal import Context
from tailor.recommend.signals import (
    DEFAULT_POLICY,
    PRIOR_KINDS,
    ProtectedPolicy,
    gender_segment,
    segment_tables,
)


def test_default_policy_excludes_age_band_and_gender_only() -> None:
    assert DEFAULT_POLICY.attributes == {"age_band", "gender"}
    assert DEFAULT_POLICY.excluded_kinds == {"demographic", "gender"}
    assert DEFAULT_POLICY.ranking_kinds == ("rfm", "geographic", "psychographic")
    assert ProtectedPolicy(use_in_ranking=True).ranking_kinds == PRIOR_KINDS
    assert ProtectedPolicy(frozenset()).ranking_kinds == PRIOR_KINDS


def test_settings_choose_the_policy() -> None:
    default = ProtectedPolicy.from_settings(Settings.load(env={}))
    assert default == DEFAULT_POLICY
    configured = ProtectedPolicy.from_settings(
        Settings.load(
            env={
                "TAILOR_PROTECTED_ATTRIBUTES": " Gender, country ",
                "TAILOR_RANK_USE_PROTECTED": "true",
            }
        )
    )
    assert configured == ProtectedPolicy(frozenset({"gender", "country"}), True)
    assert ProtectedPolicy.parse("", False).attributes == frozenset()
    with pytest.raises(ValueError, match="TAILOR_RANK_USE_PROTECTED must be true or false"):
        Settings.load(env={"TAILOR_RANK_USE_PROTECTED": "maybe"})


def test_unknown_attribute_names_the_valid_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown protected attribute\(s\) \['religion'\].*age_band"
    ):
        ProtectedPolicy.parse("gender,religion")


def test_protected_geography_drops_season_climate_and_region_from_the_context() -> None:
    ctx = Context(season="winter", climate="cold", region="Ontario", device="mobile")
    assert DEFAULT_POLICY.context(ctx) == ctx
    geo = ProtectedPolicy.parse("country,climate")
    assert geo.excluded_kinds == {"geographic"}
    assert geo.context(ctx) == Context(device="mobile")
    assert ProtectedPolicy.parse("country,climate", True).context(ctx) == ctx


def test_prior_ignores_kinds_the_policy_excludes() -> None:
    purchases = [(1, "Baby > Strollers", "Bugaboo")] * 6 + [(2, "Shoes > Boots", "Timberland")] * 6
    segments = {
        1: {"demographic": "young professionals", "gender": "female", "rfm": "loyal"},
        2: {"demographic": "retirees", "gender": "male", "rfm": "loyal"},
    }
    default = segment_tables(purchases, segments)
    shopper = segments[1]
    # rfm is shared by both customers, so it lifts nothing; the protected kinds are ignored.
    assert set(default.prior(shopper).lifts) == {("rfm", "loyal")}
    assert default.prior(shopper).score("Baby > Strollers", "Bugaboo")[0] == 0.0
    used = segment_tables(purchases, segments, ProtectedPolicy(use_in_ranking=True).ranking_kinds)
    prior = used.prior(shopper)
    assert set(prior.lifts) == {
        ("demographic", "young professionals"),
        ("gender", "female"),
        ("rfm", "loyal"),
    }
    assert prior.score("Baby > Strollers", "Bugaboo")[0] > 0.1
    with pytest.raises(ValueError, match="unknown segment kind"):
        segment_tables(purchases, segments, ("rfm", "zodiac"))


def test_gender_segment_is_the_stated_gender() -> None:
    assert gender_segment(" Female ") == "female"
    assert gender_segment(None) is None
    assert gender_segment("") is None
