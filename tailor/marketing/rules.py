"""Trigger rules as configured in ``triggers.toml`` (setting ``TAILOR_TRIGGERS_FILE``), and
the pure logic every rule shares: frequency caps, cooldowns and quiet hours.

A rule::

    [[trigger]]
    name = "abandoned-cart"
    type = "abandoned_cart"          # or "restock_due", "retention"
    enabled = true
    channels = ["chat", "telegram"]  # "chat": the shopper's next conversation; others outbound
    message = "You left the {title} in your cart."
    suggestions = 2                  # tailored products shown with it
    cap = { firings = 2, hours = 168 }   # at most 2 firings per customer a week
    cooldown_hours = 24              # and never twice within a day for the same customer
    rule_cooldown_minutes = 0        # and at most once per this many minutes for anyone
    quiet_hours = "21-9"             # no outbound messages 21:00-08:59 local time
    # abandoned_cart: wait_hours, idle_minutes, lookback_days
    # restock_due: horizon_days, min_confidence; retention: min_risk

``[settings]`` holds ``timezone`` (for quiet hours when the customer's own is unknown),
``attribution_days`` (how long after a trigger a click or purchase counts for it) and
``max_per_customer = { firings = 3, hours = 168 }`` and ``cooldown_hours`` (the minimum gap
between two firings of any rules for the same customer) across all rules.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tailor.config import read_toml_file
from tailor.recommend.context import ContextRuleError, HourRange, parse_hours

__all__ = [
    "CHANNELS",
    "CHAT",
    "RULE_TYPES",
    "FrequencyCap",
    "TriggerConfig",
    "TriggerConfigError",
    "TriggerRule",
    "cap_allows",
    "in_quiet_hours",
    "load_trigger_config",
    "parse_trigger_config",
]

#: The in-conversation channel: the offer comes with the greeting of the next conversation.
CHAT = "chat"
#: Every channel a rule may name (outbound ones need the customer's stored opt-in).
CHANNELS: tuple[str, ...] = (CHAT, "telegram", "slack", "twilio")
#: Rule types → their own keys with defaults, and the placeholders their message may use.
RULE_TYPES: dict[str, tuple[dict[str, float], frozenset[str]]] = {
    "abandoned_cart": (
        {"wait_hours": 1.0, "idle_minutes": 30.0, "lookback_days": 7.0},
        frozenset({"title", "name", "brand", "category"}),
    ),
    "restock_due": (
        {"horizon_days": 7.0, "min_confidence": 0.5},
        frozenset({"title", "name", "category", "reason"}),
    ),
    "retention": ({"min_risk": 0.7}, frozenset({"name"})),
}
_COMMON_KEYS = frozenset(
    {
        "name",
        "type",
        "enabled",
        "channels",
        "message",
        "suggestions",
        "cap",
        "cooldown_hours",
        "rule_cooldown_minutes",
        "quiet_hours",
    }
)


class TriggerConfigError(ValueError):
    """A triggers file or rule that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``firings`` in any window of ``period`` (per customer)."""

    firings: int
    period: timedelta


@dataclass(frozen=True)
class TriggerRule:
    """One configured trigger."""

    name: str
    type: str
    message: str
    channels: tuple[str, ...] = (CHAT,)
    enabled: bool = True
    suggestions: int = 2
    cap: FrequencyCap = FrequencyCap(2, timedelta(days=7))
    cooldown: timedelta = timedelta(hours=24)
    rule_cooldown: timedelta = timedelta(0)
    quiet_hours: HourRange | None = None
    params: Mapping[str, float] = field(default_factory=dict)

    @property
    def outbound(self) -> tuple[str, ...]:
        """The rule's channels other than the conversation itself."""
        return tuple(c for c in self.channels if c != CHAT)

    def param(self, key: str) -> float:
        """A type-specific setting (``wait_hours`` …), configured or default."""
        return float(self.params.get(key, RULE_TYPES[self.type][0][key]))

    def render(self, **values: Any) -> str:
        """The message with its placeholders filled in (missing ones left empty)."""
        return string.Formatter().vformat(self.message, (), _Blank(values)).strip()

    def describe(self) -> str:
        """One line for ``tailor triggers list``."""
        quiet = f", quiet {self.quiet_hours}" if self.quiet_hours else ""
        params = ", ".join(f"{k}={self.param(k):g}" for k in RULE_TYPES[self.type][0])
        hours = self.cap.period.total_seconds() / 3600
        return (
            f"{self.name} [{self.type}] {'on' if self.enabled else 'off'} · "
            f"channels {'/'.join(self.channels)} · cap {self.cap.firings} per {hours:g} h, "
            f"cooldown {self.cooldown.total_seconds() / 3600:g} h{quiet} · {params}"
        )


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class TriggerConfig:
    """All rules and the settings they share."""

    rules: tuple[TriggerRule, ...] = ()
    timezone: str = "UTC"
    attribution_days: float = 7.0
    max_per_customer: FrequencyCap | None = None
    #: Minimum gap between two firings of any rules for the same customer.
    cooldown: timedelta = timedelta(0)

    def rule(self, name: str) -> TriggerRule:
        """The rule called ``name``; the error lists the valid names."""
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(f"no trigger rule {name!r}; rules are {[r.name for r in self.rules]}")


