"""Sentiment model quality: accuracy and macro-F1 on SST-2 dev and the UCI sentences
(binary: positive when p(positive) > p(negative)), and on the held-out part of the
shopping-reaction set (3-class), with the calibration of the neutral class there.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tailor.evaluation.metrics import (
    ReliabilityBin,
    accuracy,
    class_scores,
    confusion,
    expected_calibration_error,
    macro_f1,
    reliability_bins,
)
from tailor.sentiment.data import Row

if TYPE_CHECKING:
    from tailor.config import Settings

__all__ = ["SentimentEvalRow", "SentimentReport", "run_sentiment_eval", "score_rows"]


@dataclass(frozen=True)
class SentimentEvalRow:
    """Scores of the model on one data set."""

    name: str
    rows: int
    accuracy: float
    macro_f1: float
    binary: bool


@dataclass
class SentimentReport:
    """All data sets, plus the neutral-class calibration on the shopping reactions."""

    model: str
    results: list[SentimentEvalRow] = field(default_factory=list)
    neutral_bins: list[ReliabilityBin] = field(default_factory=list)
    neutral_ece: float | None = None
    neutral_precision: float | None = None
    neutral_recall: float | None = None
    shopping_confusion: tuple[list[str], list[list[int]]] | None = None
    seconds: float = 0.0

    def markdown(self) -> str:
        """Accuracy/macro-F1 table and the neutral calibration summary."""
        lines = [
            "| data set | rows | scored as | accuracy | macro-F1 |",
            "| --- | ---: | --- | ---: | ---: |",
        ]
        for r in self.results:
            kind = "binary" if r.binary else "3-class"
            lines.append(f"| {r.name} | {r.rows} | {kind} | {r.accuracy:.3f} | {r.macro_f1:.3f} |")
        if self.neutral_ece is not None:
            lines += [
                "",
                f"Neutral class on the held-out shopping reactions: precision "
                f"{self.neutral_precision:.3f}, recall {self.neutral_recall:.3f}, expected "
                f"calibration error of p(neutral) **{self.neutral_ece:.3f}** (10 bins).",
                "",
                "| p(neutral) bin | messages | mean p(neutral) | share truly neutral |",
                "| --- | ---: | ---: | ---: |",
            ]
            for b in self.neutral_bins:
                if b.count:
                    lines.append(
                        f"| {b.lo:.1f}–{b.hi:.1f} | {b.count} | {b.mean_probability:.2f} "
                        f"| {b.frequency:.2f} |"
                    )
        return "\n".join(lines)


def score_rows(
    labels: Sequence[str], probs: Sequence[Sequence[float]], rows: Sequence[Row], binary: bool
) -> tuple[list[str], list[str]]:
    """(gold, predicted) labels; binary compares p(positive) with p(negative) only."""
    gold = [label for _, label in rows]
    if binary:
        pos, neg = labels.index("positive"), labels.index("negative")
        predicted = ["positive" if p[pos] > p[neg] else "negative" for p in probs]
    else:
        predicted = [labels[_argmax(p)] for p in probs]
    return gold, predicted


def _argmax(values: Sequence[float]) -> int:
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def run_sentiment_eval(
    model_path: str | Path | None,
    sets: Sequence[tuple[str, Sequence[Row], bool]],
    calibration: Sequence[Row] = (),
    settings: Settings | None = None,
) -> SentimentReport:
    """Score the model at ``model_path`` (default: the shipped one) on each ``(name, rows,
    binary)`` set and calibrate p(neutral) on ``calibration`` (3-class rows). The model runs
    as the bot runs it: on the backend ``settings`` (default: the environment's) configure."""
    from tailor.config import Settings
    from tailor.sentiment import default_model_path, model_for

    started = time.monotonic()
    settings = settings or Settings.load()
    path = Path(model_path) if model_path else default_model_path()
    model = model_for(settings, path, bulk=True)
    report = SentimentReport(model=f"{path} ({settings.sentiment_backend})")
    labels = list(model.labels)
    for name, rows, binary in sets:
        if not rows:
            continue
        probs = model.predict_proba([t for t, _ in rows]).tolist()
        gold, predicted = score_rows(labels, probs, rows, binary)
        report.results.append(
            SentimentEvalRow(
                name, len(rows), accuracy(gold, predicted), macro_f1(gold, predicted), binary
            )
        )
    if calibration:
        probs = model.predict_proba([t for t, _ in calibration]).tolist()
        gold, predicted = score_rows(labels, probs, calibration, binary=False)
        neutral = labels.index("neutral")
        p_neutral = [min(1.0, max(0.0, float(p[neutral]))) for p in probs]
        is_neutral = [g == "neutral" for g in gold]
        report.neutral_bins = reliability_bins(p_neutral, is_neutral, bins=10)
        report.neutral_ece = expected_calibration_error(p_neutral, is_neutral, bins=10)
        scores = {s.label: s for s in class_scores(gold, predicted, labels)}
        report.neutral_precision = scores["neutral"].precision
        report.neutral_recall = scores["neutral"].recall
        report.shopping_confusion = confusion(gold, predicted, labels)
    report.seconds = time.monotonic() - started
    return report
