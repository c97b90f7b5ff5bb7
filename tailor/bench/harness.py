"""``tailor bench``: the full bot against a floor (the same Rasa model with no-op actions).

In one run it starts two private stacks over copies of the embedded database — (a) the floor:
Rasa + an action server whose actions do nothing (``tailor.bench.noop_actions``), and (b) the
full bot — and drives both through the REST webhook with the same scripted conversations at
each concurrency. A level runs in four to six rounds (at one shopper, six of four
conversations; at 32 shoppers, four of 64), each round on both bots in turn and the order
alternating, so drift of the machine hits both.
It reports p50/p95/p99, throughput and errors, the ratios against the targets (full p50 ≤
1.3 × floor p50, full p95 ≤ 1.5 × floor p95, no errors), the growth of latency along one long
conversation, and optionally where the CPU time goes (py-spy, by stage). A markdown report
and a plot of latency against concurrency are written to ``out_dir``.
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailor.bench.turns import (
    SCRIPTS,
    LongRun,
    RunResult,
    conversations,
    drive,
    drive_long,
    first_sights,
    growth,
    growth_beside,
    level_size,
    merge_runs,
    percentile,
    rounds,
)
from tailor.config import Settings
from tailor.runtime.processes import tree_cpu_seconds, tree_rss_mb

if TYPE_CHECKING:
    from tailor.runtime.processes import Service

#: Targets from the issue: ratios of the full bot to the floor.
P50_TARGET = 1.3
P95_TARGET = 1.5
#: Target for the growth of latency between the start and the end of a long conversation.
GROWTH_TARGET = 1.10

Echo = Callable[[str], None]


@dataclass
class Stack:
    """One running bot: its settings and its two services."""

    name: str
    settings: Settings
    services: list[Service] = field(default_factory=list)

    def pid(self, which: str) -> int:
        """PID of the ``"rasa"`` or ``"actions"`` service."""
        svc = self.services[0 if which == "actions" else 1]
        assert svc.proc is not None
        return int(svc.proc.pid)


@contextmanager
def stacks(settings: Settings, model: Path, echo: Echo) -> Iterator[dict[str, Stack]]:
    """Start the floor and the full bot side by side; stop both on exit."""
    from tailor.evaluation.stack import eval_settings
    from tailor.runtime import processes as P
    from tailor.runtime.hints import HINTS_ENV

    made: dict[str, Stack] = {}
    try:
        for name, module in (("floor", "tailor.bench.noop_actions"), ("full", "actions")):
            s = eval_settings(settings, f"bench-{name}")
            actions = P.action_server(s, actions_module=module)
            actions.env["TAILOR_BOT_DIR"] = str(s.bot_dir)
            rasa = P.rasa_server(s, model)
            if name == "floor":  # turn hints are the full bot's cost, not Rasa's
                rasa.env[HINTS_ENV] = actions.env[HINTS_ENV] = "off"
            made[name] = Stack(name, s, [actions, rasa])
            actions.start()
            rasa.start()
        for stack in made.values():
            t_a = stack.services[0].wait_ready(180)
            t_r = stack.services[1].wait_ready(600)
            P.warm_up_actions(stack.settings)
            echo(f"  {stack.name}: action server ready in {t_a:.1f} s, Rasa in {t_r:.1f} s")
        yield made
    finally:
        for stack in made.values():
            for svc in reversed(stack.services):
                svc.stop()


def placement(stack: Stack) -> str:
    """Which CPUs the stack's servers run on (both bots are placed alike)."""
    from tailor.runtime.hints import HINTS_ENV
    from tailor.runtime.processes import describe_cpus

    actions, rasa = stack.services
    hints = (
        "turn hints on for the full bot (the floor never hints)"
        if rasa.env.get(HINTS_ENV) == "on"
        else "turn hints off"
    )
    if not (rasa.cpus and actions.cpus):
        return f"CPU placement: left to the scheduler; {hints}"
    return (
        f"CPU placement: Rasa servers on {describe_cpus(rasa.cpus)}, action servers on "
        f"{describe_cpus(actions.cpus)} (TAILOR_CPU_AFFINITY=auto); {hints}"
    )


