"""Experiment definitions: what is being tested, on whom, when, and with which weights.

Definitions live in a committed TOML file (``experiments.toml`` at the repository root, or
``TAILOR_EXPERIMENTS_FILE``); a missing file means no experiments. Format::

    [[experiment]]
    name = "personalisation-2026"
    description = "..."               # optional
    start = 2026-11-01T00:00:00Z      # TOML datetimes (a zone is required) or ISO strings
    end = 2027-02-01T00:00:00Z
    control = "blend"                 # optional: default the first arm

    [experiment.segments]             # optional: who may take part (any listed name per kind)
    behavioural = ["champions", "loyal"]

    [[experiment.arm]]
    name = "blend"
    traffic = 1.0                     # relative traffic weight (> 0)
    [experiment.arm.weights]          # ranking-weight overrides (names of TAILOR_RANK_*)
    segment = 0.0

Every problem is reported with the file, the line where known, and the field's path.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tailor.config import Settings
from tailor.profiles.psychographics import NO_SIGNAL
from tailor.profiles.psychographics import SEGMENTS as PSYCHOGRAPHIC_SEGMENTS
from tailor.profiles.rfm import NO_PURCHASES, SEGMENT_NAMES

#: Ranking weights an arm may override: the ``rank_*`` settings without the prefix (the
#: fields of :class:`tailor.recommend.personal.RankingWeights`).
WEIGHT_NAMES: tuple[str, ...] = tuple(
    f.name.removeprefix("rank_")
    for f in fields(Settings)
    if f.name.startswith("rank_") and f.type in ("float", float)
)

#: Segment kinds as written in the file → the kind stored in ``customer_segments`` (and
#: used by :class:`~tailor.recommend.personal.ShopperContext.segments`).
SEGMENT_KINDS: dict[str, str] = {
    "behavioural": "rfm",
    "rfm": "rfm",
    "demographic": "demographic",
    "geographic": "geographic",
    "psychographic": "psychographic",
}

#: Names a segment of a kind can have, where the set is closed (rule-based geographic and
#: demographic names are open enough that they are not checked).
KNOWN_SEGMENTS: dict[str, frozenset[str]] = {
    "rfm": frozenset((*SEGMENT_NAMES, NO_PURCHASES)),
    "psychographic": frozenset((*PSYCHOGRAPHIC_SEGMENTS, NO_SIGNAL)),
}

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class ExperimentError(ValueError):
    """An experiments file that cannot be used; the message names the file, line and field."""


@dataclass(frozen=True)
class Arm:
    """One variant: its share of the traffic and the ranking weights it changes."""

    name: str
    traffic: float
    weights: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """An A/B(/n) test of ranking weights over a time window and (optionally) some segments."""

    name: str
    arms: tuple[Arm, ...]
    start: datetime
    end: datetime
    control: str
    #: Stored segment kind → the names that may take part (empty: everyone).
    segments: Mapping[str, frozenset[str]] = field(default_factory=dict)
    description: str = ""

    def arm(self, name: str) -> Arm:
        """The arm called ``name``; unknown names list the valid ones."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(
            f"experiment {self.name!r} has no arm {name!r}; arms are {[a.name for a in self.arms]}"
        )

    def active(self, now: datetime) -> bool:
        """True while ``start <= now < end``."""
        return self.start <= now < self.end

    def targets(self, segments: Mapping[str, str]) -> bool:
        """Whether a shopper in ``segments`` (``{kind: name}``) may take part: for every kind
        the experiment names, the shopper's segment of that kind must be listed."""
        return all(segments.get(kind) in names for kind, names in self.segments.items())

    def describe_segments(self) -> str:
        """``rfm: champions, loyal`` or ``everyone``."""
        if not self.segments:
            return "everyone"
        return "; ".join(f"{k}: {', '.join(sorted(v))}" for k, v in sorted(self.segments.items()))


