"""The embedding cache: round trips, first vector wins, damaged files are ignored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tailor.retrieval.cache import VectorCache


def test_put_get_save_load(tmp_path: Path) -> None:
    cache = VectorCache(tmp_path / "m", 3)
    vecs = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.put_many(["a", "b"], vecs)
    found, got = cache.get_many(["b", "x", "a"])
    assert found.tolist() == [True, False, True]
    assert np.array_equal(got, vecs[[1, 0]])
    cache.put_many(["a"], np.full((1, 3), 9, dtype=np.float32))  # a known key keeps its vector
    cache.save()
    again = VectorCache(tmp_path / "m", 3)
    assert len(again) == 2
    found, got = again.get_many(["a", "b"])
    assert found.all() and np.array_equal(got, vecs)
    with pytest.raises(ValueError):
        again.put_many(["c"], np.zeros((1, 4), dtype=np.float32))


def test_damaged_or_mismatched_cache_starts_empty(tmp_path: Path) -> None:
    cache = VectorCache(tmp_path / "m", 3)
    cache.put_many(["a"], np.ones((1, 3), dtype=np.float32))
    cache.save()
    assert len(VectorCache(tmp_path / "m", 4)) == 0  # another width: not this model's
    (tmp_path / "m" / "vectors.npy").write_bytes(b"not numpy")
    assert len(VectorCache(tmp_path / "m", 3)) == 0
    empty = VectorCache(tmp_path / "none", 3)
    found, got = empty.get_many(["a"])
    assert not found.any() and got.shape == (0, 3)
