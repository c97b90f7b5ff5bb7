"""``tailor experiments report``: per arm and per arm x segment, rates with Wilson 95%
intervals, means of conversation length and sentiment, and z-tests against the control arm
with a Holm correction across arms; a markdown table and a PNG plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from tailor.experiments.definitions import Experiment
from tailor.experiments.outcomes import GroupStats, Tally, load_outcomes, tally
from tailor.experiments.stats import holm, mean_ci, two_proportion_z, wilson

ALPHA = 0.05


@dataclass(frozen=True)
class Rate:
    """A proportion with its Wilson 95% interval."""

    successes: int
    trials: int

    @property
    def value(self) -> float:
        """successes / trials (0 without trials)."""
        return self.successes / self.trials if self.trials else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson 95% interval."""
        return wilson(self.successes, self.trials)

    def text(self) -> str:
        """``4.10% [3.52, 4.77]`` (or ``–`` without trials)."""
        if not self.trials:
            return "–"
        lo, hi = self.interval
        return f"{100 * self.value:.2f}% [{100 * lo:.2f}, {100 * hi:.2f}]"


#: The rates of a group: (label, successes, trials) readers.
RATES: tuple[tuple[str, str], ...] = (
    ("click-through", "click"),
    ("card views", "view"),
    ("add-to-cart", "cart"),
    ("purchases / impression", "purchase"),
)
#: Metrics tested against the control arm.
TESTED: tuple[str, ...] = ("click-through", "add-to-cart", "conversion")


def rates(stats: GroupStats) -> dict[str, Rate]:
    """Every proportion reported for a group."""
    out = {label: Rate(stats.actions[kind], stats.impressions) for label, kind in RATES}
    out["conversion"] = Rate(stats.converted, stats.shoppers)
    return out


@dataclass(frozen=True)
class Test:
    """An arm against the control on one metric."""

    arm: str
    metric: str
    difference: float
    z: float
    p_value: float
    p_holm: float
    significant: bool


