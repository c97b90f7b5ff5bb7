"""Experiments: definitions and their errors, assignment (determinism, split, targeting),
statistics against scipy and simulation, outcome attribution against a brute-force
reference, and the report."""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from tailor.config import PROJECT_ROOT
from tailor.experiments import (
    ExperimentError,
    arm_for,
    assign,
    bucket,
    find_experiment,
    load_experiments,
    parse_experiments,
    unit_key,
)
from tailor.experiments.definitions import WEIGHT_NAMES
from tailor.experiments.outcomes import PRODUCT_ACTIONS, Exposure, Outcome, tally
from tailor.experiments.report import Report, significance
from tailor.experiments.stats import holm, mean_ci, two_proportion_z, wilson
from tailor.recommend.personal import RankingWeights

VALID = """
[[experiment]]
name = "exp-a"
start = 2026-01-01T00:00:00Z
end = 2026-02-01T00:00:00Z
control = "a"

[experiment.segments]
behavioural = ["champions", "loyal"]

[[experiment.arm]]
name = "a"
traffic = 1

[[experiment.arm]]
name = "b"
traffic = 2
[experiment.arm.weights]
affinity = 0.0
segment = 0.3

[[experiment.arm]]
name = "c"
traffic = 1
"""
T0 = datetime(2026, 1, 10, tzinfo=UTC)


def test_parse_valid_file() -> None:
    (e,) = parse_experiments(VALID)
    assert e.name == "exp-a"
    assert [a.name for a in e.arms] == ["a", "b", "c"]
    assert e.arm("b").weights == {"affinity": 0.0, "segment": 0.3}
    assert e.segments == {"rfm": frozenset({"champions", "loyal"})}
    assert e.active(T0) and not e.active(datetime(2026, 2, 1, tzinfo=UTC))
    with pytest.raises(KeyError, match=r"no arm 'z'.*\['a', 'b', 'c'\]"):
        e.arm("z")


def test_shipped_file_has_the_three_arms() -> None:
    experiments = load_experiments(PROJECT_ROOT / "experiments.toml")
    e = find_experiment(experiments, "personalisation-2026")
    assert {a.name for a in e.arms} == {"blend", "segment_only", "personal"}
    assert e.arm("segment_only").weights["affinity"] == 0.0
    assert e.arm("segment_only").weights["session"] == 0.0
    assert e.arm("personal").weights["segment"] == 0.0
    assert e.arm("blend").weights == {}


def test_missing_file_means_no_experiments(tmp_path: Path) -> None:
    assert load_experiments(tmp_path / "nope.toml") == []
    assert load_experiments(None) == []
    with pytest.raises(ExperimentError, match=r"no experiment 'x'; defined: none"):
        find_experiment([], "x")


def test_weight_names_are_ranking_weights() -> None:
    known = {f.name for f in fields(RankingWeights)}
    assert set(WEIGHT_NAMES) <= known
    assert {"affinity", "segment", "session", "mmr_lambda"} <= set(WEIGHT_NAMES)


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (
            "traffic = 2",
            "traffic = -1",
            r"line 17: experiment 'exp-a'\.arm\[1\]\.traffic: must be a positive",
        ),
        (
            "affinity = 0.0",
            "affinty = 0.0",
            r"line 19: .*arm\[1\]\.weights\.affinty: unknown ranking weight; valid weights are \[",
        ),
        ("segment = 0.3", 'segment = "high"', r"weights\.segment: must be a number >= 0"),
        (
            "end = 2026-02-01T00:00:00Z",
            "end = 2025-12-01T00:00:00Z",
            r"line 5: .*\.end: must be after start",
        ),
        (
            'behavioural = ["champions", "loyal"]',
            'behavioral = ["champions"]',
            r"segments\.behavioral: unknown segment kind; valid kinds are",
        ),
        (
            '"champions", "loyal"',
            '"champs"',
            r"unknown segment\(s\) \['champs'\]; valid names are \[.*'champions'",
        ),
        (
            'control = "a"',
            'control = "x"',
            r"line 6: .*\.control: 'x' is not one of the arms \['a', 'b', 'c'\]",
        ),
        ('name = "c"', 'name = "a"', r"arm names must be unique"),
        (
            "start = 2026-01-01T00:00:00Z",
            "start = 2026-01-01T00:00:00",
            r"\.start: needs a time zone",
        ),
        ("start = 2026-01-01T00:00:00Z", 'start = "soon"', r"\.start: must be a date-time"),
        ('name = "exp-a"', 'name = "Exp A"', r"experiment\[0\]\.name: must be 1-64 lower-case"),
        ("control = ", "colour = ", r"unknown field\(s\) \['colour'\]; valid fields are"),
    ],
)
def test_bad_definitions_name_the_field(old: str, new: str, match: str) -> None:
    assert old in VALID
    with pytest.raises(ExperimentError, match=match):
        parse_experiments(VALID.replace(old, new, 1), "exp.toml")


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "experiments.toml"
    path.write_text(VALID.replace('name = "b"', 'name = "b'), encoding="utf-8")
    with pytest.raises(ExperimentError, match=r"experiments\.toml: not valid TOML: .*line 16"):
        load_experiments(path)


