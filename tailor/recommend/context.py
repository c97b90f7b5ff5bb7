"""Context rules: the shopper's time of day, weekday, device, season and climate shift the
ranking, by rules a store writes in a TOML file (``context.toml`` at the repository root by
default, setting ``TAILOR_CONTEXT_RULES_FILE``)::

    [[context]]
    name = "breakfast"
    when = { hour = "6-10" }
    boost = { tags = ["coffee", "espresso", "tea"], categories = ["Food & Drink > Coffee"] }
    weight = 0.05
    reason = "a morning pick"

``when`` may name ``hour`` ("6-10": from 06:00 to 09:59; "22-6" wraps past midnight),
``weekday`` (["sat", "sun"], or "weekend" / "workday"), ``device`` (["mobile"]), ``season``
and ``climate``; every condition given must hold, and a condition on something unknown (no
local hour sent by the page, say) does not hold. ``boost`` names product ``tags`` and/or
category prefixes (a department "Kitchen" or a leaf "Kitchen > Coffee Machines"); a product
with any of them gains ``weight`` (negative to demote). The season and climate tags built
into :mod:`tailor.recommend.personal` keep working beside these rules.

Everything here is pure; the file is read once when the recommender is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tailor.config import read_toml_file

__all__ = [
    "CONDITIONS",
    "ContextRule",
    "ContextRuleError",
    "HourRange",
    "Situation",
    "context_view",
    "load_context_rules",
    "local_weekday",
    "matching_rules",
    "parse_context_rules",
    "parse_hours",
]

#: The keys ``when`` accepts.
CONDITIONS: tuple[str, ...] = ("hour", "weekday", "device", "season", "climate")
DEVICES: frozenset[str] = frozenset({"mobile", "tablet", "desktop"})
SEASONS: frozenset[str] = frozenset({"winter", "spring", "summer", "autumn"})
CLIMATES: frozenset[str] = frozenset({"cold", "dry", "hot", "mild", "rainy", "temperate", "warm"})
WEEKDAYS: dict[str, int] = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
WEEKDAY_GROUPS: dict[str, frozenset[int]] = {
    "weekend": frozenset({5, 6}),
    "workday": frozenset({0, 1, 2, 3, 4}),
}
#: A rule's weight is kept small: context nudges, relevance decides.
MAX_WEIGHT = 0.5


class ContextRuleError(ValueError):
    """A context rules file or rule that cannot be used; the message says where and why."""


class Situation(Protocol):
    """What a rule reads (a :class:`tailor.recommend.personal.Context` fits)."""

    @property
    def season(self) -> str | None: ...
    @property
    def climate(self) -> str | None: ...
    @property
    def device(self) -> str | None: ...
    @property
    def local_hour(self) -> int | None: ...
    @property
    def weekday(self) -> int | None: ...


class Tagged(Protocol):
    """What a boost reads from a product."""

    category: str
    tags: list[str]


@dataclass(frozen=True)
class HourRange:
    """Hours ``start`` ≤ h < ``end`` of a day; ``start > end`` wraps past midnight."""

    start: int
    end: int

    def __contains__(self, hour: object) -> bool:
        if not isinstance(hour, int):
            return False
        if self.start <= self.end:
            return self.start <= hour < self.end
        return hour >= self.start or hour < self.end

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


def parse_hours(text: str, where: str = "hour") -> HourRange:
    """``"6-10"`` → 06:00 to 09:59; ``"22-6"`` wraps. Hours are 0-24; empty ranges are refused."""
    parts = str(text).replace(" ", "").split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ContextRuleError(f'{where}: expected a range of hours like "6-10", got {text!r}')
    start, end = int(parts[0]), int(parts[1])
    if not (0 <= start <= 23 and 0 <= end <= 24):
        raise ContextRuleError(f"{where}: hours must be 0-23 (start) and 0-24 (end), got {text!r}")
    if start == end:
        raise ContextRuleError(f"{where}: the range {text!r} is empty")
    return HourRange(start, end)


@dataclass(frozen=True)
class ContextRule:
    """One configured rule: conditions on the situation and a boost for matching products."""

    name: str
    weight: float
    hours: HourRange | None = None
    weekdays: frozenset[int] | None = None
    devices: frozenset[str] | None = None
    seasons: frozenset[str] | None = None
    climates: frozenset[str] | None = None
    tags: frozenset[str] = frozenset()
    categories: tuple[str, ...] = ()
    reason: str | None = None

    def matches(self, ctx: Situation) -> bool:
        """Whether every condition of the rule holds in ``ctx`` (unknown values never match)."""
        if self.hours is not None and ctx.local_hour not in self.hours:
            return False
        if self.weekdays is not None and ctx.weekday not in self.weekdays:
            return False
        if self.devices is not None and ctx.device not in self.devices:
            return False
        if self.seasons is not None and ctx.season not in self.seasons:
            return False
        return self.climates is None or ctx.climate in self.climates

    def boosts(self, product: Tagged) -> bool:
        """Whether ``product`` has one of the rule's tags or sits under one of its categories."""
        if self.tags and self.tags & {t.lower() for t in product.tags or ()}:
            return True
        cat = product.category.lower()
        return any(cat == c or cat.startswith(c + " > ") for c in self.categories)

    def describe(self) -> str:
        """The conditions in words, e.g. ``hour 6-10, device mobile``."""
        parts: list[str] = []
        if self.hours is not None:
            parts.append(f"hour {self.hours}")
        if self.weekdays is not None:
            names = [d for d, i in WEEKDAYS.items() if i in self.weekdays]
            parts.append("weekday " + "/".join(names))
        for label, values in (
            ("device", self.devices),
            ("season", self.seasons),
            ("climate", self.climates),
        ):
            if values is not None:
                parts.append(f"{label} " + "/".join(sorted(values)))
        return ", ".join(parts) or "always"


