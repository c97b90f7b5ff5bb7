"""Context rules: hours, weekdays, devices, seasons, climates → boosts in the ranking."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tailor.config import PROJECT_ROOT
from tailor.recommend.context import (
    ContextRuleError,
    context_view,
    load_context_rules,
    local_weekday,
    parse_context_rules,
    parse_hours,
)
from tailor.recommend.personal import Context, RankingWeights, ShopperContext, score_candidate


@dataclass
class P:
    id: int
    title: str = "x"
    category: str = "Kitchen > Coffee Machines"
    brand: str | None = None
    colour: str | None = None
    price: float = 10.0
    rating: float | None = None
    review_count: int = 0
    tags: list[str] = field(default_factory=list)


RULES = parse_context_rules(
    {
        "context": [
            {
                "name": "breakfast",
                "when": {"hour": "6-10"},
                "boost": {"tags": ["coffee"], "categories": ["Kitchen > Coffee Machines"]},
                "weight": 0.05,
                "reason": "a morning pick",
            },
            {
                "name": "weekend-mobile",
                "when": {"weekday": "weekend", "device": ["mobile", "tablet"]},
                "boost": {"tags": ["hiking"]},
                "weight": 0.04,
            },
            {
                "name": "cold-winter",
                "when": {"season": "winter", "climate": "cold"},
                "boost": {"categories": ["Clothing"]},
                "weight": -0.02,
            },
        ]
    }
)


def names(ctx: Context) -> list[str]:
    return [r.name for r in ctx.applied(RULES)]


def test_hours_half_open_and_wrapping() -> None:
    morning = parse_hours("6-10")
    assert [h for h in range(24) if h in morning] == [6, 7, 8, 9]
    night = parse_hours("22-3")
    assert [h for h in range(24) if h in night] == [0, 1, 2, 22, 23]
    assert [h for h in range(24) if h in parse_hours("0-24")] == list(range(24))
    assert None not in morning
    for bad, match in [("6", "range of hours"), ("5-5", "empty"), ("7-30", "hours must be")]:
        with pytest.raises(ContextRuleError, match=match):
            parse_hours(bad)


@pytest.mark.parametrize(
    ("ctx", "expected"),
    [
        (Context(local_hour=7), ["breakfast"]),
        (Context(local_hour=10), []),
        (Context(), []),  # nothing known: nothing holds
        (Context(weekday=6, device="mobile"), ["weekend-mobile"]),
        (Context(weekday=2, device="mobile"), []),
        (Context(weekday=5, device="desktop"), []),
        (Context(weekday=5), []),  # device unknown
        (Context(season="winter", climate="cold", local_hour=8), ["breakfast", "cold-winter"]),
        (Context(season="winter", climate="hot"), []),
    ],
)
def test_rule_matching(ctx: Context, expected: list[str]) -> None:
    assert names(ctx) == expected


@pytest.mark.parametrize(
    ("rule", "match"),
    [
        ({"when": {"hours": "1-2"}}, r"unknown condition\(s\) \['hours'\]; valid are \['hour'"),
        ({"when": {"device": "phone"}}, r"unknown \['phone'\]; valid values are \['desktop'"),
        ({"when": {"weekday": ["sunday"]}}, r"unknown \['sunday'\]; valid values are"),
        ({"boost": {}}, "'boost' must name tags and/or categories"),
        ({"boost": {"brands": ["x"]}}, "'boost' must name tags and/or categories"),
        ({"weight": 2}, "weight must be within"),
        ({"weight": "high"}, "'weight' is required"),
        ({"colour": "red"}, r"unknown key\(s\) \['colour'\]"),
    ],
)
def test_bad_rules_are_named(rule: dict[str, object], match: str) -> None:
    raw: dict[str, object] = {"name": "r", "boost": {"tags": ["x"]}, "weight": 0.1}
    raw.update(rule)
    with pytest.raises(ContextRuleError, match=match):
        parse_context_rules({"context": [raw]})


def test_files(tmp_path: Path) -> None:
    committed = load_context_rules(PROJECT_ROOT / "context.toml")
    assert {"breakfast", "cold-winter"} <= {r.name for r in committed}
    assert load_context_rules(None) == ()
    with pytest.raises(ContextRuleError, match=r"missing\.toml does not exist"):
        load_context_rules(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('[[context]]\nname = "a"\nweight = 0.1\n[[context]]\nname = "a"\n')
    with pytest.raises(ContextRuleError, match=r"bad\.toml: context rule 'a': 'boost' must"):
        load_context_rules(bad)


def test_local_weekday() -> None:
    # Sunday 23:30 UTC is already Monday in Tokyo and still Sunday in New York
    now = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert now.weekday() == 6
    assert local_weekday("Asia/Tokyo", None, now) == 0
    assert local_weekday("America/New_York", None, now) == 6
    assert local_weekday(None, 1, now) == 0  # 01:00 local while 23:xx UTC: ahead
    assert local_weekday(None, 20, now) == 6
    assert local_weekday("Bogus/Zone", 1, now) == 0  # bad zone: the hour decides
    assert local_weekday(None, None, now) is None


def test_rules_shift_the_score_and_explain_it() -> None:
    weights = RankingWeights(context_rules=RULES)
    coffee = P(1, tags=["coffee"])
    other = P(2, category="Toys > Puzzles", tags=["puzzle"])
    morning = ShopperContext(personalised=True, context=Context(local_hour=7))
    noon = ShopperContext(personalised=True, context=Context(local_hour=12))
    s_morning = score_candidate(coffee, 0.5, morning, weights)
    s_noon = score_candidate(coffee, 0.5, noon, weights)
    assert s_morning.score == pytest.approx(s_noon.score + 0.05)
    assert dict((c.signal, c.value) for c in s_morning.contributions)["context:breakfast"] == 0.05
    assert s_morning.personal_reason() == "a morning pick"
    # a product the rule does not boost is unchanged
    assert score_candidate(other, 0.5, morning, weights).score == pytest.approx(
        score_candidate(other, 0.5, noon, weights).score
    )
    # a negative weight demotes; opted-out shoppers get no context at all
    winter = ShopperContext(
        personalised=True, context=Context(season="winter", climate="cold", region="Oslo")
    )
    coat = P(3, category="Clothing > Coats", tags=[])
    assert score_candidate(coat, 0.5, winter, weights).score < 0.5 + 0.08 * 0.0 + 1e-9
    opted_out = ShopperContext(personalised=False, context=Context(local_hour=7))
    assert all(
        not c.signal.startswith("context")
        for c in score_candidate(coffee, 0.5, opted_out, weights).contributions
    )


def test_view_for_the_panel() -> None:
    view = context_view(Context(season="winter", local_hour=8, weekday=5, region="Oslo"), RULES)
    assert view["weekday"] == "Saturday" and view["local_hour"] == 8 and view["region"] == "Oslo"
    assert [r["name"] for r in view["rules"]] == ["breakfast"]
    assert view["rules"][0]["when"] == "hour 6-10"