@dataclass
class Report:
    """Everything ``tailor experiments report`` prints and writes."""

    experiment: Experiment
    window: timedelta
    segment_kind: str
    tally: Tally
    tests: list[Test] = field(default_factory=list)
    generated: datetime = field(default_factory=lambda: datetime.now(UTC))

    def markdown(self) -> str:
        """The report as markdown tables with the definitions underneath."""
        e = self.experiment
        hours = self.window.total_seconds() / 3600
        lines = [
            f"# Experiment `{e.name}`",
            "",
            f"{e.description}".strip(),
            "",
            f"- Window: {e.start:%Y-%m-%d %H:%M} – {e.end:%Y-%m-%d %H:%M} UTC; "
            f"attribution window {hours:g} h after a suggestion.",
            "- Arms: "
            + ", ".join(
                f"`{a.name}` ({a.traffic:g}"
                + (
                    ", " + ", ".join(f"{k}={v:g}" for k, v in a.weights.items())
                    if a.weights
                    else ""
                )
                + ")"
                for a in e.arms
            )
            + f"; control `{e.control}`.",
            f"- Who: {e.describe_segments()}.",
            "",
            "## Per arm",
            "",
        ]
        lines += _table([(arm, stats) for arm, stats in self._arm_rows()])
        lines += ["", f"## Against the control (`{e.control}`)", ""]
        lines += [
            "| arm | metric | difference | z | p | p (Holm) | significant at 0.05 |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for t in self.tests:
            lines.append(
                f"| {t.arm} | {t.metric} | {100 * t.difference:+.2f} pp | {t.z:+.2f} | "
                f"{t.p_value:.4f} | {t.p_holm:.4f} | {'yes' if t.significant else 'no'} |"
            )
        if not self.tests:
            lines.append("| – | no test possible (an arm without data, or no variance) | | | | | |")
        lines += ["", f"## Per arm and {self.segment_kind} segment", ""]
        segs = sorted(self.tally.by_segment.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        lines += _table([(f"{arm} · {seg}", stats) for (arm, seg), stats in segs])
        lines += [
            "",
            "Rates: Wilson 95% intervals in brackets; means: ± normal 95% interval. "
            "An impression is one product card shown; click-through, card views, add-to-cart "
            "and purchases / impression are the shares of impressions followed by that action "
            "on the same product by the same shopper within the attribution window. "
            "Conversion is the share of exposed shoppers (customers, or conversations of "
            "anonymous visitors) who bought anything within the window after a suggestion. "
            "Tests: pooled two-proportion z-tests of each arm against the control, Holm-"
            "corrected across the arms for each metric. Impressions of one shopper are not "
            "independent, so the per-impression tests are optimistic; conversion (one trial "
            "per randomised shopper) is the primary metric.",
        ]
        return "\n".join(lines) + "\n"

    def _arm_rows(self) -> list[tuple[str, GroupStats]]:
        return [(a.name, self.tally.arms.get(a.name, GroupStats())) for a in self.experiment.arms]

    def plot(self, path: Path) -> Path:
        """Rates per arm with Wilson 95% error bars, one panel per metric, as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        metrics = ["click-through", "add-to-cart", "purchases / impression", "conversion"]
        rows = self._arm_rows()
        fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.6))
        for ax, metric in zip(axes, metrics, strict=True):
            values, lows, highs = [], [], []
            for _, stats in rows:
                r = rates(stats)[metric]
                lo, hi = r.interval
                values.append(100 * r.value)
                lows.append(100 * (r.value - lo))
                highs.append(100 * (hi - r.value))
            names = [arm for arm, _ in rows]
            colours = ["#888888" if n == self.experiment.control else "#3b6ea8" for n in names]
            ax.bar(names, values, yerr=[lows, highs], capsize=6, color=colours)
            ax.set_title(metric)
            ax.set_ylabel("%")
            ax.tick_params(axis="x", rotation=20)
        fig.suptitle(f"{self.experiment.name}: rates per arm (Wilson 95% intervals)")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _fmt_mean(values: list[float], digits: int = 2) -> str:
    m = mean_ci(values)
    if m is None:
        return "–"
    mean, lo, hi = m
    return f"{mean:.{digits}f} ± {(hi - lo) / 2:.{digits}f}"


def _table(rows: list[tuple[str, GroupStats]]) -> list[str]:
    head = (
        "| arm | shoppers | impressions | click-through | card views | add-to-cart | "
        "purchases / impression | conversion | messages / conversation | "
        "sentiment after suggestions |"
    )
    out = [head, "|---|---:|---:|---|---|---|---|---|---:|---:|"]
    for name, stats in rows:
        r = rates(stats)
        out.append(
            f"| {name} | {stats.shoppers} | {stats.impressions} | {r['click-through'].text()} | "
            f"{r['card views'].text()} | {r['add-to-cart'].text()} | "
            f"{r['purchases / impression'].text()} | {r['conversion'].text()} | "
            f"{_fmt_mean(stats.conversation_lengths)} | {_fmt_mean(stats.sentiment_after)} |"
        )
    return out


def significance(experiment: Experiment, t: Tally, alpha: float = ALPHA) -> list[Test]:
    """Each non-control arm against the control on the tested metrics, Holm across arms."""
    control = rates(t.arms.get(experiment.control, GroupStats()))
    others = [a.name for a in experiment.arms if a.name != experiment.control]
    tests: list[Test] = []
    for metric in TESTED:
        a = control[metric]
        raw = []
        for arm in others:
            b = rates(t.arms.get(arm, GroupStats()))[metric]
            raw.append(two_proportion_z(a.successes, a.trials, b.successes, b.trials))
        adjusted = holm([r.p_value if r else None for r in raw], alpha)
        for arm, result, (p_holm, rejected) in zip(others, raw, adjusted, strict=True):
            if result is None or p_holm is None:
                continue
            tests.append(
                Test(arm, metric, result.difference, result.z, result.p_value, p_holm, rejected)
            )
    return tests


def build_report(
    factory: sessionmaker[Session],
    experiment: Experiment,
    window: timedelta,
    segment_kind: str = "rfm",
) -> Report:
    """Read the experiment's events and compute the report."""
    with factory() as session:
        exposures, outcomes, segment_of = load_outcomes(
            session, experiment.name, experiment.start, experiment.end, window, segment_kind
        )
    t = tally(exposures, outcomes, window, [a.name for a in experiment.arms], segment_of)
    return Report(experiment, window, segment_kind, t, significance(experiment, t))


def write_report(report: Report, out: Path) -> tuple[Path, Path]:
    """Write ``<name>.md`` and ``<name>.png`` into ``out``; the two paths."""
    out.mkdir(parents=True, exist_ok=True)
    png = report.plot(out / f"{report.experiment.name}.png")
    text = report.markdown() + f"\n![rates per arm]({png.name})\n"
    md = out / f"{report.experiment.name}.md"
    md.write_text(text, encoding="utf-8")
    return md, png