def _number(raw: Mapping[str, Any], key: str, where: str, default: float, minimum: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TriggerConfigError(f"{where}: {key} must be a number, got {value!r}")
    if value < minimum:
        raise TriggerConfigError(f"{where}: {key} must be at least {minimum:g}, got {value}")
    return float(value)


def _cap(raw: Any, where: str) -> FrequencyCap:
    if not isinstance(raw, Mapping) or set(raw) != {"firings", "hours"}:
        raise TriggerConfigError(f"{where}: expected {{ firings = N, hours = H }}, got {raw!r}")
    firings = raw["firings"]
    if isinstance(firings, bool) or not isinstance(firings, int) or firings < 1:
        raise TriggerConfigError(f"{where}: firings must be a whole number ≥ 1, got {firings!r}")
    hours = _number(raw, "hours", where, 0, 0.001)
    return FrequencyCap(firings, timedelta(hours=hours))


def _parse_rule(raw: Any, index: int) -> TriggerRule:
    where = f"trigger #{index + 1}"
    if not isinstance(raw, Mapping):
        raise TriggerConfigError(f"{where}: expected a table, got {type(raw).__name__}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise TriggerConfigError(f"{where}: 'name' is required (a non-empty string)")
    where = f"trigger {name!r}"
    kind = raw.get("type")
    if kind not in RULE_TYPES:
        raise TriggerConfigError(f"{where}: type must be one of {sorted(RULE_TYPES)}, got {kind!r}")
    defaults, placeholders = RULE_TYPES[kind]
    valid = _COMMON_KEYS | set(defaults)
    unknown = sorted(set(raw) - valid)
    if unknown:
        raise TriggerConfigError(
            f"{where}: unknown key(s) {unknown}; valid keys for {kind} are {sorted(valid)}"
        )
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise TriggerConfigError(f"{where}: enabled must be true or false")
    channels = raw.get("channels", [CHAT])
    if (
        not isinstance(channels, list)
        or not channels
        or not all(isinstance(c, str) for c in channels)
    ):
        raise TriggerConfigError(f'{where}: channels must be a non-empty list such as ["chat"]')
    bad = sorted(set(channels) - set(CHANNELS))
    if bad:
        raise TriggerConfigError(f"{where}: unknown channel(s) {bad}; valid are {list(CHANNELS)}")
    message = raw.get("message")
    if not isinstance(message, str) or not message.strip():
        raise TriggerConfigError(f"{where}: 'message' is required (the text the shopper sees)")
    try:
        used = {f for _, f, _, _ in string.Formatter().parse(message) if f}
    except ValueError as exc:
        raise TriggerConfigError(f"{where}: message is not a valid template: {exc}") from exc
    wrong = sorted(used - placeholders)
    if wrong:
        raise TriggerConfigError(
            f"{where}: message uses unknown placeholder(s) {wrong}; {kind} offers "
            f"{sorted(placeholders)}"
        )
    suggestions = raw.get("suggestions", 2)
    if (
        isinstance(suggestions, bool)
        or not isinstance(suggestions, int)
        or not 0 <= suggestions <= 6
    ):
        raise TriggerConfigError(f"{where}: suggestions must be a whole number 0-6")
    quiet = None
    if "quiet_hours" in raw:
        try:
            quiet = parse_hours(raw["quiet_hours"], f"{where}: quiet_hours")
        except ContextRuleError as exc:
            raise TriggerConfigError(str(exc)) from exc
    params = {k: _number(raw, k, where, v, 0.0) for k, v in defaults.items()}
    for k in ("min_confidence", "min_risk"):
        if k in params and params[k] > 1:
            raise TriggerConfigError(f"{where}: {k} must be within 0-1, got {params[k]}")
    return TriggerRule(
        name=name.strip(),
        type=kind,
        message=message.strip(),
        channels=tuple(dict.fromkeys(channels)),
        enabled=enabled,
        suggestions=suggestions,
        cap=_cap(raw["cap"], f"{where}: cap")
        if "cap" in raw
        else FrequencyCap(2, timedelta(days=7)),
        cooldown=timedelta(hours=_number(raw, "cooldown_hours", where, 24, 0)),
        rule_cooldown=timedelta(minutes=_number(raw, "rule_cooldown_minutes", where, 0, 0)),
        quiet_hours=quiet,
        params=params,
    )


def parse_trigger_config(data: Mapping[str, Any]) -> TriggerConfig:
    """The configuration in a parsed TOML document (``[settings]`` and ``[[trigger]]``)."""
    unknown = sorted(set(data) - {"settings", "trigger"})
    if unknown:
        raise TriggerConfigError(
            f"unknown top-level key(s) {unknown}; valid are ['settings', 'trigger']"
        )
    settings = data.get("settings", {})
    if not isinstance(settings, Mapping):
        raise TriggerConfigError("[settings] must be a table")
    valid = ["attribution_days", "cooldown_hours", "max_per_customer", "timezone"]
    bad = sorted(set(settings) - set(valid))
    if bad:
        raise TriggerConfigError(f"[settings]: unknown key(s) {bad}; valid are {valid}")
    tz = settings.get("timezone", "UTC")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TriggerConfigError(f"[settings]: unknown time zone {tz!r}") from exc
    raw_rules = data.get("trigger", [])
    if not isinstance(raw_rules, list):
        raise TriggerConfigError("'trigger' must be an array of tables ([[trigger]])")
    rules = tuple(_parse_rule(r, i) for i, r in enumerate(raw_rules))
    names = [r.name for r in rules]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise TriggerConfigError(f"trigger name(s) defined twice: {dup}")
    return TriggerConfig(
        rules=rules,
        timezone=str(tz),
        attribution_days=_number(settings, "attribution_days", "[settings]", 7, 0.01),
        max_per_customer=(
            _cap(settings["max_per_customer"], "[settings]: max_per_customer")
            if "max_per_customer" in settings
            else None
        ),
        cooldown=timedelta(hours=_number(settings, "cooldown_hours", "[settings]", 0, 0)),
    )


def load_trigger_config(path: Path | str) -> TriggerConfig:
    """The configuration in ``path``; a missing or malformed file is an error naming it."""
    file = Path(path)
    data = read_toml_file(file, "triggers file", TriggerConfigError)
    try:
        return parse_trigger_config(data)
    except TriggerConfigError as exc:
        raise TriggerConfigError(f"{file}: {exc}") from exc


# -- the shared rules of firing ------------------------------------------------------------


def cap_allows(
    firings: Sequence[datetime],
    now: datetime,
    cap: FrequencyCap | None,
    cooldown: timedelta = timedelta(0),
) -> bool:
    """Whether one more firing at ``now`` keeps within ``cap`` (fewer than ``cap.firings``
    in the window ``(now - period, now]``) and ``cooldown`` (none in ``(now - cooldown,
    now]``). ``firings`` are the earlier firings for the same recipient, in any order."""
    if cooldown > timedelta(0) and any(now - cooldown < t <= now for t in firings):
        return False
    if cap is None:
        return True
    recent = sum(1 for t in firings if now - cap.period < t <= now)
    return recent < cap.firings


def in_quiet_hours(now: datetime, tz: str | None, quiet: HourRange | None, fallback: str) -> bool:
    """Whether ``now`` falls in the quiet hours at the recipient's local time (their IANA
    time zone if known and valid, else ``fallback``)."""
    if quiet is None:
        return False
    zone: ZoneInfo
    try:
        zone = ZoneInfo(tz) if tz else ZoneInfo(fallback)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(fallback)
    return now.astimezone(zone).hour in quiet
