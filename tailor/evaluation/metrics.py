"""Classification metrics used by the evaluations: accuracy, per-class precision/recall/F1,
macro-F1, confusion matrices and calibration (reliability bins, expected calibration error).

Plain Python over label lists so every value can be checked by hand; each function's
docstring shows a worked example that the unit tests assert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ClassScores",
    "ReliabilityBin",
    "accuracy",
    "class_scores",
    "confusion",
    "expected_calibration_error",
    "macro_f1",
    "reliability_bins",
    "share",
]


def _check(gold: Sequence[str], predicted: Sequence[str]) -> None:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ValueError("no labels to score")


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of exact matches: ``accuracy("aab", "abb")`` → 2/3."""
    _check(gold, predicted)
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall, F1 and support (gold count) of one class."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


def class_scores(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None
) -> list[ClassScores]:
    """Per-class scores, in ``labels`` order (default: sorted union of gold and predicted).
    A class never predicted has precision 0; never in gold, recall 0; F1 is 0 when both are.

    gold a,a,b,b / predicted a,b,b,b → a: P 1, R 0.5, F1 2/3; b: P 2/3, R 1, F1 0.8.
    """
    _check(gold, predicted)
    names = list(labels) if labels is not None else sorted(set(gold) | set(predicted))
    out: list[ClassScores] = []
    for label in names:
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        n_pred = sum(p == label for p in predicted)
        n_gold = sum(g == label for g in gold)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(ClassScores(label, precision, recall, f1, n_gold))
    return out


def macro_f1(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None
) -> float:
    """Unweighted mean of the per-class F1 over ``labels`` (default: the gold classes, so a
    spurious predicted label lowers precision elsewhere but adds no class of its own).

    gold a,a,b,b / predicted a,b,b,b → (2/3 + 0.8) / 2 = 0.7333…
    """
    names = list(labels) if labels is not None else sorted(set(gold))
    scores = class_scores(gold, predicted, names)
    return sum(s.f1 for s in scores) / len(scores)


def confusion(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None
) -> tuple[list[str], list[list[int]]]:
    """``(labels, matrix)`` with ``matrix[i][j]`` = how many of gold ``labels[i]`` were
    predicted ``labels[j]``; labels default to the sorted union."""
    _check(gold, predicted)
    names = list(labels) if labels is not None else sorted(set(gold) | set(predicted))
    index = {name: i for i, name in enumerate(names)}
    matrix = [[0] * len(names) for _ in names]
    for g, p in zip(gold, predicted, strict=True):
        if g in index and p in index:
            matrix[index[g]][index[p]] += 1
    return names, matrix


@dataclass(frozen=True)
class ReliabilityBin:
    """Predictions whose probability fell in ``[lo, hi)``: their count, mean predicted
    probability and the observed frequency of the event."""

    lo: float
    hi: float
    count: int
    mean_probability: float
    frequency: float


def reliability_bins(
    probabilities: Sequence[float], outcomes: Sequence[bool], bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1] (the last bin includes 1.0); empty bins are kept with
    count 0 so plots line up.

    p = 0.1, 0.2, 0.8, 0.9 with outcomes F, T, T, T and 2 bins → [0, 0.5): 2 items, mean p
    0.15, frequency 0.5; [0.5, 1]: 2 items, mean p 0.85, frequency 1.0.
    """
    if len(probabilities) != len(outcomes):
        raise ValueError("probabilities and outcomes differ in length")
    if bins < 1:
        raise ValueError("bins must be 1 or more")
    groups: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for p, y in zip(probabilities, outcomes, strict=True):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"probability {p} is outside [0, 1]")
        groups[min(int(p * bins), bins - 1)].append((float(p), bool(y)))
    out: list[ReliabilityBin] = []
    for i, group in enumerate(groups):
        n = len(group)
        mean_p = sum(p for p, _ in group) / n if n else 0.0
        freq = sum(y for _, y in group) / n if n else 0.0
        out.append(ReliabilityBin(i / bins, (i + 1) / bins, n, mean_p, freq))
    return out


def expected_calibration_error(
    probabilities: Sequence[float], outcomes: Sequence[bool], bins: int = 10
) -> float:
    """Σ_bins (n_b / N) · |mean p_b − frequency_b|. The example of :func:`reliability_bins`
    gives ½·|0.15 − 0.5| + ½·|0.85 − 1| = 0.25."""
    rel = reliability_bins(probabilities, outcomes, bins)
    total = sum(b.count for b in rel)
    if total == 0:
        raise ValueError("no predictions to calibrate")
    return sum(b.count / total * abs(b.mean_probability - b.frequency) for b in rel)


def share(flags: Sequence[bool]) -> float:
    """Share of true values: ``share([True, False, False, True])`` → 0.5."""
    if not flags:
        raise ValueError("no values")
    return sum(bool(f) for f in flags) / len(flags)