def _line_of(text: str, key: str, after: int = 0) -> int | None:
    """Line number (1-based) of the first ``key =`` or ``[...key]`` at or after line ``after``."""
    pattern = re.compile(rf"^\s*(\"?{re.escape(key)}\"?\s*=|\[\[?[^\]]*\b{re.escape(key)}\]\]?)")
    for number, line in enumerate(text.splitlines(), start=1):
        if number >= after and pattern.search(line):
            return number
    return None


class _Reader:
    """Validation with errors naming the file, the line where found and the field path."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def fail(self, where: str, message: str, key: str | None = None, after: int = 0) -> None:
        line = _line_of(self.text, key, after) if key else None
        at = f"{self.path}" + (f", line {line}" if line else "")
        raise ExperimentError(f"{at}: {where}: {message}")

    def name_line(self, name: str, after: int = 0) -> int:
        """The line of ``name = "<name>"`` at or after line ``after`` (0 when not found)."""
        for number, line in enumerate(self.text.splitlines(), start=1):
            if number >= after and re.match(rf"^\s*name\s*=\s*[\"']{re.escape(name)}[\"']", line):
                return number
        return 0


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(float(value)) else None


def parse_experiments(text: str, path: Path | str = "experiments.toml") -> list[Experiment]:
    """Experiments defined in TOML ``text`` (``path`` only names the source in errors)."""
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(f"{path}: not valid TOML: {exc}") from exc
    r = _Reader(path, text)
    unknown = sorted(set(data) - {"experiment"})
    if unknown:
        r.fail(
            "top level", f"unknown table(s) {unknown}; only [[experiment]] is allowed", unknown[0]
        )
    raw = data.get("experiment", [])
    if not isinstance(raw, list):
        r.fail("experiment", "must be an array of tables ([[experiment]])", "experiment")
    out: list[Experiment] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        out.append(_experiment(r, i, item))
        if out[-1].name in seen:
            r.fail(f"experiment[{i}].name", f"duplicate experiment name {out[-1].name!r}", "name")
        seen.add(out[-1].name)
    return out


def _experiment(r: _Reader, i: int, item: dict[str, Any]) -> Experiment:
    where = f"experiment[{i}]"
    allowed = {"name", "description", "start", "end", "control", "segments", "arm"}
    name = item.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        r.fail(
            f"{where}.name",
            f"must be 1-64 lower-case letters, digits, '-', '_' or '.', got {name!r}",
            "experiment",
        )
    assert isinstance(name, str)
    where = f"experiment {name!r}"
    after = r.name_line(name)
    extra = sorted(set(item) - allowed)
    if extra:
        r.fail(
            where, f"unknown field(s) {extra}; valid fields are {sorted(allowed)}", extra[0], after
        )
    times: dict[str, datetime] = {}
    for key in ("start", "end"):
        value = _as_datetime(item.get(key))
        if value is None:
            r.fail(
                f"{where}.{key}",
                f"must be a date-time such as 2026-11-01T00:00:00Z, got {item.get(key)!r}",
                key,
                after,
            )
        assert value is not None
        if value.tzinfo is None:
            r.fail(f"{where}.{key}", "needs a time zone (e.g. ...T00:00:00Z)", key, after)
        times[key] = value.astimezone(UTC)
    if times["end"] <= times["start"]:
        r.fail(f"{where}.end", "must be after start", "end", after)
    description = item.get("description", "")
    if not isinstance(description, str):
        r.fail(f"{where}.description", "must be a string", "description", after)
    arms_raw = item.get("arm")
    if not isinstance(arms_raw, list) or len(arms_raw) < 2:
        r.fail(f"{where}.arm", "needs at least two [[experiment.arm]] tables", "arm", after)
    assert isinstance(arms_raw, list)
    arms = tuple(_arm(r, f"{where}.arm[{j}]", a, after) for j, a in enumerate(arms_raw))
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        r.fail(f"{where}.arm", f"arm names must be unique, got {names}", "arm", after)
    control = item.get("control", names[0])
    if control not in names:
        r.fail(f"{where}.control", f"{control!r} is not one of the arms {names}", "control", after)
    segments = _segments(r, f"{where}.segments", item.get("segments", {}), after)
    return Experiment(
        name=name,
        arms=arms,
        start=times["start"],
        end=times["end"],
        control=str(control),
        segments=segments,
        description=str(description),
    )


def _arm(r: _Reader, where: str, item: Any, after: int) -> Arm:
    if not isinstance(item, dict):
        r.fail(where, "must be a table", "arm", after)
    allowed = {"name", "traffic", "weights"}
    extra = sorted(set(item) - allowed)
    if extra:
        r.fail(
            where, f"unknown field(s) {extra}; valid fields are {sorted(allowed)}", extra[0], after
        )
    name = item.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        r.fail(f"{where}.name", f"must be a short lower-case name, got {name!r}", "name", after)
    assert isinstance(name, str)
    after = r.name_line(name, after) or after
    traffic = _number(item.get("traffic"))
    if traffic is None or traffic <= 0:
        r.fail(
            f"{where}.traffic",
            f"must be a positive number (a relative share), got {item.get('traffic')!r}",
            "traffic",
            after,
        )
    weights_raw = item.get("weights", {})
    if not isinstance(weights_raw, dict):
        r.fail(f"{where}.weights", "must be a table of ranking weights", "weights", after)
    weights: dict[str, float] = {}
    for key, value in weights_raw.items():
        if key not in WEIGHT_NAMES:
            r.fail(
                f"{where}.weights.{key}",
                f"unknown ranking weight; valid weights are {list(WEIGHT_NAMES)}",
                key,
                after,
            )
        number = _number(value)
        if number is None or number < 0:
            r.fail(f"{where}.weights.{key}", f"must be a number >= 0, got {value!r}", key, after)
        assert number is not None
        if key == "mmr_lambda" and number > 1:
            r.fail(f"{where}.weights.{key}", f"must be at most 1, got {value!r}", key, after)
        weights[key] = number
    assert isinstance(name, str) and traffic is not None
    return Arm(name=name, traffic=traffic, weights=weights)


def _segments(r: _Reader, where: str, raw: Any, after: int) -> dict[str, frozenset[str]]:
    if not isinstance(raw, dict):
        r.fail(where, 'must be a table such as { behavioural = ["champions"] }', "segments", after)
    out: dict[str, frozenset[str]] = {}
    for kind, names in raw.items():
        stored = SEGMENT_KINDS.get(kind)
        if stored is None:
            r.fail(
                f"{where}.{kind}",
                f"unknown segment kind; valid kinds are {sorted(SEGMENT_KINDS)}",
                kind,
                after,
            )
        assert stored is not None
        if (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, str) and n for n in names)
        ):
            r.fail(f"{where}.{kind}", "must be a non-empty list of segment names", kind, after)
        known = KNOWN_SEGMENTS.get(stored)
        if known is not None:
            bad = sorted(set(names) - known)
            if bad:
                r.fail(
                    f"{where}.{kind}",
                    f"unknown segment(s) {bad}; valid names are {sorted(known)}",
                    kind,
                    after,
                )
        out[stored] = out.get(stored, frozenset()) | frozenset(names)
    return out


def load_experiments(path: Path | str | None) -> list[Experiment]:
    """Experiments defined in the file at ``path``; none when it is missing (or ``None``)."""
    if path is None:
        return []
    p = Path(path)
    if not p.exists():
        return []
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentError(f"{p}: cannot be read: {exc}") from exc
    return parse_experiments(text, p)


def find_experiment(experiments: Sequence[Experiment], name: str) -> Experiment:
    """The experiment called ``name``; unknown names list the defined ones."""
    for e in experiments:
        if e.name == name:
            return e
    raise ExperimentError(
        f"no experiment {name!r}; defined: {[e.name for e in experiments] or 'none'}"
    )
