"""The benchmark harness's pure parts: percentiles, growth, scripts, profile folding."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest

from tailor.bench.profile import ACTION_STAGES, RASA_STAGES, classify, fold
from tailor.bench.turns import (
    MAX_ROUNDS,
    MIN_ROUNDS,
    SCRIPTS,
    LongRun,
    RunResult,
    Turn,
    conversations,
    first_sights,
    growth,
    growth_beside,
    last_pass_start,
    level_size,
    merge_runs,
    percentile,
    rounds,
)
from tailor.config import PROJECT_ROOT


@pytest.mark.parametrize("n", [1, 2, 3, 10, 99, 100, 101, 1000])
@pytest.mark.parametrize("p", [0, 1, 50, 95, 99, 100])
def test_percentile_matches_numpy_nearest_rank(n: int, p: float) -> None:
    rng = random.Random(n * 1000 + int(p))
    values = [rng.uniform(0, 500) for _ in range(n)]
    expected = float(np.percentile(values, p, method="inverted_cdf"))
    assert percentile(values, p) == pytest.approx(expected)


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="within"):
        percentile([1.0], 101)


def test_summary_counts_errors_and_throughput() -> None:
    run = RunResult("full", 2, wall_s=2.0)
    run.turns = [Turn(0, i, float(10 + i), True) for i in range(9)]
    run.turns.append(Turn(1, 0, 5000.0, False, "HTTP 500"))
    s = run.summary()
    assert s["turns"] == 10 and s["errors"] == 1
    assert s["throughput"] == pytest.approx(5.0)
    assert s["p50"] == 14.0  # the failed turn's latency is not a latency sample
    assert s["p99"] == 18.0


def test_growth_compares_same_messages() -> None:
    window = 4
    convs = [[10.0, 10, 10, 10, 11, 11, 11, 11, 20, 20, 20, 20, 99]] * 3
    first, last = growth(convs, window)
    assert (first, last) == (10.0, 20.0)  # the trailing partial pass is ignored
    with pytest.raises(ValueError, match="at least 8"):
        growth([[1.0] * 7], window)


def test_growth_beside_compares_the_same_messages_at_the_same_moments() -> None:
    window = 4
    long = [[10.0, 10, 10, 10, 11, 11, 11, 11, 20, 20, 20, 20, 99]] * 3
    beside = [[18.0, 18, 18, 18]] * 3
    assert growth_beside(LongRun(long, beside), window) == (18.0, 20.0)
    assert last_pass_start(13, window) == 8 and last_pass_start(50, 8) == 40
    with pytest.raises(ValueError, match="beside the last pass"):
        growth_beside(LongRun(long, [[18.0, 18.0]]), window)
    with pytest.raises(ValueError, match="at least 8"):
        last_pass_start(7, window)


def test_conversations_cycle_scripts() -> None:
    convs = conversations(len(SCRIPTS) + 2)
    assert convs[0] == list(SCRIPTS[0]) and convs[len(SCRIPTS)] == list(SCRIPTS[0])
    assert conversations(0) == []
    with pytest.raises(ValueError):
        conversations(-1)


def test_fold_charges_innermost_stage() -> None:
    lines = [
        "process 1:rasa;handle (sanic/app.py:10);predict (rasa/core/policies/rule_policy.py:5) 7",
        "process 1:rasa;handle (sanic/app.py:10);parse (rasa/nlu/classifiers/x.py:1) 3",
        "process 1:rasa;handle (sanic/app.py:10);save (rasa/core/tracker_store.py:9);"
        "execute (sqlalchemy/engine/base.py:1) 2",
        "process 1:rasa;idle (somewhere/else.py:1) 1",
        "",
    ]
    got = fold(lines, RASA_STAGES)
    assert got == {"policies": 7, "NLU": 3, "tracker store (SQL)": 2, "other": 1}


def test_classify_actions_database_inside_ranking() -> None:
    frames = [
        "run (actions/actions.py:1)",
        "rank (tailor/recommend/personal.py:3)",
        "execute (sqlalchemy/orm/session.py:2)",
    ]
    assert classify(frames, ACTION_STAGES) == "database"
    assert classify(frames[:2], ACTION_STAGES) == "ranking & shopper context"


def test_noop_actions_cover_the_domain() -> None:
    from tailor.bench.noop_actions import NOOP_ACTIONS, domain_actions

    declared = domain_actions(PROJECT_ROOT / "bot")
    assert "action_recommend" in declared
    assert set(declared) | {"action_warmup"} == set(NOOP_ACTIONS)
    assert all(cls().name() == name for name, cls in NOOP_ACTIONS.items())


def test_recorder_profiles_a_real_process(tmp_path: Path) -> None:
    """py-spy attached to a busy Python process charges its samples to the right stage."""
    import subprocess
    import sys
    import time

    from tailor.bench.profile import Recorder, py_spy

    if py_spy() is None:
        pytest.fail("py-spy is missing: it is a dev dependency (pip install -e '.[dev]')")
    pkg = tmp_path / "tailor" / "sentiment"
    pkg.mkdir(parents=True)
    busy = pkg / "busy.py"
    busy.write_text(
        "import time\n"
        "def spin():\n"
        "    end = time.time() + 20\n"
        "    while time.time() < end:\n"
        "        sum(i * i for i in range(1000))\n"
        "spin()\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen([sys.executable, str(busy)])
    try:
        time.sleep(0.5)
        rec = Recorder(proc.pid, tmp_path / "out.txt", rate=100)
        time.sleep(1.5)
        profile = rec.finish("busy", ACTION_STAGES)
    finally:
        proc.kill()
        proc.wait()
    assert profile.total > 50
    assert profile.samples.most_common(1)[0][0] == "sentiment"
    ms = profile.ms_per_turn(10)
    assert sum(ms.values()) == pytest.approx(profile.total / 100 * 1000 / 10)


def test_waiting_threads_are_not_cpu() -> None:
    from tailor.bench.profile import WAITING, StageProfile

    lines = [
        "process 1:x;Thread.run (/usr/lib/threading.py:982);"
        "_worker (/usr/lib/python3.11/concurrent/futures/thread.py:81) 40",
        "process 1:x;serve (sanic/server/runners.py:343);_run_server_forever "
        "(sanic/server/runners.py:210) 30",
        "process 1:x;run (actions/actions.py:1);execute (sqlalchemy/engine/base.py:1) 10",
    ]
    folded = fold(lines, ACTION_STAGES)
    assert folded[WAITING] == 70 and folded["database"] == 10
    profile = StageProfile("actions", 100, folded)
    assert profile.total == 10
    assert profile.ms_per_turn(1) == {"database": 100.0}


@pytest.mark.parametrize("count", [1, 2, 12, 24, 25, 64, 100])
@pytest.mark.parametrize("concurrency", [1, 2, 8, 32])
def test_rounds_hold_every_conversation_once_with_alternating_order(
    count: int, concurrency: int
) -> None:
    convs = [[f"conversation {i}"] for i in range(count)]
    parts = rounds(convs, concurrency)
    assert [c for part, _ in parts for c in part] == convs  # all, once, in order
    assert 1 <= len(parts) <= MAX_ROUNDS
    if len(parts) > 1:
        assert all(len(part) >= 2 * concurrency for part, _ in parts)
    assert len(parts) == min(MAX_ROUNDS, max(1, count // (2 * concurrency)))
    orders = [order for _, order in parts]
    assert orders[0] == ("floor", "full")
    assert all(a == tuple(reversed(b)) for a, b in itertools.pairwise(orders))
    with pytest.raises(ValueError):
        rounds(convs, 0)


@pytest.mark.parametrize("minimum", [0, 1, 12, 24, 100])
@pytest.mark.parametrize("concurrency", [1, 2, 8, 32])
def test_every_level_runs_in_several_rounds(minimum: int, concurrency: int) -> None:
    size = level_size(concurrency, minimum)
    assert size >= minimum
    parts = rounds([[str(i)] for i in range(size)], concurrency)
    assert len(parts) >= MIN_ROUNDS  # both bots alternate, whatever the level
    # no more conversations than the larger of the two needs
    assert size == minimum or len(rounds([["x"]] * (size - 1), concurrency)) < MIN_ROUNDS
    with pytest.raises(ValueError):
        level_size(0, minimum)


def test_merge_runs_keeps_every_turn_and_sums_wall_time() -> None:
    a = RunResult("full", 1, [Turn(0, 0, 10.0, True), Turn(1, 0, 30.0, True)], wall_s=1.0)
    b = RunResult("full", 1, [Turn(0, 0, 20.0, True), Turn(0, 1, 99.0, False, "x")], wall_s=3.0)
    merged = merge_runs([a, b])
    assert [t.latency_ms for t in merged.turns] == [10.0, 30.0, 20.0, 99.0]
    assert [t.conversation for t in merged.turns] == [0, 1, 2, 2]
    assert merged.wall_s == 4.0 and merged.errors == 1
    assert merged.summary()["throughput"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="different"):
        merge_runs([a, RunResult("floor", 1)])
    with pytest.raises(ValueError, match="no runs"):
        merge_runs([])


def test_merge_runs_sums_cpu_time_per_process() -> None:
    a = RunResult("full", 1, [Turn(0, 0, 10.0, True)], wall_s=1.0, cpu_s={"Rasa server": 0.02})
    b = RunResult(
        "full",
        1,
        [Turn(0, 0, 20.0, True), Turn(0, 1, 30.0, True), Turn(1, 0, 5.0, True)],
        wall_s=1.0,
        cpu_s={"Rasa server": 0.03, "action server": 0.008},
    )
    merged = merge_runs([a, b])
    assert merged.cpu_s == pytest.approx({"Rasa server": 0.05, "action server": 0.008})
    assert merged.cpu_ms_per_turn() == pytest.approx({"Rasa server": 12.5, "action server": 2.0})
    assert RunResult("full", 1).cpu_ms_per_turn() == {}


def test_cpu_table_ratio_of_both_servers() -> None:
    from tailor.bench.harness import BenchResult, _cpu_table

    turns = [Turn(0, i, 10.0, True) for i in range(10)]
    result = BenchResult(
        runs=[
            RunResult("floor", 1, turns, 1.0, {"Rasa server": 0.08, "action server": 0.002}),
            RunResult("full", 1, turns, 1.0, {"Rasa server": 0.10, "action server": 0.03}),
        ]
    )
    rows = _cpu_table(result)
    assert rows[2] == "| 1 | floor | 8.0 | 0.2 | 8.2 |"
    assert rows[3] == "| 1 | full | 10.0 | 3.0 | 13.0 |"
    assert rows[4].endswith("**1.59×** |")
    # runs without CPU figures (older results) give no table
    result.runs[0].cpu_s = {}
    assert _cpu_table(result) == []


def test_tree_cpu_and_memory_count_a_busy_child_process() -> None:
    import os
    import signal
    import subprocess
    import sys

    from tailor.runtime.processes import tree_cpu_seconds, tree_rss_mb

    # a parent that sleeps and a child (its descendant) that spins for 0.6 s of CPU
    code = (
        "import subprocess, sys, time; "
        "subprocess.run([sys.executable, '-c', "
        "'import time\\nt=time.process_time()\\nwhile time.process_time()-t<0.6: pass\\n"
        "time.sleep(30)'])"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        seen = 0.0
        for _ in range(100):  # the child's CPU time shows up through the parent
            seen = tree_cpu_seconds(parent.pid)
            if seen >= 0.6:
                break
            __import__("time").sleep(0.1)
        assert 0.6 <= seen < 3.0
        # two Python processes: their resident memory together, more than one alone
        assert tree_rss_mb(parent.pid) > 2 * 5
    finally:
        os.killpg(parent.pid, signal.SIGKILL)  # the parent and the child
        parent.wait()
    assert tree_cpu_seconds(parent.pid) == 0.0  # gone: nothing to count
    assert tree_rss_mb(parent.pid) == 0.0


def test_verdicts_judge_the_full_bot_and_report_the_floor_for_comparison() -> None:
    from tailor.bench.harness import BenchResult

    def run(bot: str, ms: float) -> RunResult:
        return RunResult(bot, 1, [Turn(0, i, ms, True) for i in range(20)], 1.0)

    result = BenchResult(runs=[run("floor", 10.0), run("full", 12.0)], long_window=2)
    # the floor's conversation doubles; the full bot's grows 5 % (inside the target)
    # the growth is the last pass against new conversations sent beside it, not against
    # the long conversation's own first pass (the full bot's started slow: the machine)
    result.long = {
        "floor": LongRun([[10.0, 10.0, 20.0, 20.0]], [[10.0, 10.0]]),
        "full": LongRun([[30.0, 30.0, 21.0, 21.0]], [[20.0, 20.0]]),
    }
    lines = result.verdicts()
    assert lines[0].startswith("concurrency 1: p50 ratio 1.20") and lines[0].endswith("met")
    assert lines[1] == "long conversation (floor, for comparison): 2.00×"
    assert lines[2].startswith("long conversation (full): 1.05×") and lines[2].endswith("met")
    result.long["full"] = LongRun([[20.0, 20.0, 30.0, 30.0]], [[20.0, 20.0]])
    assert result.verdicts()[2].endswith("MISSED")


def test_placement_names_each_servers_cpus(tmp_path: Path) -> None:
    from tailor.bench.harness import Stack, placement
    from tailor.config import Settings
    from tailor.runtime.processes import Service

    def svc(cpus: frozenset[int] | None, hints: str = "on") -> Service:
        service = Service("s", ["true"], tmp_path / "log", lambda: True, cpus=cpus)
        service.env["TAILOR_TURN_HINTS"] = hints
        return service

    pinned = Stack("full", Settings(home=tmp_path), [svc(frozenset({1})), svc(frozenset({0}))])
    assert placement(pinned) == (
        "CPU placement: Rasa servers on CPU 0, action servers on CPU 1 (TAILOR_CPU_AFFINITY=auto);"
        " turn hints on for the full bot (the floor never hints)"
    )
    free = Stack("full", Settings(home=tmp_path), [svc(None), svc(None, "off")])
    assert placement(free) == "CPU placement: left to the scheduler; turn hints off"


def test_fallback_answers_count_as_errors() -> None:
    """A turn the channel answered with its fallback message (an action failed) is an error,
    and the bench's copy of that message is the channel's own."""
    import ast

    from tailor.bench.turns import FALLBACK_TEXT, answer_error

    source = (PROJECT_ROOT / "bot" / "tailor_channels.py").read_text(encoding="utf-8")
    assigned = {
        t.id: node.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert ast.literal_eval(assigned["FALLBACK_TEXT"]) == FALLBACK_TEXT
    assert answer_error([]) == "empty answer"
    assert answer_error([{"recipient_id": "a", "text": FALLBACK_TEXT}]) == "fallback answer"
    assert answer_error([{"recipient_id": "a", "text": "Here are 4 picks"}]) == ""


def test_first_sights_mark_each_text_once_across_levels_after_the_warm_up() -> None:
    level1 = [["hi", "shoes", "cheaper"], ["hi", "a lamp"], ["shoes", "bye"]]
    level2 = [["a lamp", "brass"], ["hi", "brass", "bye"]]
    got = first_sights(["hi"], [level1, level2])
    assert got[0] == {(0, 1), (0, 2), (1, 1), (2, 1)}  # "hi" was seen before measuring
    assert got[1] == {(0, 1)}  # only "brass" is new by then
    # the bench's own scripts: the first level holds every text the warm-up did not send
    warm = conversations(2)
    one, eight = first_sights((t for c in warm for t in c), [conversations(24), conversations(64)])
    novel = {t for script in SCRIPTS[2:] for t in script} - {t for c in warm for t in c}
    assert len(one) == len(novel) and not eight


def test_first_sight_table_splits_each_level() -> None:
    from tailor.bench.harness import BenchResult, _first_sight_table

    def run(bot: str, first: float, rest: float) -> RunResult:
        turns = [
            Turn(c, i, first if (c, i) == (0, 0) else rest + i, True)
            for c in range(2)
            for i in range(10)
        ]
        return RunResult(bot, 1, turns, 1.0)

    result = BenchResult(
        runs=[run("floor", 10.0, 10.0), run("full", 16.0, 12.0), run("floor", 8.0, 8.0)]
    )
    result.runs[2].concurrency = 8
    result.runs.append(RunResult("full", 8, result.runs[2].turns, 1.0))
    result.first_sight = {1: frozenset({(0, 0)}), 8: frozenset()}
    rows = _first_sight_table(result)
    assert len(rows) == 3  # the level without a first sight is left out
    # other turns (19): floor 10+i, full 12+i, without (0, 0): p50 15 / 17 ms, p95 19 / 21 ms
    assert rows[2] == "| 1 | 1 of 20 | 10 ms | 16 ms | +6.0 ms | 1.13× | 1.11× |"
    result.first_sight = {}
    assert _first_sight_table(result) == []
