"""Behavioural segments: k-means on RFM features (recency, frequency, monetary value).

Arrays in, arrays out. The number of clusters is chosen by the best silhouette score over a
range of k (stated criterion), and each cluster is named from its centroid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Names a centroid can get, each scored from the centroid's standardised features.
SEGMENT_NAMES: tuple[str, ...] = (
    "champions",
    "loyal",
    "at risk",
    "new",
    "bargain hunters",
    "big spenders",
    "hibernating",
)
NO_PURCHASES = "no purchases yet"


@dataclass(frozen=True)
class RFMModel:
    """A fitted behavioural segmentation: scaler, centroids and their names."""

    mean: np.ndarray  # (3,) of log features
    std: np.ndarray  # (3,)
    centroids: np.ndarray  # (k, 3) in standardised space
    names: tuple[str, ...]
    k: int
    silhouettes: dict[int, float] = field(default_factory=dict)

    def features(
        self, recency_days: np.ndarray, frequency: np.ndarray, monetary: np.ndarray
    ) -> np.ndarray:
        """Standardised log-RFM features, shape (n, 3)."""
        raw = log_features(recency_days, frequency, monetary)
        return (raw - self.mean) / self.std

    def assign(
        self, recency_days: np.ndarray, frequency: np.ndarray, monetary: np.ndarray
    ) -> list[str]:
        """Segment name for each customer (nearest centroid)."""
        x = self.features(recency_days, frequency, monetary)
        d = ((x[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
        return [self.names[i] for i in d.argmin(axis=1)]

    def centroid_table(self) -> list[dict[str, float | str]]:
        """Centroids back in natural units (days, orders, money) for reports."""
        raw = np.expm1(self.centroids * self.std + self.mean)
        return [
            {"segment": n, "recency_days": float(r), "orders": float(f), "spent": float(m)}
            for n, (r, f, m) in zip(self.names, raw, strict=True)
        ]

    def to_json(self) -> dict[str, Any]:
        """JSON-safe parameters for persistence."""
        return {
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "centroids": self.centroids.tolist(),
            "names": list(self.names),
            "k": self.k,
            "silhouettes": {str(k): v for k, v in self.silhouettes.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RFMModel:
        """Inverse of :meth:`to_json`."""
        return cls(
            mean=np.asarray(data["mean"], dtype=np.float64),
            std=np.asarray(data["std"], dtype=np.float64),
            centroids=np.asarray(data["centroids"], dtype=np.float64),
            names=tuple(data["names"]),
            k=int(data["k"]),
            silhouettes={int(k): float(v) for k, v in data.get("silhouettes", {}).items()},
        )


def log_features(
    recency_days: np.ndarray, frequency: np.ndarray, monetary: np.ndarray
) -> np.ndarray:
    """``log1p`` of recency, frequency and monetary value: tames the long tails."""
    r = np.asarray(recency_days, dtype=np.float64)
    f = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    if not (r.shape == f.shape == m.shape) or r.ndim != 1:
        raise ValueError(
            "recency, frequency and monetary must be 1-D of one length, "
            f"got {r.shape}, {f.shape}, {m.shape}"
        )
    if (r < 0).any() or (f < 0).any() or (m < 0).any():
        raise ValueError("RFM values must not be negative")
    return np.log1p(np.stack([r, f, m], axis=1))


def name_segments(centroids: np.ndarray) -> tuple[str, ...]:
    """A distinct name for each standardised centroid (columns: recency, frequency, money).

    Each name has a score from the centroid (e.g. champions: bought recently, often, a lot);
    names go greedily to the best-scoring (centroid, name) pairs.
    """
    c = np.asarray(centroids, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"centroids must have shape (k, 3), got {c.shape}")
    if len(c) > len(SEGMENT_NAMES):
        raise ValueError(f"at most {len(SEGMENT_NAMES)} segments can be named, got {len(c)}")
    r, f, m = c[:, 0], c[:, 1], c[:, 2]
    aov = m - f  # log of average order value
    scores = {
        "champions": -r + f + m,
        "loyal": f - 0.5 * r + 0.25 * m,
        "at risk": r + 0.7 * f + 0.7 * m,
        "new": -r - 2.0 * f - 1.0,  # recent AND clearly fewer orders than average
        "bargain hunters": f - 1.5 * aov,
        "big spenders": aov + 0.5 * m - 0.5 * f,
        "hibernating": r - f - m,
    }
    pairs = sorted(
        ((float(scores[name][i]), i, name) for name in SEGMENT_NAMES for i in range(len(c))),
        reverse=True,
    )
    names: dict[int, str] = {}
    used: set[str] = set()
    for _score, i, name in pairs:
        if i in names or name in used:
            continue
        names[i] = name
        used.add(name)
    return tuple(names[i] for i in range(len(c)))


def fit_rfm(
    recency_days: Sequence[float] | np.ndarray,
    frequency: Sequence[float] | np.ndarray,
    monetary: Sequence[float] | np.ndarray,
    ks: Sequence[int] = (3, 4, 5, 6, 7),
    seed: int = 42,
) -> RFMModel:
    """Fit k-means for each k in ``ks`` and keep the one with the best silhouette score."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    raw = log_features(np.asarray(recency_days), np.asarray(frequency), np.asarray(monetary))
    n = len(raw)
    ks = [k for k in ks if 2 <= k < n]
    if not ks:
        raise ValueError(f"need more customers than clusters: {n} customers with purchases")
    mean = raw.mean(axis=0)
    std = raw.std(axis=0)
    std[std == 0] = 1.0
    x = (raw - mean) / std
    best: tuple[float, int, np.ndarray] | None = None
    scores: dict[int, float] = {}
    for k in ks:
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x)
        score = float(silhouette_score(x, km.labels_, random_state=seed))
        scores[k] = round(score, 4)
        if best is None or score > best[0]:
            best = (score, k, km.cluster_centers_)
    assert best is not None  # ks is non-empty
    _, k, centroids = best
    return RFMModel(
        mean=mean,
        std=std,
        centroids=centroids,
        names=name_segments(centroids),
        k=k,
        silhouettes=scores,
    )
