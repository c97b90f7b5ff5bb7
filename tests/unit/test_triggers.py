"""Trigger rules: parsing and its errors, frequency caps against a brute-force simulation,
quiet hours, and abandoned-cart detection (pure logic; the service is in tests/integration)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tailor.config import PROJECT_ROOT
from tailor.marketing.rules import (
    FrequencyCap,
    TriggerConfigError,
    cap_allows,
    in_quiet_hours,
    load_trigger_config,
    parse_trigger_config,
)
from tailor.marketing.triggers import Activity, abandoned_items
from tailor.recommend.context import parse_hours

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def rule(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "cart",
        "type": "abandoned_cart",
        "message": "You left the {title} in your cart",
    }
    base.update(over)
    return base


# -- parsing -----------------------------------------------------------------------------------


def test_committed_file_parses_with_every_type() -> None:
    config = load_trigger_config(PROJECT_ROOT / "triggers.toml")
    types = {r.type for r in config.rules}
    assert types == {"abandoned_cart", "restock_due", "retention"}
    cart = config.rule("abandoned-cart")
    assert cart.cap == FrequencyCap(2, timedelta(hours=168))
    assert cart.quiet_hours is not None and 23 in cart.quiet_hours and 12 not in cart.quiet_hours
    assert cart.param("idle_minutes") == 30
    assert config.max_per_customer == FrequencyCap(3, timedelta(hours=168))
    assert config.cooldown == timedelta(hours=12)
    assert parse_trigger_config({}).cooldown == timedelta(0)


def test_defaults_and_rendering() -> None:
    config = parse_trigger_config({"trigger": [rule()]})
    r = config.rules[0]
    assert r.channels == ("chat",) and r.enabled and r.suggestions == 2
    assert r.param("wait_hours") == 1.0
    assert r.render(title="Aero Jacket") == "You left the Aero Jacket in your cart"


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"type": "abandoned"}, r"type must be one of \['abandoned_cart', 'restock_due'"),
        ({"wait": 3}, r"unknown key\(s\) \['wait'\]; valid keys for abandoned_cart"),
        ({"min_risk": 0.5}, r"unknown key\(s\) \['min_risk'\]"),
        ({"channels": ["email"]}, r"unknown channel\(s\) \['email'\]; valid are \['chat'"),
        ({"channels": []}, "channels must be a non-empty list"),
        ({"message": "Hi {first}"}, r"unknown placeholder\(s\) \['first'\]; abandoned_cart offers"),
        ({"message": "Hi {title"}, "not a valid template"),
        ({"message": ""}, "'message' is required"),
        ({"cap": {"firings": 0, "hours": 5}}, "firings must be a whole number"),
        ({"cap": {"firings": 2}}, r"expected \{ firings = N, hours = H \}"),
        ({"quiet_hours": "night"}, "quiet_hours: expected a range of hours"),
        ({"quiet_hours": "22-25"}, "hours must be 0-23"),
        ({"enabled": "yes"}, "enabled must be true or false"),
        ({"suggestions": 9}, "suggestions must be a whole number 0-6"),
        ({"wait_hours": -1}, "wait_hours must be at least 0"),
        ({"cooldown_hours": "1d"}, "cooldown_hours must be a number"),
    ],
)
def test_bad_rules_are_named(over: dict[str, object], match: str) -> None:
    with pytest.raises(TriggerConfigError, match=match):
        parse_trigger_config({"trigger": [rule(**over)]})


def test_bad_documents() -> None:
    with pytest.raises(TriggerConfigError, match=r"trigger name\(s\) defined twice: \['cart'\]"):
        parse_trigger_config({"trigger": [rule(), rule()]})
    with pytest.raises(TriggerConfigError, match="unknown time zone 'Mars/Olympus'"):
        parse_trigger_config({"settings": {"timezone": "Mars/Olympus"}})
    with pytest.raises(TriggerConfigError, match=r"\[settings\]: unknown key\(s\) \['cap'\]"):
        parse_trigger_config({"settings": {"cap": 1}})
    with pytest.raises(TriggerConfigError, match=r"unknown top-level key\(s\) \['triggers'\]"):
        parse_trigger_config({"triggers": []})
    with pytest.raises(TriggerConfigError, match="min_risk must be within 0-1"):
        parse_trigger_config(
            {"trigger": [{"name": "r", "type": "retention", "message": "Hi", "min_risk": 2}]}
        )


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(TriggerConfigError, match=r"nope\.toml does not exist"):
        load_trigger_config(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[trigger]]\nname = 'x\n")
    with pytest.raises(TriggerConfigError, match=r"broken\.toml is not valid TOML"):
        load_trigger_config(broken)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[[trigger]]\nname = 'x'\ntype = 'nope'\nmessage = 'm'\n")
    with pytest.raises(TriggerConfigError, match=r"wrong.toml: trigger 'x': type must be"):
        load_trigger_config(wrong)


# -- frequency caps ------------------------------------------------------------------------------


def _brute_force_ok(fired: list[datetime], cap: FrequencyCap, cooldown: timedelta) -> bool:
    """Every window [f, f + period) anchored at a firing holds at most ``cap.firings``, and no
    two firings are closer than ``cooldown`` — checked over all pairs and all windows."""
    for f in fired:
        if sum(1 for g in fired if f <= g < f + cap.period) > cap.firings:
            return False
    return all(
        abs(a - b) >= cooldown for i, a in enumerate(fired) for b in fired[i + 1 :]
    ) or cooldown == timedelta(0)


@pytest.mark.parametrize("seed", range(12))
def test_caps_match_a_brute_force_simulation(seed: int) -> None:
    rng = random.Random(seed)
    cap = FrequencyCap(rng.randint(1, 4), timedelta(hours=rng.choice([6, 24, 72, 168])))
    cooldown = timedelta(hours=rng.choice([0, 1, 5, 24]))
    attempts = sorted(T0 + timedelta(minutes=rng.randint(0, 30 * 24 * 60)) for _ in range(300))
    fired: list[datetime] = []
    for t in attempts:
        allowed = cap_allows(fired, t, cap, cooldown)
        # the reference: would firing now break a window or the cooldown?
        assert allowed == _brute_force_ok([*fired, t], cap, cooldown), (t, fired[-5:])
        if allowed:
            fired.append(t)
    assert fired, "some attempts must get through"
    assert len(fired) < len(attempts), "300 attempts in a month must hit the cap"


def test_cap_counts_only_the_window() -> None:
    cap = FrequencyCap(2, timedelta(hours=24))
    fired = [T0, T0 + timedelta(hours=1)]
    assert not cap_allows(fired, T0 + timedelta(hours=23, minutes=59), cap)
    assert cap_allows(fired, T0 + timedelta(hours=24), cap)  # the first left the window
    assert cap_allows(fired, T0 + timedelta(hours=2), None)  # no cap at all
    assert not cap_allows([T0], T0 + timedelta(hours=3), None, timedelta(hours=4))


# -- quiet hours ---------------------------------------------------------------------------------


def test_quiet_hours_in_local_time() -> None:
    quiet = parse_hours("21-9")
    late_utc = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)
    assert in_quiet_hours(late_utc, "Europe/Berlin", quiet, "UTC")  # 00:30 there
    assert not in_quiet_hours(late_utc, "America/New_York", quiet, "UTC")  # 18:30 there
    assert in_quiet_hours(late_utc, None, quiet, "UTC")  # unknown: the configured zone
    assert not in_quiet_hours(late_utc, None, quiet, "America/Los_Angeles")  # 15:30
    assert in_quiet_hours(late_utc, "Not/AZone", quiet, "UTC")  # invalid: the fallback
    assert not in_quiet_hours(late_utc, "Europe/Berlin", None, "UTC")
    morning = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    assert not in_quiet_hours(morning, "UTC", quiet, "UTC")  # 9 is the first loud hour


# -- abandoned carts ------------------------------------------------------------------------------

WAIT, IDLE, LOOKBACK = timedelta(hours=1), timedelta(minutes=30), timedelta(days=7)


def ev(kind: str, minutes: float, pid: int | None = 7, **payload: object) -> Activity:
    return Activity(kind, pid, T0 + timedelta(minutes=minutes), payload)


def found(events: list[Activity], at_minutes: float) -> list[int]:
    now = T0 + timedelta(minutes=at_minutes)
    return [pid for pid, _ in abandoned_items(events, now, WAIT, IDLE, LOOKBACK)]


def test_abandoned_after_leaving() -> None:
    events = [ev("view", 0), ev("cart", 2), ev("message", 5, None)]
    assert found(events, 120) == [7]


def test_not_abandoned_when_bought_or_too_recent_or_too_old() -> None:
    assert found([ev("cart", 0), ev("purchase", 50)], 240) == []
    assert found([ev("cart", 0)], 40) == []  # within the hour allowed to buy
    assert found([ev("cart", 0)], 8 * 24 * 60) == []  # out of the lookback


def test_still_shopping_is_not_leaving() -> None:
    # active every 20 minutes since carting: never a 30-minute gap
    events = [ev("cart", 0)] + [ev("view", m, 9) for m in range(20, 200, 20)]
    assert found(events, 200) == []
    # the greeting now, after a long gap, means they left and came back
    events.append(ev("message", 400, None))
    assert found(events, 400) == [7]


def test_reminded_once_until_carted_again() -> None:
    events = [ev("cart", 0), ev("trigger", 120, None, subject=7)]
    assert found(events, 300) == []
    events.append(ev("cart", 400))
    assert found(events, 600) == [7]


def test_most_recent_cart_first() -> None:
    events = [ev("cart", 0, 1), ev("cart", 10, 2), ev("cart", 5, 3), ev("purchase", 20, 3)]
    assert found(events, 300) == [2, 1]


# -- the stored opt-in -------------------------------------------------------------------------


def test_marketing_opt_in_needs_a_linked_account(tmp_path: Path) -> None:
    from tailor.store import make_session_factory
    from tailor.store.marketing import (
        marketing_channels,
        opted_in_customers,
        set_marketing_opt_in,
    )
    from tailor.store.models import Customer
    from tailor.store.profiles import link_channel_user

    factory = make_session_factory(f"sqlite:///{tmp_path / 't.db'}")
    with factory.begin() as s:
        c = Customer(external_id="c-1", name="Ada Lovelace")
        s.add(c)
        s.flush()
        with pytest.raises(LookupError, match=r"no linked telegram account \(linked: none\)"):
            set_marketing_opt_in(s, c.id, "telegram", True)
        link_channel_user(s, "twilio", "+15550001", c.id)
        link_channel_user(s, "telegram", "tg-1", c.id)
        s.flush()
        assert marketing_channels(s, c.id) == {}  # linked is not opted in
        set_marketing_opt_in(s, c.id, "telegram", True, at=T0)
        assert marketing_channels(s, c.id) == {"telegram": "tg-1"}
        assert opted_in_customers(s, ["telegram", "slack"]) == [c.id]
        assert opted_in_customers(s, ["twilio"]) == []
        set_marketing_opt_in(s, c.id, "telegram", False)
        assert marketing_channels(s, c.id) == {}