def test_one_arm_and_duplicates_are_rejected() -> None:
    one = VALID.split("[[experiment.arm]]")[0] + '[[experiment.arm]]\nname = "a"\ntraffic = 1\n'
    with pytest.raises(ExperimentError, match=r"needs at least two"):
        parse_experiments(one)
    with pytest.raises(ExperimentError, match=r"duplicate experiment name 'exp-a'"):
        parse_experiments(VALID + VALID)


# -- assignment ------------------------------------------------------------------------
def test_assignment_is_deterministic_and_sticky_across_processes() -> None:
    (e,) = parse_experiments(VALID)
    keys = [unit_key(f"cust-{i:04d}", None) for i in range(50)]
    here = [arm_for(e, str(k)).name for k in keys]
    assert here == [arm_for(e, str(k)).name for k in keys]
    code = (
        "import sys; from tailor.experiments import parse_experiments, arm_for, unit_key;"
        "(e,) = parse_experiments(sys.stdin.read());"
        "print(','.join(arm_for(e, unit_key(f'cust-{i:04d}', None)).name for i in range(50)))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        input=VALID,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert other.stdout.strip().split(",") == here


def test_unit_key_prefers_the_customer() -> None:
    assert unit_key("cust-1", "abc") == "customer:cust-1"
    assert unit_key(None, "abc") == "sender:abc"
    assert unit_key(None, None) is None


def test_split_follows_traffic_weights() -> None:
    """Chi-square of 30,000 keys against weights 1:2:1, and every key's arm against a
    brute-force reference (cumulative thresholds with numpy)."""
    (e,) = parse_experiments(VALID)
    keys = [f"sender:{i}" for i in range(30_000)]
    arms = [arm_for(e, k).name for k in keys]
    counts = np.array([arms.count(a.name) for a in e.arms])
    expected = np.array([0.25, 0.5, 0.25]) * len(keys)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    ref = sps.chisquare(counts, expected)
    assert chi2 == pytest.approx(ref.statistic)
    assert ref.pvalue > 0.001, (counts, ref)
    cuts = np.cumsum([a.traffic for a in e.arms]) / sum(a.traffic for a in e.arms)
    brute = [e.arms[int(np.searchsorted(cuts, bucket(e.name, k), side="right"))].name for k in keys]
    assert arms == brute


def test_experiments_split_independently() -> None:
    """The same shoppers are re-randomised per experiment (hash includes the name)."""
    (e,) = parse_experiments(VALID)
    (f,) = parse_experiments(VALID.replace('"exp-a"', '"exp-b"'))
    pairs = [(arm_for(e, f"s{i}").name, arm_for(f, f"s{i}").name) for i in range(8000)]
    table = np.array([[sum(1 for p in pairs if p == (x, y)) for y in "abc"] for x in "abc"])
    assert sps.chi2_contingency(table).pvalue > 0.001


def test_assign_respects_window_segments_and_order() -> None:
    (e,) = parse_experiments(VALID)
    (f,) = parse_experiments(
        VALID.replace('"exp-a"', '"exp-b"').split("[experiment.segments]")[0]
        + "[[experiment.arm]]"
        + VALID.split("[[experiment.arm]]", 1)[1]
    )
    champ = {"rfm": "champions"}
    got = assign([e, f], "customer:cust-1", champ, T0)
    assert got is not None and got.experiment == "exp-a"
    assert got.arm == arm_for(e, "customer:cust-1").name
    assert got.to_payload() == {"name": "exp-a", "arm": got.arm}
    # not targeted by exp-a: the untargeted exp-b takes them
    other = assign([e, f], "customer:cust-1", {"rfm": "hibernating"}, T0)
    assert other is not None and other.experiment == "exp-b"
    assert assign([e], "customer:cust-1", {"rfm": "hibernating"}, T0) is None
    assert assign([e], "customer:cust-1", {}, T0) is None
    assert assign([e], "customer:cust-1", champ, datetime(2025, 12, 31, tzinfo=UTC)) is None
    assert assign([e], "customer:cust-1", champ, e.end) is None
    assert assign([e], None, champ, T0) is None
    # sticky over time inside the window
    arms = {assign([e], "customer:cust-1", champ, T0 + timedelta(days=d)).arm for d in range(20)}  # type: ignore[union-attr]
    assert len(arms) == 1


# -- statistics ------------------------------------------------------------------------
@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (37, 1000), (500, 1000)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(ci.low, abs=1e-12)
    assert hi == pytest.approx(ci.high, abs=1e-12)


def test_wilson_coverage_by_simulation() -> None:
    rng = np.random.default_rng(7)
    for p, n in ((0.05, 200), (0.3, 60)):
        hits = rng.binomial(n, p, size=4000)
        covered = np.mean([lo <= p <= hi for lo, hi in (wilson(int(h), n) for h in hits)])
        assert 0.93 <= covered <= 0.975, (p, n, covered)


def test_wilson_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="cannot exceed"):
        wilson(5, 4)
    with pytest.raises(ValueError, match="non-negative"):
        wilson(-1, 4)
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("a", "na", "b", "nb"), [(30, 1000, 45, 1000), (5, 80, 1, 90), (200, 400, 180, 410)]
)
def test_z_test_matches_scipy_chi_square(a: int, na: int, b: int, nb: int) -> None:
    t = two_proportion_z(a, na, b, nb)
    assert t is not None
    table = np.array([[a, na - a], [b, nb - b]])
    chi2, p, _, _ = sps.chi2_contingency(table, correction=False)
    assert t.z**2 == pytest.approx(chi2)
    assert t.p_value == pytest.approx(p)
    assert t.difference == pytest.approx(b / nb - a / na)


