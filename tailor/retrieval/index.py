"""Vector indexes behind one interface, built by :func:`create_index`.

Every backend stores unit vectors under external ``int64`` ids (product ids) and answers
inner-product top-k queries, optionally restricted to an ``allowed`` set of ids.

Guarantee, for every backend: a result never contains an id outside ``allowed``, and when at
least ``k`` allowed ids are in the index exactly ``k`` come back. Missing slots (fewer than
``k`` candidates) are padded with id ``-1`` and score ``-inf``.

A new backend (a sharded index, a vector database) subclasses :class:`VectorIndex`, implements
the abstract methods and registers itself with :func:`register_index`.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

#: Name of the JSON file describing a saved index (backend kind, dimension, options).
META_FILE = "vector_index.json"
_FORMAT = 1

#: Registered backends: kind -> class.
_BACKENDS: dict[str, type[VectorIndex]] = {}

_V = TypeVar("_V", bound="type[VectorIndex]")


def register_index(kind: str) -> Callable[[_V], _V]:
    """Class decorator registering a :class:`VectorIndex` subclass under ``kind``."""

    def decorate(cls: _V) -> _V:
        cls.kind = kind
        _BACKENDS[kind] = cls
        return cls

    return decorate


def index_kinds() -> tuple[str, ...]:
    """The registered backend names, sorted."""
    return tuple(sorted(_BACKENDS))


def create_index(kind: str, dim: int, **options: Any) -> VectorIndex:
    """Create an empty index of backend ``kind`` ("flat" or "hnsw") for ``dim``-d vectors.

    ``options`` are passed to the backend (e.g. ``ef_search=128`` for "hnsw").
    """
    cls = _BACKENDS.get(kind)
    if cls is None:
        raise ValueError(
            f"Unknown index backend {kind!r}; valid backends are {list(index_kinds())}"
        )
    return cls(dim, **options)


def load_index(directory: str | Path) -> VectorIndex:
    """Load an index saved with :meth:`VectorIndex.save`, whatever its backend."""
    return VectorIndex.load(directory)


class VectorIndex(abc.ABC):
    """Abstract inner-product vector index keyed by external ``int64`` ids."""

    kind: ClassVar[str] = ""

    def __init__(self, dim: int) -> None:
        if int(dim) <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self._dim = int(dim)

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """Dimension of the stored vectors."""
        return self._dim

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of (live) vectors."""

    @abc.abstractmethod
    def ids(self) -> np.ndarray:
        """The stored ids as ``int64`` (in no particular order)."""

    def __contains__(self, item: object) -> bool:
        try:
            key = int(item)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return False
        return bool(np.any(self.ids() == key))

    def options(self) -> dict[str, Any]:
        """Constructor options, saved with the index and passed back on load."""
        return {}

    # ------------------------------------------------------------------ mutation
    def add(self, ids: Any, vectors: Any) -> None:
        """Add new vectors; an id already present raises ``ValueError`` (use :meth:`upsert`)."""
        ids_, vecs = self._check_batch(ids, vectors)
        if ids_.size == 0:
            return
        present = ids_[np.isin(ids_, self.ids())]
        if present.size:
            shown = present[:10].tolist()
            raise ValueError(
                f"ids already in the index: {shown}{' ...' if present.size > 10 else ''}; "
                "use upsert() to replace vectors"
            )
        self._add(ids_, vecs)

    def upsert(self, ids: Any, vectors: Any) -> None:
        """Add vectors, replacing those of ids already present."""
        ids_, vecs = self._check_batch(ids, vectors)
        if ids_.size == 0:
            return
        self._remove(ids_[np.isin(ids_, self.ids())])
        self._add(ids_, vecs)
        self._after_mutation()

    def remove(self, ids: Any) -> int:
        """Remove ids (unknown ones are ignored); returns how many were removed."""
        ids_ = np.unique(self._as_ids(ids))
        ids_ = ids_[np.isin(ids_, self.ids())]
        if ids_.size == 0:
            return 0
        removed = self._remove(ids_)
        self._after_mutation()
        return removed

    def reconstruct(self, ids: Any) -> np.ndarray:
        """The stored vectors of ``ids``, shape ``(n, dim)``; unknown ids raise ``KeyError``."""
        ids_ = self._as_ids(ids)
        if ids_.size == 0:
            return np.zeros((0, self._dim), dtype=np.float32)
        missing = ids_[~np.isin(ids_, self.ids())]
        if missing.size:
            raise KeyError(f"ids not in the index: {missing[:10].tolist()}")
        return self._reconstruct(ids_)

    # ------------------------------------------------------------------ search
    def search(
        self, queries: Any, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner-product search.

        ``queries`` has shape ``(q, dim)`` (a single ``(dim,)`` vector is treated as ``q=1``).
        ``allowed`` restricts results to these ids (ids not in the index are ignored; an empty
        array allows nothing); ``None`` allows every id.

        Returns ``(scores, ids)``, both shaped ``(q, k)``, best first; slots without a result
        hold id ``-1`` and score ``-inf``.
        """
        q = self._as_queries(queries)
        k = int(k)
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        labels = np.full((q.shape[0], k), -1, dtype=np.int64)
        if k == 0 or q.shape[0] == 0 or len(self) == 0:
            return scores, labels
        allowed_ = None
        if allowed is not None:
            allowed_ = np.unique(self._as_ids(allowed))
            allowed_ = allowed_[np.isin(allowed_, self.ids())]
            if allowed_.size == 0:
                return scores, labels
            if allowed_.size == len(self):
                allowed_ = None
        d, i = self._search(q, k, allowed_)
        n = d.shape[1]
        found = i >= 0
        scores[:, :n] = np.where(found, d, -np.inf)
        labels[:, :n] = np.where(found, i, -1)
        return scores, labels

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        """Write the index into ``directory`` (created if needed)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self._save(path)
        meta = {"format": _FORMAT, "kind": self.kind, "dim": self._dim, "options": self.options()}
        (path / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> VectorIndex:
        """Load an index saved with :meth:`save`.

        Called on :class:`VectorIndex` it returns whichever backend was saved; called on a
        backend class it also checks that the saved kind matches.
        """
        path = Path(directory)
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"no saved vector index in {path} (missing {META_FILE})")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        kind = meta.get("kind")
        target = _BACKENDS.get(kind) if cls is VectorIndex else cls
        if target is None:
            raise ValueError(
                f"saved index in {path} has unknown backend {kind!r}; "
                f"valid backends are {list(index_kinds())}"
            )
        if target.kind != kind:
            raise ValueError(f"saved index in {path} is {kind!r}, not {target.kind!r}")
        return target._load(path, int(meta["dim"]), dict(meta.get("options") or {}))

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors whose ids are known to be new and unique."""

    @abc.abstractmethod
    def _remove(self, ids: np.ndarray) -> int:
        """Remove ids known to be present and unique; return the count."""

    @abc.abstractmethod
    def _reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """Vectors of ids known to be present."""

    @abc.abstractmethod
    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search with validated input; ``allowed`` (if given) is a non-empty sorted array of
        present ids. Returns arrays of shape ``(q, k')`` with ``k' <= k``; ``-1`` marks gaps."""

    @abc.abstractmethod
    def _save(self, directory: Path) -> None:
        """Write backend files into ``directory``."""

    @classmethod
    @abc.abstractmethod
    def _load(cls, directory: Path, dim: int, options: dict[str, Any]) -> VectorIndex:
        """Read backend files from ``directory``."""

    def _after_mutation(self) -> None:  # noqa: B027 - optional hook
        """Hook run after upsert/remove (e.g. to compact)."""

    # ------------------------------------------------------------------ validation helpers
    @staticmethod
    def _as_ids(ids: Any) -> np.ndarray:
        arr = np.asarray(ids)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1:
            raise ValueError(f"ids must be one-dimensional, got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"ids must be integers, got dtype {arr.dtype}")
        return np.ascontiguousarray(arr, dtype=np.int64)

    def _as_matrix(self, x: Any, what: str) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1) if arr.size else arr.reshape(0, self._dim)
        if arr.ndim != 2:
            raise ValueError(f"{what} must have shape (n, {self._dim}), got shape {arr.shape}")
        if arr.shape[1] != self._dim:
            raise ValueError(
                f"{what} have dimension {arr.shape[1]} but the index has dimension {self._dim}"
            )
        return np.ascontiguousarray(arr)

    def _as_queries(self, queries: Any) -> np.ndarray:
        return self._as_matrix(queries, "queries")

    def _check_batch(self, ids: Any, vectors: Any) -> tuple[np.ndarray, np.ndarray]:
        ids_ = self._as_ids(ids)
        vecs = self._as_matrix(vectors, "vectors")
        if vecs.shape[0] != ids_.shape[0]:
            raise ValueError(f"got {ids_.shape[0]} ids but {vecs.shape[0]} vectors")
        if (ids_ < 0).any():
            raise ValueError(f"ids must be non-negative, got {ids_[ids_ < 0][:10].tolist()}")
        uniq, counts = np.unique(ids_, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"duplicate ids in one batch: {uniq[counts > 1][:10].tolist()}")
        return ids_, vecs


def exact_topk(
    queries: np.ndarray, vectors: np.ndarray, ids: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-``k`` of ``queries`` over ``vectors`` (labelled ``ids``).

    Returns ``(scores, ids)`` shaped ``(q, min(k, len(ids)))``, best first.
    """
    n = vectors.shape[0]
    kk = min(k, n)
    nq = queries.shape[0]
    out_d = np.empty((nq, kk), dtype=np.float32)
    out_i = np.empty((nq, kk), dtype=np.int64)
    if kk == 0:
        return out_d, out_i
    step = max(1, (1 << 24) // max(n, 1))  # bound the (rows x n) score block to ~64 MB
    for start in range(0, nq, step):
        block = queries[start : start + step] @ vectors.T
        if kk < n:
            part = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
        else:
            part = np.broadcast_to(np.arange(n), block.shape).copy()
        part_scores = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)
        out_d[start : start + step] = np.take_along_axis(part_scores, order, axis=1)
        out_i[start : start + step] = ids[top]
    return out_d, out_i


def _faiss() -> Any:
    import faiss

    return faiss


@register_index("flat")
class FlatIndex(VectorIndex):
    """Exact search: ``IndexIDMap2`` over ``IndexFlatIP``; filters via a FAISS ``IDSelector``."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        faiss = _faiss()
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self._dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        """The stored ids (insertion order, shifted by removals)."""
        return _faiss().vector_to_array(self._index.id_map).astype(np.int64, copy=False)

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(vectors, ids)

    def _remove(self, ids: np.ndarray) -> int:
        if ids.size == 0:
            return 0
        return int(self._index.remove_ids(_faiss().IDSelectorBatch(ids)))

    def _reconstruct(self, ids: np.ndarray) -> np.ndarray:
        return self._index.reconstruct_batch(ids)

    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        if allowed is None:
            return self._index.search(queries, min(k, len(self)))
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        return self._index.search(queries, min(k, int(allowed.size)), params=params)

    def _save(self, directory: Path) -> None:
        _faiss().write_index(self._index, str(directory / "flat.faiss"))

    @classmethod
    def _load(cls, directory: Path, dim: int, options: dict[str, Any]) -> FlatIndex:
        obj = cls(dim, **options)
        index = _faiss().read_index(str(directory / "flat.faiss"))
        if index.d != dim:
            raise ValueError(f"saved flat index has dimension {index.d}, metadata says {dim}")
        obj._index = index
        return obj


@register_index("hnsw")
class HNSWIndex(VectorIndex):
    """Approximate search with ``IndexHNSWFlat`` (inner product).

    HNSW cannot delete, so vectors live under sequential internal labels mapped to external
    ids; removed or replaced vectors become tombstones, hidden through the search selector, and
    :meth:`compact` rebuilds the graph once tombstones exceed ``compact_ratio`` of the labels.

    Filtered search uses the selector with a raised ``efSearch``; small or very selective allowed
    sets (at most ``exact_threshold`` ids, or a fraction below ``min_selectivity``) are scanned
    exactly, and any query that still returns fewer than ``k`` results falls back to an exact
    scan of the allowed subset, so the interface guarantee always holds. The raised
    ``efSearch`` is about ``ef_search / selectivity``, capped at ``max_ef_search``.
    """

    def __init__(
        self,
        dim: int,
        m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        exact_threshold: int = 1024,
        min_selectivity: float = 0.02,
        compact_ratio: float = 0.25,
        max_ef_search: int = 4096,
    ) -> None:
        super().__init__(dim)
        if m < 2 or ef_construction < 1 or ef_search < 1:
            raise ValueError(
                f"need m >= 2, ef_construction >= 1, ef_search >= 1; got m={m}, "
                f"ef_construction={ef_construction}, ef_search={ef_search}"
            )
        if not 0.0 < compact_ratio <= 1.0:
            raise ValueError(f"compact_ratio must be in (0, 1], got {compact_ratio}")
        self._m = int(m)
        self._ef_construction = int(ef_construction)
        self._ef_search = int(ef_search)
        self.exact_threshold = int(exact_threshold)
        self.min_selectivity = float(min_selectivity)
        self.compact_ratio = float(compact_ratio)
        self.max_ef_search = int(max_ef_search)
        self._index = self._new_index()
        self._labels = np.zeros(0, dtype=np.int64)  # internal label -> external id
        self._alive = np.zeros(0, dtype=bool)  # internal label -> not a tombstone
        self._pos: dict[int, int] = {}  # external id -> live internal label

    def _new_index(self) -> Any:
        faiss = _faiss()
        index = faiss.IndexHNSWFlat(self._dim, self._m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self._ef_construction
        index.hnsw.efSearch = self._ef_search
        return index

    @property
    def ef_search(self) -> int:
        """Base ``efSearch`` (raised automatically for large ``k`` and filtered queries)."""
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if int(value) < 1:
            raise ValueError(f"ef_search must be >= 1, got {value}")
        self._ef_search = int(value)
        self._index.hnsw.efSearch = self._ef_search

    @property
    def tombstones(self) -> int:
        """Number of dead internal labels still in the graph."""
        return int(self._alive.size - len(self._pos))

    def options(self) -> dict[str, Any]:
        """Constructor options (saved with the index)."""
        return {
            "m": self._m,
            "ef_construction": self._ef_construction,
            "ef_search": self._ef_search,
            "exact_threshold": self.exact_threshold,
            "min_selectivity": self.min_selectivity,
            "compact_ratio": self.compact_ratio,
            "max_ef_search": self.max_ef_search,
        }

    def __len__(self) -> int:
        return len(self._pos)

    def ids(self) -> np.ndarray:
        """The live ids, in internal label order."""
        return self._labels[self._alive]

    def _internal(self, ids: np.ndarray) -> np.ndarray:
        return np.fromiter((self._pos[int(i)] for i in ids), dtype=np.int64, count=ids.size)

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        start = int(self._index.ntotal)
        self._index.add(vectors)
        self._labels = np.concatenate([self._labels, ids])
        self._alive = np.concatenate([self._alive, np.ones(ids.size, dtype=bool)])
        for offset, ext in enumerate(ids.tolist()):
            self._pos[ext] = start + offset

    def _remove(self, ids: np.ndarray) -> int:
        if ids.size == 0:
            return 0
        internal = self._internal(ids)
        self._alive[internal] = False
        for ext in ids.tolist():
            del self._pos[ext]
        return int(ids.size)

    def _after_mutation(self) -> None:
        if self._alive.size and self.tombstones > self.compact_ratio * self._alive.size:
            self.compact()

    def compact(self) -> None:
        """Rebuild the graph from the live vectors, dropping tombstones."""
        live = np.flatnonzero(self._alive)
        vectors = (
            self._index.reconstruct_batch(live)
            if live.size
            else np.zeros((0, self._dim), dtype=np.float32)
        )
        ids = self._labels[live]
        self._index = self._new_index()
        self._labels = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self._pos = {}
        if ids.size:
            self._add(ids, np.ascontiguousarray(vectors))

    def _reconstruct(self, ids: np.ndarray) -> np.ndarray:
        return self._index.reconstruct_batch(self._internal(ids))

    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        total = int(self._alive.size)
        valid = self._alive.copy()
        if allowed is not None:
            valid &= np.isin(self._labels, allowed)
        n_valid = int(valid.sum())
        kk = min(k, n_valid)
        if kk == 0:
            nq = queries.shape[0]
            return np.zeros((nq, 0), np.float32), np.zeros((nq, 0), np.int64)
        selectivity = n_valid / total
        filtered = n_valid < total
        if filtered and (n_valid <= self.exact_threshold or selectivity < self.min_selectivity):
            return self._exact(queries, kk, valid)

        ef = max(self._ef_search, kk)
        if filtered:
            ef = max(ef, int(np.ceil(ef / selectivity)))
        ef = max(min(ef, self.max_ef_search, total), kk)
        params = faiss.SearchParametersHNSW(efSearch=ef)
        if filtered:
            bitmap = np.packbits(valid, bitorder="little")
            params.sel = faiss.IDSelectorBitmap(bitmap)
        d, internal = self._index.search(queries, kk, params=params)
        hit = internal >= 0
        # Defensive: any label outside the valid set would break the guarantee; drop it.
        safe = np.where(hit, internal, 0)
        hit &= valid[safe]
        ext = np.where(hit, self._labels[safe], -1)
        d = np.where(hit, d, -np.inf).astype(np.float32)
        short = np.flatnonzero(hit.sum(axis=1) < kk)
        if short.size:
            ed, ei = self._exact(queries[short], kk, valid)
            d[short], ext[short] = ed, ei
        # Rows with dropped labels may have gaps before valid entries: re-sort each row.
        if not hit.all():
            order = np.argsort(-d, axis=1, kind="stable")
            d = np.take_along_axis(d, order, axis=1)
            ext = np.take_along_axis(ext, order, axis=1)
        return d, ext

    def _exact(
        self, queries: np.ndarray, k: int, valid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        internal = np.flatnonzero(valid)
        vectors = self._index.reconstruct_batch(internal)
        return exact_topk(queries, vectors, self._labels[internal], k)

    def _save(self, directory: Path) -> None:
        faiss = _faiss()
        faiss.write_index(self._index, str(directory / "hnsw.faiss"))
        np.savez(directory / "hnsw_labels.npz", labels=self._labels, alive=self._alive)

    @classmethod
    def _load(cls, directory: Path, dim: int, options: dict[str, Any]) -> HNSWIndex:
        obj = cls(dim, **options)
        index = _faiss().read_index(str(directory / "hnsw.faiss"))
        with np.load(directory / "hnsw_labels.npz") as data:
            labels = data["labels"].astype(np.int64)
            alive = data["alive"].astype(bool)
        if index.d != dim or index.ntotal != labels.size or alive.size != labels.size:
            raise ValueError(
                f"corrupt HNSW index in {directory}: dimension {index.d} (expected {dim}), "
                f"{index.ntotal} vectors, {labels.size} labels, {alive.size} flags"
            )
        index.hnsw.efSearch = obj._ef_search
        obj._index = index
        obj._labels = labels
        obj._alive = alive
        live = np.flatnonzero(alive)
        obj._pos = dict(zip(labels[live].tolist(), live.tolist(), strict=True))
        return obj