@dataclass
class BenchResult:
    """Everything one ``tailor bench`` run measured."""

    runs: list[RunResult] = field(default_factory=list)
    long: dict[str, LongRun] = field(default_factory=dict)
    long_window: int = 8
    profile: dict[str, dict[str, float]] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)
    started: str = ""
    seconds: float = 0.0
    #: Where both bots' servers ran ("Rasa servers on CPU 0, action servers on CPU 1").
    placement: str = ""
    #: By concurrency: the turns that were the first time the bots got their text
    #: (``first_sights``), as ``(conversation, index)``.
    first_sight: dict[int, frozenset[tuple[int, int]]] = field(default_factory=dict)

    def run(self, bot: str, concurrency: int) -> RunResult:
        """The run of ``bot`` at ``concurrency``."""
        return next(r for r in self.runs if r.bot == bot and r.concurrency == concurrency)

    def levels(self) -> list[int]:
        """The concurrencies measured, ascending."""
        return sorted({r.concurrency for r in self.runs})

    def verdicts(self) -> list[str]:
        """One line per target: met or missed, with the figures."""
        lines = []
        for c in self.levels():
            floor, full = self.run("floor", c).summary(), self.run("full", c).summary()
            r50 = full["p50"] / floor["p50"]
            r95 = full["p95"] / floor["p95"]
            errors = int(floor["errors"] + full["errors"])
            ok = r50 <= P50_TARGET and r95 <= P95_TARGET and errors == 0
            lines.append(
                f"concurrency {c}: p50 ratio {r50:.2f} (≤ {P50_TARGET}), p95 ratio {r95:.2f} "
                f"(≤ {P95_TARGET}), errors {errors} — {'met' if ok else 'MISSED'}"
            )
        for bot, long_run in self.long.items():
            first, last = growth_beside(long_run, self.long_window)
            if bot != "full":  # the target is the full bot's; the floor's is for comparison
                lines.append(f"long conversation ({bot}, for comparison): {last / first:.2f}×")
                continue
            lines.append(
                f"long conversation ({bot}): {last / first:.2f}× "
                f"(≤ {GROWTH_TARGET:.2f}×) — {'met' if last / first <= GROWTH_TARGET else 'MISSED'}"
            )
        return lines


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(
            int(line.split()[1]) / 1024 / 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem = 0.0
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def run_bench(
    settings: Settings,
    model: Path,
    levels: Sequence[int] = (1, 8, 32),
    min_conversations: int = 12,
    long_turns: int = 50,
    long_parallel: int = 6,
    profile_dir: Path | None = None,
    echo: Echo = print,
) -> BenchResult:
    """Measure the floor and the full bot; see the module docstring."""
    from tailor.bench.profile import ACTION_STAGES, RASA_STAGES, Recorder

    result = BenchResult(started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    result.long_window = len(SCRIPTS[0])
    t_start = time.monotonic()
    echo("Starting the floor (no-op actions) and the full bot …")
    with stacks(settings, model, echo) as bots:
        result.placement = placement(bots["full"])
        echo(f"  {result.placement}")
        warm = conversations(2)
        for stack in bots.values():  # one conversation each before measuring
            asyncio.run(drive(stack.settings.rasa_url, warm, 2, stack.name))
        plan = {c: conversations(level_size(c, min_conversations)) for c in levels}
        seen = (text for messages in warm for text in messages)
        result.first_sight = dict(zip(levels, first_sights(seen, list(plan.values())), strict=True))
        for c in levels:
            convs = plan[c]
            parts = rounds(convs, c)
            echo(
                f"  floor and full × {c:2d} shoppers: {sum(map(len, convs))} turns each, "
                f"in {len(parts)} round(s) …"
            )
            done: dict[str, list[RunResult]] = {"floor": [], "full": []}
            for part, order in parts:
                for name in order:
                    url = bots[name].settings.rasa_url
                    done[name].append(measured(bots[name], drive(url, part, c, name)))
            for name in ("floor", "full"):
                run = merge_runs(done[name])
                result.runs.append(run)
                s = run.summary()
                echo(
                    f"    {name:5s}: p50 {s['p50']:.0f} ms, p95 {s['p95']:.0f} ms, "
                    f"p99 {s['p99']:.0f} ms, "
                    f"{s['throughput']:.1f} turns/s, {int(s['errors'])} errors"
                )
        if long_turns:
            for name in ("floor", "full"):
                echo(f"  {name}: {long_parallel} conversations of {long_turns} turns …")
                result.long[name] = asyncio.run(
                    drive_long(
                        bots[name].settings.rasa_url,
                        SCRIPTS[0],
                        long_turns,
                        long_parallel,
                        name,
                    )
                )
        if profile_dir is not None:
            # One shopper: with the cores not oversubscribed, a sampled "active" thread is a
            # thread on a CPU, so samples are CPU time (at 8 shoppers they are inflated by
            # time spent runnable, waiting for a core).
            echo("  profiling both bots at 1 shopper (py-spy) …")
            convs = conversations(24)
            for name in ("floor", "full"):
                stack = bots[name]
                recs = {
                    "Rasa server": Recorder(stack.pid("rasa"), profile_dir / f"{name}-rasa.txt"),
                    "action server": Recorder(
                        stack.pid("actions"), profile_dir / f"{name}-actions.txt"
                    ),
                }
                time.sleep(1.0)  # py-spy attaches
                run = asyncio.run(drive(stack.settings.rasa_url, convs, 1, name, tag="profile"))
                turns = len(run.turns)
                for process, stages in (
                    ("Rasa server", RASA_STAGES),
                    ("action server", ACTION_STAGES),
                ):
                    prof = recs[process].finish(process, stages)
                    result.profile[f"{name}: {process}"] = prof.ms_per_turn(turns)
        for stack in bots.values():
            result.rss_mb[f"{stack.name}: Rasa server"] = tree_rss_mb(stack.pid("rasa"))
            result.rss_mb[f"{stack.name}: action server"] = tree_rss_mb(stack.pid("actions"))
    result.seconds = time.monotonic() - t_start
    return result


#: The server processes of a bot whose CPU time a run measures, by the pid key of its stack.
SERVERS = (("Rasa server", "rasa"), ("action server", "actions"))


def measured(stack: Stack, run: Coroutine[Any, Any, RunResult]) -> RunResult:
    """Drive one run (a coroutine of :func:`drive`, not started) and record the CPU time
    each of the bot's server processes used meanwhile."""
    before = {name: tree_cpu_seconds(stack.pid(key)) for name, key in SERVERS}
    result = asyncio.run(run)
    for name, key in SERVERS:
        result.cpu_s[name] = tree_cpu_seconds(stack.pid(key)) - before[name]
    return result


def _first_sight_table(result: BenchResult) -> list[str]:
    """By level: the turns that were a text's first sight against the others (levels
    without any are left out)."""
    rows = [
        "| shoppers | turns | first sight: floor p50 | full p50 | full − floor | "
        "other turns: full / floor p50 | p95 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in result.levels():
        keys = result.first_sight.get(c, frozenset())
        if not keys:
            continue
        floor, full = result.run("floor", c), result.run("full", c)
        first = {}
        rest = {}
        for name, run in (("floor", floor), ("full", full)):
            first[name] = [t.latency_ms for t in run.turns if (t.conversation, t.index) in keys]
            rest[name] = [t.latency_ms for t in run.turns if (t.conversation, t.index) not in keys]
        if not (first["floor"] and first["full"] and rest["floor"] and rest["full"]):
            continue
        f50, u50 = percentile(first["floor"], 50), percentile(first["full"], 50)
        r50 = percentile(rest["full"], 50) / percentile(rest["floor"], 50)
        r95 = percentile(rest["full"], 95) / percentile(rest["floor"], 95)
        rows.append(
            f"| {c} | {len(first['full'])} of {len(full.turns)} | {f50:.0f} ms | {u50:.0f} ms "
            f"| {u50 - f50:+.1f} ms | {r50:.2f}× | {r95:.2f}× |"
        )
    return rows if len(rows) > 2 else []


def _cpu_table(result: BenchResult) -> list[str]:
    """CPU milliseconds per turn of each bot's servers, by level (runs that measured it)."""
    rows = [
        "| shoppers | bot | Rasa server | action server | both |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in result.levels():
        both: dict[str, float] = {}
        for bot in ("floor", "full"):
            cpu = result.run(bot, c).cpu_ms_per_turn()
            if not cpu:
                return []
            rasa, actions = cpu.get("Rasa server", 0.0), cpu.get("action server", 0.0)
            both[bot] = rasa + actions
            rows.append(f"| {c} | {bot} | {rasa:.1f} | {actions:.1f} | {both[bot]:.1f} |")
        if both["floor"] > 0:
            rows.append(f"| {c} | **full / floor** | | | **{both['full'] / both['floor']:.2f}×** |")
    return rows


def _table(result: BenchResult) -> list[str]:
    rows = [
        "| shoppers | bot | p50 ms | p95 ms | p99 ms | turns/s | turns | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in result.levels():
        for bot in ("floor", "full"):
            s = result.run(bot, c).summary()
            rows.append(
                f"| {c} | {bot} | {s['p50']:.0f} | {s['p95']:.0f} | {s['p99']:.0f} | "
                f"{s['throughput']:.1f} | {int(s['turns'])} | {int(s['errors'])} |"
            )
        floor, full = result.run("floor", c).summary(), result.run("full", c).summary()
        rows.append(
            f"| {c} | **full / floor** | **{full['p50'] / floor['p50']:.2f}×** | "
            f"**{full['p95'] / floor['p95']:.2f}×** | {full['p99'] / floor['p99']:.2f}× | "
            f"{full['throughput'] / floor['throughput']:.2f}× | | |"
        )
    return rows


def plot(result: BenchResult, path: Path) -> Path:
    """Latency (p50 and p95) against concurrency for both bots, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = result.levels()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for bot, colour in (("floor", "tab:gray"), ("full", "tab:blue")):
        for stat, style in (("p50", "-"), ("p95", "--")):
            ys = [result.run(bot, c).summary()[stat] for c in levels]
            ax.plot(levels, ys, style, color=colour, marker="o", label=f"{bot} {stat}")
        ax2.plot(
            levels,
            [result.run(bot, c).summary()["throughput"] for c in levels],
            color=colour,
            marker="o",
            label=bot,
        )
    for a in (ax, ax2):
        a.set_xscale("log", base=2)
        a.set_xticks(levels, [str(c) for c in levels])
        a.set_xlabel("concurrent conversations")
        a.grid(alpha=0.3)
        a.legend()
    ax.set_ylabel("turn latency (ms)")
    ax.set_title("Latency against concurrency")
    ax2.set_ylabel("turns per second")
    ax2.set_title("Throughput")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(result: BenchResult, out_dir: Path, command: str) -> Path:
    """Write ``out_dir/turns.md`` and ``out_dir/latency.png``; return the markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot(result, out_dir / "latency.png")
    lines = [
        "# Turn latency: the full bot against the floor",
        "",
        f"Written by `{command}` on {result.started} (commit {_commit()}, "
        f"{result.seconds / 60:.1f} min).",
        f"Machine: {_machine()}. {result.placement}.",
        "",
        'The floor is the same Rasa model with an action server whose actions answer "ok" '
        "and do nothing: what Rasa itself costs. Both bots get the same scripted "
        "conversations through the REST webhook; each shopper waits for an answer before "
        "the next message. A level runs in rounds of its conversations, each round on both "
        "bots in turn, the order alternating (floor first, then full first, ...), so that "
        "drift of the machine during the level hits both bots alike.",
        "",
        *_table(result),
        "",
        f"![latency against concurrency]({png.name})",
        "",
    ]
    cpu = _cpu_table(result)
    if cpu:
        lines += [
            "## CPU per turn",
            "",
            "CPU milliseconds (user + system, from /proc) the servers of each bot used per "
            "turn during the level: less noisy than latency on a shared machine, and what "
            "bounds throughput once the cores are busy.",
            "",
            *cpu,
            "",
        ]
    lines += [
        "## Targets",
        "",
        *[f"- {line}" for line in result.verdicts()],
        "",
    ]
    sights = _first_sight_table(result)
    if sights:
        lines += [
            "## First sight of a text",
            "",
            "The scripts repeat their texts, and the full bot keeps each text's query vector "
            "and sentiment, so a text costs it most the first time it comes (a real shopper's "
            "text nearly always does; `--cold-caches` makes every turn pay). Before measuring, "
            "each bot had one conversation of each of the first two scripts; the first level "
            "to run holds the first sight of every other text:",
            "",
            *sights,
            "",
        ]
    if result.long:
        w = result.long_window
        lines += [
            "## Long conversations",
            "",
            f"{len(next(iter(result.long.values())).long)} conversations per bot, sent in "
            f"lock-step. During their last full pass of the {w}-message script, as many new "
            "conversations sent the same messages beside them, the order alternating: the "
            "growth is the last pass's median latency against theirs (the same messages at "
            "the same moments). Against the long conversations' own first pass, minutes "
            "earlier, the machine's drift enters too:",
            "",
            f"| bot | new conversations, turns 1–{w} | last pass | growth | "
            f"own turns 1–{w} | growth against them | turn 1 | last turn |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for bot, long_run in result.long.items():
            convs = long_run.long
            beside, last = growth_beside(long_run, w)
            first, _ = growth(convs, w)
            t1 = sorted(c[0] for c in convs)[len(convs) // 2]
            tn = sorted(c[-1] for c in convs)[len(convs) // 2]
            lines.append(
                f"| {bot} | {beside:.0f} ms | {last:.0f} ms | **{last / beside:.2f}×** | "
                f"{first:.0f} ms | {last / first:.2f}× | "
                f"{t1:.0f} ms | {tn:.0f} ms (turn {len(convs[0])}) |"
            )
        lines.append("")
    if result.profile:
        lines += [
            "## Where the time goes (1 shopper, py-spy CPU samples)",
            "",
            "CPU milliseconds per turn by stage; a sample counts for the innermost stage it is in.",
            "",
        ]
        for process, stages in result.profile.items():
            total = sum(stages.values())
            lines += [
                f"**{process}** ({total:.1f} ms CPU per turn)",
                "",
                "| stage | ms/turn | share |",
                "| --- | --- | --- |",
            ]
            for stage, ms in stages.items():
                lines.append(f"| {stage} | {ms:.1f} | {ms / total:.0%} |")
            lines.append("")
    if result.rss_mb:
        lines += ["## Memory (RSS after the run)", "", "| process | MiB |", "| --- | --- |"]
        lines += [f"| {k} | {v:.0f} |" for k, v in result.rss_mb.items()]
        lines.append("")
    path = out_dir / "turns.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