def _names(value: Any, where: str, allowed: Iterable[str]) -> frozenset[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise ContextRuleError(f"{where}: expected a name or a list of names, got {value!r}")
    valid = sorted(allowed)
    out = frozenset(v.strip().lower() for v in items)
    unknown = sorted(out - set(valid))
    if unknown:
        raise ContextRuleError(f"{where}: unknown {unknown}; valid values are {valid}")
    return out


def _weekdays(value: Any, where: str) -> frozenset[int]:
    names = _names(value, where, [*WEEKDAYS, *WEEKDAY_GROUPS])
    days: set[int] = set()
    for n in names:
        days |= WEEKDAY_GROUPS.get(n, frozenset({WEEKDAYS.get(n, -1)}))
    return frozenset(days)


def _parse_rule(raw: Any, index: int) -> ContextRule:
    where = f"context rule #{index + 1}"
    if not isinstance(raw, Mapping):
        raise ContextRuleError(f"{where}: expected a table, got {type(raw).__name__}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ContextRuleError(f"{where}: 'name' is required (a non-empty string)")
    where = f"context rule {name!r}"
    unknown = sorted(set(raw) - {"name", "when", "boost", "weight", "reason"})
    if unknown:
        raise ContextRuleError(
            f"{where}: unknown key(s) {unknown}; valid keys are "
            "['boost', 'name', 'reason', 'weight', 'when']"
        )
    when = raw.get("when", {})
    if not isinstance(when, Mapping):
        raise ContextRuleError(f"{where}: 'when' must be a table such as {{ hour = \"6-10\" }}")
    bad = sorted(set(when) - set(CONDITIONS))
    if bad:
        raise ContextRuleError(f"{where}: unknown condition(s) {bad}; valid are {list(CONDITIONS)}")
    boost = raw.get("boost")
    if not isinstance(boost, Mapping) or not (boost.get("tags") or boost.get("categories")):
        raise ContextRuleError(f"{where}: 'boost' must name tags and/or categories")
    bad = sorted(set(boost) - {"tags", "categories"})
    if bad:
        raise ContextRuleError(
            f"{where}: unknown boost key(s) {bad}; valid are ['categories', 'tags']"
        )
    tags, cats = boost.get("tags", []), boost.get("categories", [])
    for label, value in (("tags", tags), ("categories", cats)):
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ContextRuleError(f"{where}: boost.{label} must be a list of strings")
    weight = raw.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise ContextRuleError(f"{where}: 'weight' is required (a number)")
    if not -MAX_WEIGHT <= float(weight) <= MAX_WEIGHT:
        raise ContextRuleError(f"{where}: weight must be within ±{MAX_WEIGHT}, got {weight}")
    reason = raw.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ContextRuleError(f"{where}: 'reason' must be a string")
    return ContextRule(
        name=name.strip(),
        weight=float(weight),
        hours=parse_hours(when["hour"], f"{where}: when.hour") if "hour" in when else None,
        weekdays=_weekdays(when["weekday"], f"{where}: when.weekday")
        if "weekday" in when
        else None,
        devices=_names(when["device"], f"{where}: when.device", DEVICES)
        if "device" in when
        else None,
        seasons=_names(when["season"], f"{where}: when.season", SEASONS)
        if "season" in when
        else None,
        climates=(
            _names(when["climate"], f"{where}: when.climate", CLIMATES)
            if "climate" in when
            else None
        ),
        tags=frozenset(t.strip().lower() for t in tags),
        categories=tuple(c.strip().lower() for c in cats),
        reason=reason.strip() if reason else None,
    )


def parse_context_rules(data: Mapping[str, Any]) -> tuple[ContextRule, ...]:
    """Rules from a parsed TOML document (its ``[[context]]`` tables; other keys are left to
    their owners). Names must be unique."""
    raw = data.get("context", [])
    if not isinstance(raw, list):
        raise ContextRuleError("'context' must be an array of tables ([[context]])")
    rules = tuple(_parse_rule(r, i) for i, r in enumerate(raw))
    seen: set[str] = set()
    for r in rules:
        if r.name in seen:
            raise ContextRuleError(f"context rule {r.name!r} is defined twice")
        seen.add(r.name)
    return rules


def load_context_rules(path: Path | str | None) -> tuple[ContextRule, ...]:
    """The rules in ``path`` (``None``: no rules). A missing or malformed file is an error
    naming the file."""
    if path is None:
        return ()
    file = Path(path)
    data = read_toml_file(file, "context rules file", ContextRuleError)
    try:
        return parse_context_rules(data)
    except ContextRuleError as exc:
        raise ContextRuleError(f"{file}: {exc}") from exc


def matching_rules(rules: Sequence[ContextRule], ctx: Situation) -> list[ContextRule]:
    """The rules whose conditions hold in ``ctx``, in file order."""
    return [r for r in rules if r.matches(ctx)]


def local_weekday(tz: object, local_hour: int | None, now: datetime) -> int | None:
    """The shopper's weekday (Monday 0): from their IANA time zone if the page sent a valid
    one, else from their local hour against ``now`` (assuming an offset within ±12 hours),
    else ``None``."""
    if isinstance(tz, str) and tz:
        try:
            return now.astimezone(ZoneInfo(tz)).weekday()
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if local_hour is None or now.tzinfo is None:
        return None
    offset = (local_hour - now.hour + 12) % 24 - 12
    return (now + timedelta(hours=offset)).weekday()


WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def context_view(ctx: Situation, rules: Sequence[ContextRule]) -> dict[str, Any]:
    """The shopper's context and the rules that apply, as JSON for the assist panel."""
    weekday = ctx.weekday
    return {
        "season": ctx.season,
        "climate": ctx.climate,
        "region": getattr(ctx, "region", None),
        "device": ctx.device,
        "local_hour": ctx.local_hour,
        "weekday": WEEKDAY_NAMES[weekday] if weekday is not None and 0 <= weekday < 7 else None,
        "rules": [
            {"name": r.name, "when": r.describe(), "weight": r.weight, "reason": r.reason}
            for r in matching_rules(rules, ctx)
        ],
    }