def test_z_test_size_by_simulation() -> None:
    """Under the null the test rejects about 5% of the time."""
    rng = np.random.default_rng(11)
    rejections = 0
    trials = 3000
    for _ in range(trials):
        a, b = rng.binomial(800, 0.06, size=2)
        t = two_proportion_z(int(a), 800, int(b), 800)
        rejections += t is not None and t.p_value < 0.05
    assert 0.035 <= rejections / trials <= 0.065


def test_z_test_without_data_or_variance() -> None:
    assert two_proportion_z(0, 0, 1, 10) is None
    assert two_proportion_z(0, 10, 0, 10) is None


def _holm_brute(ps: list[float], alpha: float) -> list[tuple[float, bool]]:
    """Holm from its definition: reject H_i iff for every j with p_j <= p_i (in sorted
    order up to i), p_(j) <= alpha / (m - j); adjusted p = max over those of (m - j)·p_(j)."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: (ps[i], i))
    out: list[tuple[float, bool]] = [(0.0, False)] * m
    for pos, i in enumerate(order):
        prefix = order[: pos + 1]
        adj = min(1.0, max((m - j) * ps[idx] for j, idx in enumerate(prefix)))
        rejected = all(ps[idx] <= alpha / (m - j) for j, idx in enumerate(prefix))
        out[i] = (adj, rejected)
    return out


def test_holm_against_brute_force() -> None:
    rng = random.Random(3)
    for _ in range(300):
        m = rng.randint(1, 6)
        ps = [rng.choice([rng.random(), rng.random() * 0.05, 0.01]) for _ in range(m)]
        got = holm(ps, 0.05)
        for (adj, rej), (badj, brej) in zip(got, _holm_brute(ps, 0.05), strict=True):
            assert adj == pytest.approx(badj)
            assert rej == brej
    assert holm([0.01, None, 0.04]) == [(0.02, True), (None, False), (0.04, True)]
    with pytest.raises(ValueError, match="alpha"):
        holm([0.1], 1.5)


def test_mean_ci() -> None:
    values = [1.0, 2.0, 4.0, 7.0]
    mean, _lo, hi = mean_ci(values)  # type: ignore[misc]
    sem = sps.sem(values)
    assert mean == pytest.approx(3.5)
    assert hi - mean == pytest.approx(1.959963984540054 * sem)
    assert mean_ci([]) is None


# -- attribution -----------------------------------------------------------------------
WINDOW = timedelta(hours=72)


def test_tally_small_scenario() -> None:
    t = T0
    shown = [
        Exposure("a", "s1", 1, 10, t),
        Exposure("a", "s1", 1, 11, t),
        Exposure("b", "s2", None, 10, t),
        Exposure("b", "s2", None, 12, t),
    ]
    outcomes = [
        Outcome("message", "s1", 1, None, t - timedelta(minutes=1), 0.0),
        Outcome("click", "s1", 1, 10, t + timedelta(minutes=1)),
        Outcome("click", "s1", 1, 10, t + timedelta(minutes=2)),  # same impression: once
        Outcome("cart", "s1", 1, 10, t + timedelta(minutes=3)),
        Outcome("message", "s1", 1, None, t + timedelta(minutes=4), 0.6),
        Outcome("purchase", "other", 1, 10, t + timedelta(hours=30)),  # by customer id
        Outcome("click", "s2", None, 11, t + timedelta(minutes=1)),  # not shown to s2
        Outcome("click", "s2", None, 12, t + timedelta(hours=80)),  # after the window
        Outcome("click", "s2", None, 10, t - timedelta(minutes=1)),  # before being shown
        Outcome("message", "s2", None, None, t + timedelta(minutes=5), -0.4),
        Outcome("message", "s2", None, None, t + timedelta(minutes=6), -0.2),
    ]
    r = tally(shown, outcomes, WINDOW, ["a", "b"])
    a, b = r.arms["a"], r.arms["b"]
    assert (a.impressions, a.actions["click"], a.actions["cart"], a.actions["purchase"]) == (
        2,
        1,
        1,
        1,
    )
    assert (a.shoppers, a.converted, a.conversations) == (1, 1, 1)
    assert a.conversation_lengths == [2.0] and a.sentiment_after == [0.6]
    assert (b.impressions, b.actions["click"], b.shoppers, b.converted) == (2, 0, 1, 0)
    assert b.sentiment_after == [pytest.approx(-0.3)]
    with pytest.raises(ValueError, match="window"):
        tally(shown, outcomes, timedelta(0), ["a"])


def _brute_credit(
    shown: list[Exposure], outcomes: list[Outcome], window: timedelta
) -> dict[str, set[int]]:
    order = sorted(range(len(shown)), key=lambda i: shown[i].at)
    ranked = [shown[i] for i in order]
    credited: dict[str, set[int]] = {k: set() for k in PRODUCT_ACTIONS}
    for o in outcomes:
        if o.kind not in credited:
            continue
        best = None
        for idx, e in enumerate(ranked):
            same = (o.customer_id is not None and e.customer_id == o.customer_id) or (
                o.sender_id is not None and e.sender_id == o.sender_id
            )
            fits = same and e.product_id == o.product_id and e.at <= o.at <= e.at + window
            if fits and (best is None or (e.at, idx) > best):
                best = (e.at, idx)
        if best is not None:
            credited[o.kind].add(best[1])
    return {k: {id(ranked[i]) for i in v} for k, v in credited.items()}


def test_tally_matches_brute_force_attribution() -> None:
    rng = random.Random(5)
    for _ in range(20):
        shown, outcomes = [], []
        for _ in range(rng.randint(5, 60)):
            cust = rng.choice([None, 1, 2, 3])
            shown.append(
                Exposure(
                    rng.choice("ab"),
                    rng.choice(["s1", "s2", "s3", "s4"]),
                    cust,
                    rng.randint(1, 6),
                    T0 + timedelta(hours=rng.uniform(0, 200)),
                )
            )
        for _ in range(rng.randint(0, 80)):
            outcomes.append(
                Outcome(
                    rng.choice(PRODUCT_ACTIONS),
                    rng.choice(["s1", "s2", "s3", "s4", None]),
                    rng.choice([None, 1, 2, 3]),
                    rng.randint(1, 6),
                    T0 + timedelta(hours=rng.uniform(-20, 300)),
                )
            )
        r = tally(shown, outcomes, WINDOW, ["a", "b"])
        brute = _brute_credit(shown, outcomes, WINDOW)
        for kind in PRODUCT_ACTIONS:
            expected = {arm: 0 for arm in "ab"}
            for e in shown:
                if id(e) in brute[kind]:
                    expected[e.arm] += 1
            assert {arm: r.arms[arm].actions[kind] for arm in "ab"} == expected, kind
        assert sum(s.impressions for s in r.arms.values()) == len(shown)


def test_report_tests_and_renders(tmp_path: Path) -> None:
    (e,) = parse_experiments(VALID)
    rng = random.Random(9)
    shown, outcomes = [], []
    for i in range(3000):
        key = f"sender:s{i}"
        arm = arm_for(e, key).name
        at = T0 + timedelta(hours=rng.uniform(0, 100))
        shown.append(Exposure(arm, f"s{i}", None, 1, at))
        if rng.random() < {"a": 0.05, "b": 0.12, "c": 0.05}[arm]:
            outcomes.append(Outcome("click", f"s{i}", None, 1, at + timedelta(minutes=1)))
    t = tally(shown, outcomes, WINDOW, [a.name for a in e.arms])
    tests = significance(e, t)
    ctr = {x.arm: x for x in tests if x.metric == "click-through"}
    assert ctr["b"].significant and ctr["b"].difference > 0
    expected = holm([ctr["b"].p_value, ctr["c"].p_value])
    assert [ctr["b"].p_holm, ctr["c"].p_holm] == [pytest.approx(p) for p, _ in expected]
    report = Report(e, WINDOW, "rfm", t, tests)
    text = report.markdown()
    assert "| b | click-through |" in text and "Wilson" in text
    assert report.plot(tmp_path / "x.png").stat().st_size > 5000
