"""``tailor eval all``: every evaluation in one run, written to ``docs/quality.md`` with
matplotlib plots beside it (``docs/quality/*.png``), the exact commands and the versions
(SHA-256 prefixes and row counts) of the data used.

Each section is a function returning markdown, so ``tailor eval nlu`` and ``tailor eval
sentiment`` print the same tables on their own.
"""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tailor.config import Settings

__all__ = ["DataFiles", "QualityRun", "data_files", "write_report"]

Echo = Callable[[str], None]


@dataclass(frozen=True)
class DataFiles:
    """Where the shared evaluation data lives below ``root``."""

    root: Path

    @property
    def abt_buy(self) -> Path:
        return self.root / "retrieval" / "abt_buy"

    @property
    def clinc(self) -> Path:
        return self.root / "nlu" / "clinc150_train_val.json"

    @property
    def clinc_domains(self) -> Path:
        return self.root / "nlu" / "clinc150_domains.json"

    @property
    def sst2(self) -> Path:
        return self.root / "sentiment" / "sst2"

    @property
    def uci(self) -> Path:
        return self.root / "sentiment" / "uci"


def data_files(root: str | Path) -> DataFiles:
    """The data folder, checked: a clear error names what is missing."""
    files = DataFiles(Path(root))
    missing = [
        str(p)
        for p in (files.abt_buy, files.clinc, files.clinc_domains, files.sst2, files.uci)
        if not p.exists()
    ]
    if missing:
        raise FileNotFoundError("evaluation data not found: " + ", ".join(missing))
    return files


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


