"""Classification and calibration metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from tailor.evaluation.metrics import (
    accuracy,
    class_scores,
    confusion,
    expected_calibration_error,
    macro_f1,
    reliability_bins,
    share,
)

GOLD = ["a", "a", "b", "b"]
PRED = ["a", "b", "b", "b"]


def test_accuracy_by_hand() -> None:
    assert accuracy(list("aab"), list("abb")) == pytest.approx(2 / 3)
    assert accuracy(GOLD, GOLD) == 1.0
    with pytest.raises(ValueError):
        accuracy(["a"], [])
    with pytest.raises(ValueError):
        accuracy([], [])


def test_class_scores_by_hand() -> None:
    a, b = class_scores(GOLD, PRED)
    # a: 1 true positive, 1 predicted, 2 gold
    assert (a.label, a.precision, a.recall, a.support) == ("a", 1.0, 0.5, 2)
    assert a.f1 == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    # b: 2 true positives, 3 predicted, 2 gold
    assert (b.precision, b.recall) == (pytest.approx(2 / 3), 1.0)
    assert b.f1 == pytest.approx(0.8)


def test_macro_f1_by_hand_and_spurious_labels() -> None:
    assert macro_f1(GOLD, PRED) == pytest.approx((2 / 3 + 0.8) / 2)
    # a predicted label absent from gold adds no class of its own, but costs recall of "a"
    assert macro_f1(["a", "a"], ["a", "z"]) == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    # perfect
    assert macro_f1(GOLD, GOLD) == 1.0


def test_macro_f1_matches_a_brute_force_reference() -> None:
    import random

    rng = random.Random(3)
    for _ in range(50):
        gold = [rng.choice("xyz") for _ in range(30)]
        pred = [rng.choice("xyz") for _ in range(30)]
        f1s = []
        for c in sorted(set(gold)):
            tp = sum(g == p == c for g, p in zip(gold, pred, strict=True))
            fp = sum(p == c != g for g, p in zip(gold, pred, strict=True))
            fn = sum(g == c != p for g, p in zip(gold, pred, strict=True))
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
        assert macro_f1(gold, pred) == pytest.approx(sum(f1s) / len(f1s))


def test_confusion_matrix_by_hand() -> None:
    labels, matrix = confusion(GOLD, PRED)
    assert labels == ["a", "b"]
    assert matrix == [[1, 1], [0, 2]]
    labels, matrix = confusion(["x"], ["y"], labels=["y", "x"])
    assert matrix == [[0, 0], [1, 0]]


def test_reliability_bins_and_ece_by_hand() -> None:
    probs = [0.1, 0.2, 0.8, 0.9]
    outcomes = [False, True, True, True]
    low, high = reliability_bins(probs, outcomes, bins=2)
    assert (low.count, high.count) == (2, 2)
    assert low.mean_probability == pytest.approx(0.15)
    assert low.frequency == 0.5
    assert high.mean_probability == pytest.approx(0.85)
    assert high.frequency == 1.0
    assert expected_calibration_error(probs, outcomes, bins=2) == pytest.approx(0.25)
    # 1.0 lands in the last bin; empty bins are kept
    bins = reliability_bins([1.0], [True], bins=4)
    assert [b.count for b in bins] == [0, 0, 0, 1]
    assert math.isclose(expected_calibration_error([1.0], [True], bins=4), 0.0)
    with pytest.raises(ValueError):
        reliability_bins([1.2], [True])


def test_share() -> None:
    assert share([True, False, False, True]) == 0.5
    with pytest.raises(ValueError):
        share([])
