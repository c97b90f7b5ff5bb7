"""Behavioural RFM segmentation checked against brute-force references on seeded data."""

from __future__ import annotations

import numpy as np
import pytest

from tailor.profiles.rfm import RFMModel, fit_rfm, log_features, name_segments


def synthetic(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four planted groups: champions, new, hibernating, at risk."""
    rng = np.random.default_rng(seed)
    groups = [  # (recency days, orders, spent per order)
        (10, 20, 150),
        (12, 1, 60),
        (400, 1, 40),
        (250, 12, 120),
    ]
    r, f, m = [], [], []
    for rec, orders, aov in groups:
        n = 60
        rr = np.clip(rng.normal(rec, rec * 0.15, n), 0, None)
        ff = np.clip(np.round(rng.normal(orders, max(0.3, orders * 0.15), n)), 1, None)
        r.append(rr)
        f.append(ff)
        m.append(ff * np.clip(rng.normal(aov, aov * 0.15, n), 1, None))
    return np.concatenate(r), np.concatenate(f), np.concatenate(m)


def test_finds_the_planted_groups_and_names_them() -> None:
    r, f, m = synthetic()
    model = fit_rfm(r, f, m, seed=1)
    assert model.k == 4, model.silhouettes
    labels = model.assign(r, f, m)
    first = [labels[i * 60] for i in range(4)]
    assert first == ["champions", "new", "hibernating", "at risk"]
    for g in range(4):  # each planted group lands in one segment
        assert len(set(labels[g * 60 : (g + 1) * 60])) == 1


def test_assign_is_the_nearest_centroid_by_brute_force() -> None:
    r, f, m = synthetic(5)
    model = fit_rfm(r, f, m, ks=(3, 4, 5), seed=2)
    x = (log_features(r, f, m) - model.mean) / model.std
    for i in range(0, len(r), 17):
        dists = [float(((x[i] - c) ** 2).sum()) for c in model.centroids]
        assert (
            model.assign(r[i : i + 1], f[i : i + 1], m[i : i + 1])[0]
            == model.names[int(np.argmin(dists))]
        )


def test_deterministic_and_round_trips() -> None:
    r, f, m = synthetic()
    a, b = fit_rfm(r, f, m, seed=7), fit_rfm(r, f, m, seed=7)
    assert a.names == b.names and np.allclose(a.centroids, b.centroids)
    again = RFMModel.from_json(a.to_json())
    assert again.assign(r, f, m) == a.assign(r, f, m)
    table = a.centroid_table()
    assert {row["segment"] for row in table} == set(a.names)


def test_names_are_distinct_and_errors_are_clear() -> None:
    names = name_segments(np.array([[-1.0, 1.0, 1.0], [-1.0, 1.0, 1.0], [1.0, -1.0, -1.0]]))
    assert len(set(names)) == 3
    with pytest.raises(ValueError, match="shape"):
        name_segments(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="more customers than clusters"):
        fit_rfm([1, 2], [1, 1], [5, 5])
    with pytest.raises(ValueError, match="negative"):
        fit_rfm([-1, 2, 3, 4], [1, 1, 1, 1], [5, 5, 5, 5])
