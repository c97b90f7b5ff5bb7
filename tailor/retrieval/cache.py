"""Embeddings kept by the hash of the text they embed, per embedding model, so a product
whose text did not change is never embedded again — not on a sync, and not when the index
is rebuilt (another backend, a lost index folder).

One folder per model name (``<root>/<embedder name>/``) holding ``keys.npy`` (text hashes)
and ``vectors.npy`` (float32 rows in the same order); writes are atomic (temporary files,
then rename), so a crash leaves the previous cache intact.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["VectorCache"]


class VectorCache:
    """``text hash → vector`` for one embedding model."""

    def __init__(self, folder: str | Path, dim: int) -> None:
        self.folder = Path(folder)
        self.dim = int(dim)
        self._lock = threading.Lock()
        self._rows: dict[str, int] = {}
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)
        self._dirty = False
        self._load()

    def __len__(self) -> int:
        return len(self._rows)

    def _load(self) -> None:
        keys_file = self.folder / "keys.npy"
        vecs_file = self.folder / "vectors.npy"
        if not (keys_file.is_file() and vecs_file.is_file()):
            return
        try:
            keys = np.load(keys_file, allow_pickle=False)
            vectors = np.load(vecs_file, allow_pickle=False)
        except (OSError, ValueError):
            return  # unreadable: start empty, it is only a cache
        if vectors.ndim != 2 or vectors.shape != (len(keys), self.dim):
            return
        self._rows = {str(k): i for i, k in enumerate(keys.tolist())}
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def get_many(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(found, vectors)``: a boolean mask over ``keys`` and the cached vectors of the
        found ones, in order."""
        with self._lock:
            rows = [self._rows.get(k, -1) for k in keys]
            found = np.array([r >= 0 for r in rows], dtype=bool)
            picked = np.array([r for r in rows if r >= 0], dtype=np.int64)
            return found, self._vectors[picked] if picked.size else np.zeros(
                (0, self.dim), np.float32
            )

    def put_many(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Remember ``vectors`` (one row per key); a known key keeps its first vector."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"expected {(len(keys), self.dim)} vectors, got {vectors.shape}")
        with self._lock:
            new = [(k, i) for i, k in enumerate(keys) if k not in self._rows]
            if not new:
                return
            start = len(self._rows)
            for offset, (k, _) in enumerate(new):
                self._rows[k] = start + offset
            self._vectors = np.concatenate([self._vectors, vectors[[i for _, i in new]]])
            self._dirty = True

    def save(self) -> None:
        """Write the cache if it changed (atomic per file, keys last)."""
        with self._lock:
            if not self._dirty:
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            token = uuid.uuid4().hex[:8]
            keys = np.array(sorted(self._rows, key=self._rows.__getitem__), dtype=str)
            tmp_v = self.folder / f".vectors-{token}.npy"
            tmp_k = self.folder / f".keys-{token}.npy"
            np.save(tmp_v, self._vectors)
            np.save(tmp_k, keys)
            os.replace(tmp_v, self.folder / "vectors.npy")
            os.replace(tmp_k, self.folder / "keys.npy")
            self._dirty = False