@dataclass
class QualityRun:
    """Sections of the report as they are produced, with their timings."""

    settings: Settings
    files: DataFiles
    plots: Path
    echo: Echo
    sections: list[tuple[str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def timed(self, name: str, fn: Callable[[], str]) -> None:
        """Run one section, record its markdown and duration."""
        self.echo(f"== {name}")
        started = time.monotonic()
        body = fn()
        self.timings[name] = time.monotonic() - started
        self.echo(f"   {name}: {self.timings[name]:.0f} s")
        self.sections.append((name, body))

    # -- sections -------------------------------------------------------------------------

    def retrieval(self) -> str:
        """Abt-Buy: lexical, dense, hybrid; precision/recall at k plot."""
        from tailor.evaluation.retrieval import load_dataset, run_retrieval_eval
        from tailor.retrieval.engine import embedder_for

        s = self.settings
        dataset = load_dataset("abt-buy", self.files.abt_buy)
        embedder = embedder_for(s)
        report = run_retrieval_eval(dataset, embedder, k=10, progress=False)
        plot = self.plots / "retrieval_pr_at_k.png"
        _plot_pr_at_k(report.curves, plot, title=f"{dataset.name}: precision and recall at k")
        best = max(report.rows, key=lambda r: r.mrr)
        self.summary["retrieval"] = {
            r.mode: {"R@1": r.recall_1, "R@10": r.recall_k, "MRR": r.mrr} for r in report.rows
        }
        return "\n".join(
            [
                report.markdown(),
                "",
                f"Best by MRR: **{best.mode}**. The bot's hybrid is the convex fusion "
                "(`TAILOR_SEARCH_MODE=hybrid`, the default).",
                "",
                f"![precision and recall at k]({plot.parent.name}/{plot.name})",
            ]
        )

    def understanding(self, recommender: Any) -> str:
        """Constraint extraction on the shopping set (no dialogue model involved)."""
        from tailor.evaluation.scope import load_shopping_requests, score_understanding

        rows = load_shopping_requests()
        rep = score_understanding(
            recommender.understanding.understand, rows, recommender.vocab.category_for
        )
        fixes = ", ".join(f"{k}" for k, _ in rep.corrections.most_common(12))
        return "\n".join(
            [
                f"Query understanding (`tailor.nlu.understand`) on the {len(rows)} labelled "
                "shopping requests: how often each stated constraint is extracted with the "
                "right value.",
                "",
                rep.markdown(),
                "",
                f"Spelling corrections made, most common first: {fixes or 'none'}.",
            ]
        )

    def nlu(self) -> str:
        """Rasa cross-validation with a confusion-matrix plot."""
        from tailor.evaluation.nlu import run_cross_validation

        out = Path(self.settings.home) / "eval" / "nlu-cv"
        report = run_cross_validation(self.settings, out, folds=5, echo=self.echo)
        plot = self.plots / "intent_confusion.png"
        if report.confusion is not None:
            labels, matrix = report.confusion
            _plot_confusion(labels, matrix, plot, "Intent confusion (5-fold CV)")
        self.summary["nlu"] = {
            "accuracy": report.intent_accuracy,
            "macro_f1": report.intent_macro_f1,
        }
        return "\n".join(
            [
                report.markdown(),
                "",
                f"Rasa's full reports (per-intent errors, entity reports): `{out}`.",
                "",
                f"![intent confusion matrix]({plot.parent.name}/{plot.name})",
            ]
        )

    def scope(self, model: Path) -> str:
        """CLINC150 val + our shopping set through the running bot."""
        from tailor.evaluation.scope import (
            load_clinc,
            load_clinc_domains,
            load_shopping_requests,
            run_scope_eval,
        )
        from tailor.evaluation.stack import eval_settings, running_bot

        clinc = load_clinc(self.files.clinc)
        domains = load_clinc_domains(self.files.clinc_domains)
        non = [(domains.get(i, "other"), t) for t, i in clinc["val"]]
        non += [("out_of_scope (oos_val)", t) for t, _ in clinc.get("oos_val", [])]
        shopping = load_shopping_requests()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] > 20 or done == total:
                last[0] = now
                self.echo(f"   {done}/{total} messages")

        with running_bot(eval_settings(self.settings), model, echo=self.echo) as say:
            report = run_scope_eval(say, non, shopping, workers=3, progress=progress)
        self.summary["scope"] = {
            "wrong_suggestions": report.wrong_suggestion_rate,
            "recognised": report.recognised_rate,
        }
        wrong = "\n".join(f"- ({g}) {t}" for g, t in report.wrong[:20])
        missed = "\n".join(f"- ({g}) {t}" for g, t in report.missed[:25])
        return "\n".join(
            [
                f"{report.messages} messages, each in a new conversation through the real Rasa "
                f"server and action server ({report.seconds:.0f} s). A non-shopping message "
                "counts as wrong when the reply carries product cards; a shopping request "
                "counts as recognised when the bot answers it as one (cards, or its "
                "explicit “I couldn't find anything for …” answer).",
                "",
                report.markdown(),
                "",
                f"Non-shopping messages that got suggestions (first 20 of {len(report.wrong)}):",
                "",
                wrong or "- none",
                "",
                f"Shopping requests not recognised (first 25 of {len(report.missed)}):",
                "",
                missed or "- none",
            ]
        )

    def sentiment(self) -> str:
        """SST-2 dev, UCI, shopping held-out; neutral reliability plot."""
        from tailor.evaluation.sentiment import run_sentiment_eval
        from tailor.sentiment.data import load_shopping, load_sst2, load_uci, split_shopping

        _, heldout = split_shopping(load_shopping())
        sets: list[tuple[str, Sequence[Any], bool]] = [
            ("SST-2 dev", load_sst2(self.files.sst2, "dev"), True),
        ]
        for name in ("amazon_cells", "yelp", "imdb"):
            sets.append((f"UCI {name}", load_uci(self.files.uci / f"{name}_labelled.txt"), True))
        sets.append(("UCI all", load_uci(self.files.uci), True))
        sets.append(("shopping reactions, held out", heldout, False))
        report = run_sentiment_eval(None, sets, calibration=heldout, settings=self.settings)
        plot = self.plots / "sentiment_neutral_reliability.png"
        _plot_reliability(report.neutral_bins, plot, "p(neutral) on held-out shopping reactions")
        conf_plot = self.plots / "sentiment_confusion.png"
        if report.shopping_confusion is not None:
            labels, matrix = report.shopping_confusion
            _plot_confusion(labels, matrix, conf_plot, "Sentiment, held-out shopping reactions")
        self.summary["sentiment"] = {r.name: r.accuracy for r in report.results}
        return "\n".join(
            [
                report.markdown(),
                "",
                f"![neutral calibration]({plot.parent.name}/{plot.name}) "
                f"![sentiment confusion]({conf_plot.parent.name}/{conf_plot.name})",
            ]
        )


# -- plots ------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_pr_at_k(
    curves: dict[str, list[tuple[int, float, float]]], path: Path, title: str
) -> None:
    plt = _pyplot()
    fig, (ax_p, ax_r) = plt.subplots(1, 2, figsize=(10, 4))
    for method, points in curves.items():
        ks = [k for k, _, _ in points]
        ax_p.plot(ks, [p for _, p, _ in points], marker="o", label=method)
        ax_r.plot(ks, [r for _, _, r in points], marker="o", label=method)
    ax_p.set(xlabel="k", ylabel="precision@k", title="precision at k")
    ax_r.set(xlabel="k", ylabel="recall@k", title="recall at k")
    ax_r.legend(fontsize=8, loc="lower right")
    for ax in (ax_p, ax_r):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_confusion(labels: list[str], matrix: list[list[int]], path: Path, title: str) -> None:
    plt = _pyplot()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set(xlabel="predicted", ylabel="gold", title=title)
    peak = max((max(row) for row in matrix), default=0) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value:
                colour = "white" if value > peak / 2 else "black"
                ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color=colour)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_reliability(bins: Sequence[Any], path: Path, title: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    used = [b for b in bins if b.count]
    ax.plot(
        [b.mean_probability for b in used],
        [b.frequency for b in used],
        marker="o",
        label="model",
    )
    for b in used:
        ax.annotate(str(b.count), (b.mean_probability, b.frequency), fontsize=7)
    ax.set(xlabel="mean predicted p(neutral)", ylabel="share truly neutral", title=title)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the document -------------------------------------------------------------------------


def write_report(run: QualityRun, out: Path, command: str, total_seconds: float) -> Path:
    """Write ``docs/quality.md``: header (commands, data versions, machine, timings) and
    every section in order."""
    f = run.files
    versions = [
        ("Abt-Buy (Abt.csv, Buy.csv, matches_dev.csv)", f.abt_buy),
        ("CLINC150 train/val + domains", f.clinc),
        ("SST-2 (dev.tsv)", f.sst2 / "dev.tsv"),
        ("UCI sentiment sentences", f.uci),
    ]
    from tailor.evaluation.scope import SHOPPING_REQUESTS
    from tailor.sentiment.data import SHOPPING_REACTIONS

    versions += [
        ("shopping requests (ours)", SHOPPING_REQUESTS),
        ("shopping reactions (ours)", SHOPPING_REACTIONS),
    ]
    lines = [
        "# Quality report",
        "",
        f"Generated by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({platform.machine()}, {_cores()} cores), in {total_seconds / 60:.1f} min. Every "
        "number below comes from that one run; re-run the command to reproduce it.",
        "",
        "| section | seconds |",
        "| --- | ---: |",
        *[f"| {name} | {secs:.0f} |" for name, secs in run.timings.items()],
        "",
        "Data (SHA-256 prefix of the files read):",
        "",
        *[f"- {name}: `{p}` — `{_digest(p)}`" for name, p in versions if p.exists()],
        "",
        "Single sections: `tailor eval retrieval --dataset abt-buy --data "
        f"{f.abt_buy}`, `tailor eval nlu --data {f.root}`, "
        f"`tailor eval sentiment --data {f.root}`.",
    ]
    for name, body in run.sections:
        lines += ["", f"## {name}", "", body]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _cores() -> int:
    import os

    return os.cpu_count() or 1
