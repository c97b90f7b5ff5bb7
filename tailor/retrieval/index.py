"""Vector indexes behind one interface, built by :func:`create_index`.

Every backend stores unit vectors under external ``int64`` ids (product ids) and answers
inner-product top-k queries, optionally restricted to an ``allowed`` set of ids.

Guarantee, for every backend: a result never contains an id outside ``allowed``, and when at
least ``k`` allowed ids are in the index exactly ``k`` come back. Missing slots (fewer than
``k`` candidates) are padded with id ``-1`` and score ``-inf``.

Backends: "flat" (exact), "ivf" (inverted lists with a selectivity-aware plan; the choice
at scale) and "hnsw"; :func:`choose_index_kind` is the size rule behind
``index_backend="auto"``.

A new backend (a sharded index, a vector database) subclasses :class:`VectorIndex`, implements
the abstract methods and registers itself with :func:`register_index`.
"""

from __future__ import annotations

import abc
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

_log = logging.getLogger(__name__)

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
    """Create an empty index of backend ``kind`` ("flat", "ivf" or "hnsw") for ``dim``-d
    vectors.

    ``options`` are passed to the backend (e.g. ``ef_search=128`` for "hnsw", ``nprobe=16``
    for "ivf"). For ``index_backend="auto"`` resolve the kind first with
    :func:`resolve_index_kind`.
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

    @property
    def facet(self) -> str | None:
        """Name of the metadata column partitioning the index (``None``: not partitioned);
        callers pass that column's codes as ``facets`` to :meth:`add` and :meth:`upsert`."""
        return None

    # ------------------------------------------------------------------ mutation
    def add(self, ids: Any, vectors: Any, facets: Any = None) -> None:
        """Add new vectors; an id already present raises ``ValueError`` (use :meth:`upsert`).

        ``facets`` optionally gives each vector's code in the index's partition facet (an
        ``int`` per vector, ``-1`` for none; see :attr:`facet`): an index partitioned by a
        facet scans only the matching part of its lists for filters on that facet. Backends
        without a partition ignore it.
        """
        ids_, vecs = self._check_batch(ids, vectors)
        facets_ = self._check_facets(facets, ids_.size)
        if ids_.size == 0:
            return
        present = ids_[np.isin(ids_, self.ids())]
        if present.size:
            shown = present[:10].tolist()
            raise ValueError(
                f"ids already in the index: {shown}{' ...' if present.size > 10 else ''}; "
                "use upsert() to replace vectors"
            )
        self._add(ids_, vecs, facets_)

    def upsert(self, ids: Any, vectors: Any, facets: Any = None) -> None:
        """Add vectors, replacing those of ids already present (``facets`` as in :meth:`add`)."""
        ids_, vecs = self._check_batch(ids, vectors)
        facets_ = self._check_facets(facets, ids_.size)
        if ids_.size == 0:
            return
        self._remove(ids_[np.isin(ids_, self.ids())])
        self._add(ids_, vecs, facets_)
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
        allowed_: Any = None
        if allowed is not None:
            ids_ = self._as_ids(allowed)
            early = self._search_broad(q, k, ids_)
            if early is not None:
                return early
            allowed_, count = self._prepare_allowed(ids_)
            if count == 0:
                return scores, labels
            if count == len(self):
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
    def _search_broad(
        self, queries: np.ndarray, k: int, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """A backend's shortcut for a filter allowing ``allowed`` ids, tried before the ids
        are turned into rows; ``None`` to take the regular filtered search. The answer must
        be what :meth:`search` returns (``-1`` / ``-inf`` padded to ``k``)."""
        return None

    @abc.abstractmethod
    def _add(self, ids: np.ndarray, vectors: np.ndarray, facets: np.ndarray | None = None) -> None:
        """Add vectors whose ids are known to be new and unique (``facets``: validated
        partition codes or ``None``)."""

    @abc.abstractmethod
    def _remove(self, ids: np.ndarray) -> int:
        """Remove ids known to be present and unique; return the count."""

    @abc.abstractmethod
    def _reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """Vectors of ids known to be present."""

    def _prepare_allowed(self, allowed: np.ndarray) -> tuple[Any, int]:
        """Translate validated ``allowed`` ids into what :meth:`_search` takes, and count the
        distinct allowed ids present in the index.

        The default gives the sorted unique present ids; backends keyed by internal rows
        override it with something cheaper than sorting at scale (see :class:`_RowSubset`).
        """
        allowed_ = np.unique(allowed)
        allowed_ = allowed_[np.isin(allowed_, self.ids())]
        return allowed_, int(allowed_.size)

    @abc.abstractmethod
    def _search(self, queries: np.ndarray, k: int, allowed: Any) -> tuple[np.ndarray, np.ndarray]:
        """Search with validated input; ``allowed`` is ``None`` (every id) or what
        :meth:`_prepare_allowed` returned for a non-empty, proper subset (by default a sorted
        array of present ids). Returns arrays of shape ``(q, k')`` with ``k' <= k``; ``-1``
        marks gaps."""

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

    @staticmethod
    def _check_facets(facets: Any, n: int) -> np.ndarray | None:
        if facets is None:
            return None
        arr = np.asarray(facets)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.shape != (n,):
            raise ValueError(f"facets must have shape ({n},), got {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"facets must be integer codes, got dtype {arr.dtype}")
        return np.where(arr < 0, -1, arr).astype(np.int64)

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


def _exact_scan(
    queries: np.ndarray, vectors: np.ndarray, labels: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exact_topk` with FAISS's kernels: for a few queries they score row by row on the
    calling thread, where numpy's BLAS matrix product wakes its thread pool (10-50 ms tails
    when the cores are busy, measured with scripts/bench_index.py)."""
    nq = queries.shape[0]
    kk = min(k, vectors.shape[0])
    if kk == 0:
        return np.zeros((nq, 0), np.float32), np.zeros((nq, 0), np.int64)
    faiss = _faiss()
    d, pos = faiss.knn(queries, vectors, kk, metric=faiss.METRIC_INNER_PRODUCT)
    return d, np.where(pos >= 0, labels[np.maximum(pos, 0)], -1)


@register_index("flat")
class FlatIndex(VectorIndex):
    """Exact search: ``IndexIDMap2`` over ``IndexFlatIP``.

    A filtered search scans the inner ``IndexFlatIP`` by row with an ``IDSelectorBitmap`` of
    the allowed rows, then maps rows to ids. Through ``IndexIDMap2`` with an
    ``IDSelectorBatch`` of the allowed ids, FAISS builds a hash set of the ids and translates
    every row to its id before looking it up. Measured on the demo catalog (10,000 products,
    one query): 3.0 -> 0.9 ms allowing 4,800 products, 4.2 -> 1.3 ms allowing 9,200.
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        faiss = _faiss()
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self._dim))
        self._row_map: tuple[np.ndarray, _RowLookup] | None = None

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        """The stored ids (insertion order, shifted by removals)."""
        return _faiss().vector_to_array(self._index.id_map).astype(np.int64, copy=False)

    def _rows_of(self) -> tuple[np.ndarray, _RowLookup]:
        """The id of each row and the id -> row lookup, built after each change."""
        if self._row_map is None:
            labels = self.ids()
            lookup = _RowLookup()
            lookup.assign(labels, np.arange(labels.size, dtype=np.int64))
            self._row_map = (labels, lookup)
        return self._row_map

    def _add(self, ids: np.ndarray, vectors: np.ndarray, facets: np.ndarray | None = None) -> None:
        self._row_map = None
        self._index.add_with_ids(vectors, ids)

    def _remove(self, ids: np.ndarray) -> int:
        if ids.size == 0:
            return 0
        self._row_map = None  # removal moves the rows after each removed one
        return int(self._index.remove_ids(_faiss().IDSelectorBatch(ids)))

    def _reconstruct(self, ids: np.ndarray) -> np.ndarray:
        return self._index.reconstruct_batch(ids)

    def _prepare_allowed(self, allowed: np.ndarray) -> tuple[_RowSubset, int]:
        return _RowSubset.of(self._rows_of()[1], allowed, len(self))

    def _search(
        self, queries: np.ndarray, k: int, allowed: _RowSubset | None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        if allowed is None:
            return self._index.search(queries, min(k, len(self)))
        labels = self._rows_of()[0]
        params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(allowed.bitmap))
        inner = faiss.downcast_index(self._index.index)
        d, rows = inner.search(queries, min(k, allowed.count), params=params)
        return d, np.where(rows >= 0, labels[np.maximum(rows, 0)], -1)

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


class _RowLookup:
    """External id -> internal row, vectorised both ways of use (mutations and filters).

    A dense ``int64`` table indexed by id while ids stay small (product ids are usually
    sequential): turning 300k allowed ids into rows is then one gather (~1 ms at 1M rows),
    where ``np.isin``/``np.unique`` cost 60-100 ms. Ids much larger than the row count switch it
    to sorted arrays searched with ``np.searchsorted``.
    """

    _SLACK = 1 << 20

    def __init__(self) -> None:
        # id -> row (-1: absent), dense mode; int32 halves the memory a filter's gather reads.
        self._table = np.zeros(0, dtype=np.int32)
        self._dense = True
        self._keys = np.zeros(0, dtype=np.int64)  # sorted ids, sparse mode
        self._vals = np.zeros(0, dtype=np.int64)  # their rows
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def assign(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """Map new ids (unique, non-negative, not present) to ``rows``."""
        if ids.size == 0:
            return
        if self._dense and self._table.dtype == np.int32 and int(rows.max()) >= 2**31 - 1:
            self._table = self._table.astype(np.int64)
        if self._dense:
            top = int(ids.max())
            if top >= self._table.size:
                if top > 4 * (self._count + ids.size) + self._SLACK:
                    self._to_sparse()
                else:
                    size = max(top + 1, 2 * self._table.size)
                    grown = np.full(size, -1, dtype=self._table.dtype)
                    grown[: self._table.size] = self._table
                    self._table = grown
        if self._dense:
            self._table[ids] = rows
        else:
            keys = np.concatenate([self._keys, ids])
            vals = np.concatenate([self._vals, rows])
            order = np.argsort(keys, kind="stable")
            self._keys, self._vals = keys[order], vals[order]
        self._count += int(ids.size)

    def drop(self, ids: np.ndarray) -> None:
        """Forget ids known to be present and unique."""
        if ids.size == 0:
            return
        if self._dense:
            self._table[ids] = -1
        else:
            keep = ~np.isin(self._keys, ids)
            self._keys, self._vals = self._keys[keep], self._vals[keep]
        self._count -= int(ids.size)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Rows of ``ids`` (int32 or int64), ``-1`` for ids not present."""
        if ids.size == 0:
            return np.zeros(0, dtype=np.int64)
        if self._dense:
            size = self._table.size
            if int(ids.min()) >= 0 and int(ids.max()) < size:
                return self._table[ids]
            inside = (ids >= 0) & (ids < size)
            out = np.full(ids.shape, -1, dtype=np.int64)
            out[inside] = self._table[ids[inside]]
            return out
        if self._keys.size == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._keys, ids), self._keys.size - 1)
        return np.where(self._keys[pos] == ids, self._vals[pos], -1)

    def _to_sparse(self) -> None:
        present = np.flatnonzero(self._table >= 0)
        self._keys = present.astype(np.int64)
        self._vals = self._table[present].astype(np.int64)
        self._table = np.zeros(0, dtype=np.int32)
        self._dense = False


class _RowSubset:
    """An allowed set as internal rows: ``mask`` (bool per row), ``count`` (allowed rows),
    and, computed when first needed, ``rows`` (unique, in no particular order) and
    ``bitmap`` (``mask`` packed little-endian, for FAISS's ``IDSelectorBitmap``)."""

    __slots__ = ("_bitmap", "_rows", "count", "mask")

    def __init__(self, mask: np.ndarray, count: int, rows: np.ndarray | None = None) -> None:
        self.mask = mask
        self.count = int(count)
        self._rows = rows
        self._bitmap: np.ndarray | None = None

    @property
    def rows(self) -> np.ndarray:
        if self._rows is None:
            self._rows = np.flatnonzero(self.mask)
        return self._rows

    @property
    def bitmap(self) -> np.ndarray:
        if self._bitmap is None:
            self._bitmap = np.packbits(self.mask, bitorder="little")
        return self._bitmap

    @classmethod
    def of(cls, lookup: _RowLookup, allowed: np.ndarray, n_rows: int) -> tuple[_RowSubset, int]:
        """The subset of live rows whose ids are in ``allowed``, and its size.

        At 1M rows and 300k allowed ids this is a gather and a scatter (~0.7 ms); the scatter
        takes ``intp`` indices (int32 ones cost 4x as much in numpy's fancy assignment).
        """
        rows = lookup.rows(allowed)
        if rows.size and int(rows.min()) < 0:  # unknown ids (the engine passes known ones)
            rows = rows[rows >= 0]
        rows = rows.astype(np.intp, copy=False)
        mask = np.zeros(n_rows, dtype=bool)
        mask[rows] = True
        count = int(np.count_nonzero(mask)) if rows.size else 0
        # Duplicates in ``allowed`` (count < rows.size): unique rows recomputed when needed.
        return cls(mask, count, rows if count == rows.size else None), count


class _LabelledRows:
    """Size, ids and membership of a backend that keeps ids in ``_labels`` (by internal
    row), a liveness mask ``_alive`` and an id -> row :class:`_RowLookup` ``_rows``."""

    _rows: _RowLookup
    _labels: np.ndarray
    _alive: np.ndarray

    def __len__(self) -> int:
        return len(self._rows)

    def ids(self) -> np.ndarray:
        """The live ids, in internal row order."""
        return self._labels[self._alive]

    def __contains__(self, item: object) -> bool:
        try:
            key = int(item)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return False
        return bool(self._rows.rows(np.array([key], dtype=np.int64))[0] >= 0)


@register_index("hnsw")
class HNSWIndex(_LabelledRows, VectorIndex):
    """Approximate search with ``IndexHNSWFlat`` (inner product).

    HNSW cannot delete, so vectors live under sequential internal labels mapped to external
    ids; removed or replaced vectors become tombstones, hidden through the search selector, and
    :meth:`compact` rebuilds the graph once tombstones exceed ``compact_ratio`` of the labels.

    Filtered search uses the selector with a raised ``efSearch``; small or very selective allowed
    sets (at most ``exact_threshold`` ids, or a fraction below ``min_selectivity``) are scanned
    exactly, and any query that still returns fewer than ``k`` results falls back to an exact
    scan of the allowed subset, so the interface guarantee always holds. The raised
    ``efSearch`` is about ``ef_search / selectivity``, capped at ``max_ef_search``.

    Building is slow on few cores (about 1,600 vectors/s for 384-d with the defaults on 2
    cores, so ~10 minutes per million): see :class:`IVFIndex` for large catalogs.
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
        self._rows = _RowLookup()  # external id -> live internal label

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
        return int(self._alive.size - len(self._rows))

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

    def _internal(self, ids: np.ndarray) -> np.ndarray:
        return self._rows.rows(ids)

    def _add(self, ids: np.ndarray, vectors: np.ndarray, facets: np.ndarray | None = None) -> None:
        start = int(self._index.ntotal)
        self._index.add(vectors)
        self._labels = np.concatenate([self._labels, ids])
        self._alive = np.concatenate([self._alive, np.ones(ids.size, dtype=bool)])
        self._rows.assign(ids, np.arange(start, start + ids.size, dtype=np.int64))

    def _remove(self, ids: np.ndarray) -> int:
        if ids.size == 0:
            return 0
        self._alive[self._internal(ids)] = False
        self._rows.drop(ids)
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
        self._rows = _RowLookup()
        if ids.size:
            self._add(ids, np.ascontiguousarray(vectors))

    def _reconstruct(self, ids: np.ndarray) -> np.ndarray:
        return self._index.reconstruct_batch(self._internal(ids))

    def _prepare_allowed(self, allowed: np.ndarray) -> tuple[_RowSubset, int]:
        return _RowSubset.of(self._rows, allowed, int(self._alive.size))

    def _search(
        self, queries: np.ndarray, k: int, allowed: _RowSubset | None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        total = int(self._alive.size)
        valid = self._alive if allowed is None else allowed.mask
        n_valid = len(self) if allowed is None else allowed.count
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
        return _finish(queries, kk, d, internal, valid, self._labels, self._exact)

    def _exact(
        self, queries: np.ndarray, k: int, valid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        internal = np.flatnonzero(valid)
        vectors = self._index.reconstruct_batch(internal)
        return _exact_scan(queries, vectors, self._labels[internal], k)

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
        obj._rows.assign(labels[live], live.astype(np.int64))
        return obj


def _finish(
    queries: np.ndarray,
    k: int,
    d: np.ndarray,
    internal: np.ndarray,
    valid: np.ndarray,
    labels: np.ndarray,
    exact: Callable[[np.ndarray, int, np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """Map an ANN answer over internal rows to external ids, keeping the guarantee.

    Drops (defensively) any row outside ``valid``; a query left with fewer than ``k`` results
    is answered again by ``exact`` over the valid rows.
    """
    hit = internal >= 0
    safe = np.where(hit, internal, 0)
    hit &= valid[safe]
    ext = np.where(hit, labels[safe], -1)
    d = np.where(hit, d, -np.inf).astype(np.float32)
    short = np.flatnonzero(hit.sum(axis=1) < k)
    if short.size:
        ed, ei = exact(queries[short], k, valid)
        d[short], ext[short] = ed, ei
    # Rows with dropped labels may have gaps before valid entries: re-sort each row.
    if not hit.all():
        order = np.argsort(-d, axis=1, kind="stable")
        d = np.take_along_axis(d, order, axis=1)
        ext = np.take_along_axis(ext, order, axis=1)
    return d, ext


@register_index("ivf")
class IVFIndex(_LabelledRows, VectorIndex):
    """Inverted-file index (``IndexIVFFlat``, inner product) with a selectivity-aware plan,
    optionally partitioned by a metadata facet.

    Each query takes one of three plans, so filtered search stays fast and accurate at any
    selectivity:

    * **exact subset scan** when the filter allows at most ``exact_threshold`` ids: the allowed
      vectors are gathered (through the IVF's direct map) and scored exactly;
    * **inverted lists** otherwise: the nearest lists are probed until they hold about
      ``candidate_factor * nprobe * n / nlist`` allowed vectors (what an unfiltered query
      scores, at least ``nprobe`` lists), the filter applied as a row bitmap where needed;
    * **exact fallback** for any query that still returns fewer than ``k`` results.

    **Facet partition** (``facet``, by default ``"category"``: the column nearly every
    shopper request filters on): each inverted list is split into one sub-list per facet
    value (the ``facet_slots`` most frequent values; rarer, unknown or missing values share
    sub-list 0), given by the ``facets`` codes passed to :meth:`add`/:meth:`upsert` (none
    passed: one sub-list per list, an unpartitioned IVF). Nothing is wired to a column: from
    the rows a filter allows, the index sees which sub-lists can hold them and probes only
    those (a category, category + price, a brand sold in few categories), without the bitmap
    when the filter is exactly a set of facet values. Such a scan touches only matching
    vectors, so it may probe every list (no ``max_nprobe`` cap) and an unrelated category
    stays accurate. Other filters (a price range) probe every sub-list of the nearest lists.
    The partition only steers the scan: results are right whatever codes were given (a stale
    code costs speed, never a result).

    Widening for a filter allowing a share ``s`` of what it scans (``e`` =
    ``selectivity_exponent``, 0.5; 1 is the full ``1 / s``): a broad filter over every
    sub-list (``s >= 1/4``, a price range) probes ``nprobe / s ** e`` lists; a filter within
    a few facet sub-lists but not all of them (price or brand within a category) needs
    ``s ** (1 - e)`` times the allowed candidates of an unfiltered query. Its top k are the
    best allowed among the nearest ``k / s``, which sit in far fewer than ``1 / s`` times the
    lists when the filter is independent of the query (recall@10 1.000 for a 30 % price range
    at 1M with 30 lists instead of 54). Sparse filters over every sub-list, which may sit away
    from the query, get the full target, up to ``nprobe / s`` lists (``max_nprobe``).

    Vectors live under internal row numbers (so filters become a bitmap over rows) mapped to
    external ids. Until ``train_threshold`` vectors are present nothing is trained and every
    search is exact; at that point the coarse quantizer is trained on a sample with
    ``nlist = 4 * sqrt(n)`` lists (or the ``nlist`` option) and retrained when the index grows
    past four times the size it was trained at. Removal is real (``remove_ids``); the row
    bookkeeping is compacted (and the facet sub-lists re-chosen) once dead rows exceed
    ``compact_ratio``.

    Measured at 1M 384-d clustered vectors (``scripts/bench_index.py``, see
    docs/benchmarks.md) with the category partition: see the table there for p50 per filter
    and recall@10 against an exact filtered scan.
    """

    def __init__(
        self,
        dim: int,
        nlist: int = 0,
        nprobe: int = 16,
        exact_threshold: int = 1000,
        max_nprobe: int = 1024,
        train_threshold: int = 20_000,
        compact_ratio: float = 0.5,
        seed: int = 1234,
        facet: str | None = "category",
        facet_slots: int = 255,
        candidate_factor: float = 1.0,
        selectivity_exponent: float = 0.5,
        post_filter_share: float = 0.2,
    ) -> None:
        super().__init__(dim)
        if nlist < 0 or nprobe < 1 or max_nprobe < 1 or train_threshold < 1:
            raise ValueError(
                "need nlist >= 0, nprobe >= 1, max_nprobe >= 1, train_threshold >= 1; got "
                f"nlist={nlist}, nprobe={nprobe}, max_nprobe={max_nprobe}, "
                f"train_threshold={train_threshold}"
            )
        if not 0.0 < compact_ratio <= 1.0:
            raise ValueError(f"compact_ratio must be in (0, 1], got {compact_ratio}")
        if not 0.0 <= selectivity_exponent <= 1.0:
            raise ValueError(f"selectivity_exponent must be in [0, 1], got {selectivity_exponent}")
        if facet_slots < 0 or candidate_factor <= 0:
            raise ValueError(
                f"need facet_slots >= 0 and candidate_factor > 0; got facet_slots="
                f"{facet_slots}, candidate_factor={candidate_factor}"
            )
        self.nlist_option = int(nlist)
        self.nprobe = int(nprobe)
        self.exact_threshold = int(exact_threshold)
        self.max_nprobe = int(max_nprobe)
        self.train_threshold = int(train_threshold)
        self.compact_ratio = float(compact_ratio)
        self.seed = int(seed)
        self._facet = facet or None
        self.facet_slots = int(facet_slots)
        self.candidate_factor = float(candidate_factor)
        self.selectivity_exponent = float(selectivity_exponent)
        if not 0.0 < post_filter_share <= 1.0:
            raise ValueError(f"post_filter_share must be in (0, 1], got {post_filter_share}")
        self.post_filter_share = float(post_filter_share)
        self._index: Any = None  # the IndexIVFFlat keyed by row, nlist * n_slots sub-lists
        self._trained_at = 0  # live vectors when the quantizer was trained
        self._buffer = np.zeros((0, self._dim), dtype=np.float32)  # rows, before training
        self._labels = np.zeros(0, dtype=np.int64)  # row -> external id
        self._alive = np.zeros(0, dtype=bool)  # row -> live
        self._rows = _RowLookup()  # external id -> live row
        self._facet_of_row = np.zeros(0, dtype=np.int64)  # row -> facet code (-1: none)
        # When trained: sub-list (list * n_slots + slot) of each row, live sizes.
        self._n_slots = 1
        self._slot_of_code = np.zeros(0, dtype=np.int32)  # facet code -> slot (0: shared)
        self._list_of_row = np.zeros(0, dtype=np.int32)  # row -> coarse list
        self._slot_of_row = np.zeros(0, dtype=np.int32)  # row -> facet slot
        self._sub_size = np.zeros(0, dtype=np.int64)  # sub-list -> live entries
        self._slot_live = np.zeros(1, dtype=np.int64)  # slot -> live entries
        self._list_live = np.zeros(0, dtype=np.int64)  # coarse list -> live entries
        self._centroids: np.ndarray | None = None  # copy of the quantizer's, for ordering
        #: Coarse lists probed by the last search through the lists (diagnostics).
        self.last_nprobe = 0

    def options(self) -> dict[str, Any]:
        """Constructor options (saved with the index)."""
        return {
            "nlist": self.nlist_option,
            "nprobe": self.nprobe,
            "exact_threshold": self.exact_threshold,
            "max_nprobe": self.max_nprobe,
            "train_threshold": self.train_threshold,
            "compact_ratio": self.compact_ratio,
            "seed": self.seed,
            "facet": self._facet,
            "facet_slots": self.facet_slots,
            "candidate_factor": self.candidate_factor,
            "selectivity_exponent": self.selectivity_exponent,
            "post_filter_share": self.post_filter_share,
        }

    @property
    def facet(self) -> str | None:
        """The metadata column partitioning the inverted lists, or ``None``."""
        return self._facet

    @property
    def trained(self) -> bool:
        """Whether the inverted lists exist (below ``train_threshold`` search is exact)."""
        return self._index is not None

    @property
    def nlist(self) -> int:
        """Number of (coarse) inverted lists (0 until trained)."""
        return 0 if self._index is None else int(self._index.quantizer.ntotal)

    @property
    def n_slots(self) -> int:
        """Sub-lists per inverted list: 1 + the facet values given their own (1 without a
        facet or until trained)."""
        return self._n_slots

    @staticmethod
    def default_nlist(n: int) -> int:
        """``4 * sqrt(n)`` lists, at most ``n / 39`` (FAISS wants 39 training points a list)."""
        return int(max(1, min(round(4 * np.sqrt(max(n, 1))), n // 39)))

    # ------------------------------------------------------------------ storage
    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        if rows.size == 0:
            return np.zeros((0, self._dim), dtype=np.float32)
        if self._index is None:
            return self._buffer[rows]
        return self._index.reconstruct_batch(rows.astype(np.int64, copy=False))

    def _slots_of(self, codes: np.ndarray) -> np.ndarray:
        table = self._slot_of_code
        inside = (codes >= 0) & (codes < table.size)
        return np.where(inside, table[np.where(inside, codes, 0)] if table.size else 0, 0).astype(
            np.int32
        )

    def _add(self, ids: np.ndarray, vectors: np.ndarray, facets: np.ndarray | None = None) -> None:
        start = int(self._labels.size)
        rows = np.arange(start, start + ids.size, dtype=np.int64)
        codes = np.full(ids.size, -1, np.int64) if facets is None or not self._facet else facets
        self._labels = np.concatenate([self._labels, ids])
        self._alive = np.concatenate([self._alive, np.ones(ids.size, dtype=bool)])
        self._facet_of_row = np.concatenate([self._facet_of_row, codes])
        self._rows.assign(ids, rows)
        if self._index is not None:
            self._insert(rows, vectors, codes)
            if len(self) >= 4 * self._trained_at:
                self._rebuild(retrain=True)
            return
        if self._buffer.shape[0] < self._labels.size:  # amortised growth of the row buffer
            grown = np.empty(
                (max(self._labels.size, 2 * self._buffer.shape[0]), self._dim), np.float32
            )
            grown[: self._buffer.shape[0]] = self._buffer
            self._buffer = grown
        self._buffer[rows] = vectors
        if len(self) >= self.train_threshold:
            self._rebuild(retrain=True)

    def _insert(self, rows: np.ndarray, vectors: np.ndarray, codes: np.ndarray) -> None:
        """Put new rows (appended at the end) into their sub-lists of the trained index."""
        faiss = _faiss()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        _, assigned = self._index.quantizer.search(vectors, 1)
        lists = assigned[:, 0].astype(np.int32)
        slots = self._slots_of(codes)
        keys = np.ascontiguousarray(lists.astype(np.int64) * self._n_slots + slots)
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        self._index.add_core(
            int(rows.size), faiss.swig_ptr(vectors), faiss.swig_ptr(rows), faiss.swig_ptr(keys)
        )
        self._list_of_row = np.concatenate([self._list_of_row, lists])
        self._slot_of_row = np.concatenate([self._slot_of_row, slots])
        self._sub_size += np.bincount(keys, minlength=self._sub_size.size)
        self._slot_live += np.bincount(slots, minlength=self._n_slots)
        self._list_live += np.bincount(lists, minlength=self._list_live.size)

    def _remove(self, ids: np.ndarray) -> int:
        if ids.size == 0:
            return 0
        rows = self._rows.rows(ids).astype(np.int64)
        self._alive[rows] = False
        self._rows.drop(ids)
        if self._index is not None:
            self._index.remove_ids(_faiss().IDSelectorArray(rows))
            slots = self._slot_of_row[rows]
            keys = self._list_of_row[rows].astype(np.int64) * self._n_slots + slots
            self._sub_size -= np.bincount(keys, minlength=self._sub_size.size)
            self._slot_live -= np.bincount(slots, minlength=self._n_slots)
            lists = self._list_of_row[rows]
            self._list_live -= np.bincount(lists, minlength=self._list_live.size)
        return int(ids.size)

    def _after_mutation(self) -> None:
        dead = int(self._alive.size) - len(self)
        if self._alive.size and dead > self.compact_ratio * self._alive.size:
            self._rebuild(retrain=False)

    def _choose_slots(self, codes: np.ndarray) -> None:
        """Give the ``facet_slots`` most frequent facet codes their own sub-list (slot 1...),
        every other code slot 0."""
        known = codes[codes >= 0]
        if not self._facet or known.size == 0 or self.facet_slots == 0:
            self._slot_of_code = np.zeros(0, dtype=np.int32)
            self._n_slots = 1
            return
        counts = np.bincount(known)
        values = np.flatnonzero(counts)
        if values.size > self.facet_slots:
            values = np.sort(values[np.argsort(-counts[values], kind="stable")][: self.facet_slots])
        table = np.zeros(counts.size, dtype=np.int32)
        table[values] = np.arange(1, values.size + 1, dtype=np.int32)
        self._slot_of_code = table
        self._n_slots = int(values.size) + 1

    def _rebuild(self, retrain: bool) -> None:
        """Renumber live rows from 0 and rebuild the lists (training a new quantizer if
        ``retrain``, or while untrained and at least ``train_threshold`` vectors exist)."""
        faiss = _faiss()
        live = np.flatnonzero(self._alive)
        vectors = np.ascontiguousarray(self._vectors(live))
        ids = self._labels[live]
        codes = self._facet_of_row[live]
        n = int(ids.size)
        quantizer = None
        if self._index is not None and not retrain:
            quantizer = faiss.clone_index(self._index.quantizer)  # the old index owns its own
        elif n >= self.train_threshold:
            quantizer = self._train(vectors)
        rows = np.arange(n, dtype=np.int64)
        self._labels = ids
        self._alive = np.ones(n, dtype=bool)
        self._facet_of_row = codes
        self._rows = _RowLookup()
        self._rows.assign(ids, rows)
        self._list_of_row = np.zeros(0, dtype=np.int32)
        self._slot_of_row = np.zeros(0, dtype=np.int32)
        if quantizer is None:
            self._index = None
            self._buffer = vectors
            return
        self._choose_slots(codes)
        self._index = self._new_ivf(quantizer)
        self._sub_size = np.zeros(int(self._index.nlist), dtype=np.int64)
        self._slot_live = np.zeros(self._n_slots, dtype=np.int64)
        self._list_live = np.zeros(int(quantizer.ntotal), dtype=np.int64)
        step = 1 << 16
        for begin in range(0, n, step):
            stop = begin + step
            self._insert(rows[begin:stop], vectors[begin:stop], codes[begin:stop])
            if n > 4 * step:
                _log.info("ivf: added %d / %d vectors", min(stop, n), n)
        self._trained_at = max(n, 1)
        self._buffer = np.zeros((0, self._dim), dtype=np.float32)

    def _new_ivf(self, quantizer: Any) -> Any:
        """An empty ``IndexIVFFlat`` over ``quantizer``'s lists, each split ``n_slots`` ways
        (entries are placed by :meth:`_insert`, never by the quantizer)."""
        faiss = _faiss()
        nlist = int(quantizer.ntotal) * self._n_slots
        index = faiss.IndexIVFFlat(quantizer, self._dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.is_trained = True
        index.referenced_objects = [quantizer]
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        self._centroids = None
        return index

    def _train(self, vectors: np.ndarray) -> Any:
        """The coarse quantizer (``IndexFlatIP`` of the k-means centroids) for ``vectors``."""
        faiss = _faiss()
        n = vectors.shape[0]
        nlist = self.nlist_option or self.default_nlist(n)
        nlist = max(1, min(nlist, n))
        rng = np.random.default_rng(self.seed)
        sample_size = min(n, 64 * nlist)
        sample = vectors[np.sort(rng.choice(n, size=sample_size, replace=False))]
        quantizer = faiss.IndexFlatIP(self._dim)
        index = faiss.IndexIVFFlat(quantizer, self._dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10
        index.cp.seed = self.seed
        index.cp.max_points_per_centroid = 64
        _log.info("ivf: training %d lists on %d of %d vectors", nlist, sample_size, n)
        index.train(np.ascontiguousarray(sample))
        return quantizer

    def _reconstruct(self, ids: np.ndarray) -> np.ndarray:
        return self._vectors(self._rows.rows(ids))

    # ------------------------------------------------------------------ search
    def _prepare_allowed(self, allowed: np.ndarray) -> tuple[_RowSubset, int]:
        return _RowSubset.of(self._rows, allowed, int(self._alive.size))

    def plan(self, n_allowed: int) -> str:
        """The plan for a query allowing ``n_allowed`` of the live ids: ``"exact"`` (subset
        scan) or ``"ivf"``."""
        if self._index is None:
            return "exact"
        if n_allowed < len(self) and n_allowed <= self.exact_threshold:
            return "exact"
        return "ivf"

    def nprobe_for(self, n_allowed: int) -> int:
        """Lists probed by a query allowing ``n_allowed`` ids when its filter is not confined
        to a few facet sub-lists and allows at least a quarter of the ids (a price range):
        ``nprobe / selectivity ** e`` (``e`` = ``selectivity_exponent``), at most
        ``max_nprobe`` (and ``nlist``). Sparser filters count their allowed vectors per list
        instead, up to ``nprobe / selectivity`` lists."""
        return self._widened(n_allowed, self.selectivity_exponent)

    def _widened(self, n_allowed: int, exponent: float) -> int:
        selectivity = min(max(n_allowed, 1) / max(len(self), 1), 1.0)
        widened = int(np.ceil(self.nprobe / selectivity**exponent - 1e-9))
        return max(1, min(max(self.nprobe, min(widened, self.max_nprobe)), self.nlist))

    def _facet_scope(self, allowed: _RowSubset) -> tuple[np.ndarray | None, bool]:
        """The facet slots holding the allowed rows (``None``: all, not worth restricting)
        and whether the filter allows every live row of those slots (then no bitmap is
        needed)."""
        if self._n_slots == 1 or 4 * allowed.count > len(self):
            return None, False
        counts = np.bincount(self._slot_of_row[allowed.rows], minlength=self._n_slots)
        slots = np.flatnonzero(counts)
        pure = bool(np.array_equal(counts[slots], self._slot_live[slots]))
        if slots.size == self._n_slots:
            return None, pure
        return slots, pure

    def _probe(self, queries: np.ndarray, allowed: _RowSubset | None) -> tuple[np.ndarray, bool]:
        """The sub-lists each query scans (``(q, w)``, ``-1`` padded) and whether the filter
        bitmap is needed.

        The nearest lists are taken until they hold ``candidate_factor * nprobe * n / nlist``
        allowed vectors (scaled as the class docstring says; at least ``nprobe`` lists).
        Broad filters over every sub-list take :meth:`nprobe_for` lists without counting;
        sparser ones stop at ``nprobe / selectivity`` lists, and every non-pure scan at
        ``max_nprobe`` lists' worth of entries. A filter confined to some facet sub-lists
        scans only those, which costs no more than their entries, so it may reach every list.
        """
        nlist, n_slots = self.nlist, self._n_slots
        nq = queries.shape[0]
        slots: np.ndarray | None = None
        pure = True
        if allowed is None:
            cap = min(self.nprobe, nlist)
            chosen = list(self._index.quantizer.search(queries, cap)[1])
        else:
            slots, pure = self._facet_scope(allowed)
            sub = self._sub_size.reshape(nlist, n_slots)
            scanned = self._list_live if slots is None else sub[:, slots].sum(axis=1)
            per_list: np.ndarray | None = scanned
            if pure:
                cap = nlist
            elif slots is not None:
                cap = nlist
                per_list = np.bincount(self._list_of_row[allowed.rows], minlength=nlist)
            elif 4 * allowed.count >= len(self):  # mild: widening is cheaper than counting
                cap, per_list = self.nprobe_for(allowed.count), None
            else:
                cap = self._widened(allowed.count, 1.0)
                per_list = np.bincount(self._list_of_row[allowed.rows], minlength=nlist)
            # An unfiltered query scores nprobe lists' entries. A filter allowing a share s
            # of the facet sub-lists it scans, independent of the query within them (a price
            # range or a brand within a category), finds its top k among the nearest k/s
            # there, packed in fewer than 1/s times the lists: its target of allowed
            # candidates is scaled by s ** (1 - e). Filters across every sub-list may be
            # concentrated away from the query (an unrelated category): no scaling.
            share = 1.0
            if slots is not None and not pure:
                share = allowed.count / max(int(scanned.sum()), 1)
            target = (
                self.candidate_factor
                * self.nprobe
                * len(self)
                / max(nlist, 1)
                * min(share, 1.0) ** (1.0 - self.selectivity_exponent)
            )
            # Bit tests cost too: at most max_nprobe average lists' entries unless pure.
            budget = None if pure else self.max_nprobe * len(self) / max(nlist, 1)
            floor = min(self.nprobe, cap)
            if per_list is None or cap <= 64:
                near = self._index.quantizer.search(queries, cap)[1]
                chosen = [
                    row[: self._lists_needed(row, floor, per_list, scanned, target, budget)]
                    for row in near
                ]
            else:
                chosen = [
                    self._nearest_until(q, cap, floor, per_list, scanned, target, budget)
                    for q in queries
                ]
        self.last_nprobe = max(int(c.size) for c in chosen)
        kept = []
        for lists in chosen:
            lists = lists[lists >= 0].astype(np.int64)
            if slots is None:
                keys = (lists[:, None] * n_slots + np.arange(n_slots)).ravel()
            else:
                keys = (lists[:, None] * n_slots + slots).ravel()
            kept.append(keys[self._sub_size[keys] > 0])
        out = np.full((nq, max(1, max(k.size for k in kept))), -1, dtype=np.int64)
        for j, keys in enumerate(kept):
            out[j, : keys.size] = keys
        return out, not pure

    @staticmethod
    def _lists_needed(
        order: np.ndarray,
        floor: int,
        per_list: np.ndarray | None,
        scanned: np.ndarray,
        target: float,
        budget: float | None,
    ) -> int:
        """How many of the lists in ``order`` (nearest first) to probe: until ``per_list``
        (allowed vectors) sums to ``target``, or ``scanned`` (entries) would pass ``budget``,
        and at least ``floor``; ``order.size`` if neither is reached."""
        safe = np.maximum(order, 0)
        needed = order.size
        if per_list is not None:
            reached = int(np.searchsorted(np.cumsum(per_list[safe]), target))
            needed = min(needed, reached + 1)
        if budget is not None:
            within = int(np.searchsorted(np.cumsum(scanned[safe]), budget, side="right"))
            needed = min(needed, max(within, floor))
        return max(needed, min(floor, order.size))

    def _nearest_until(
        self,
        query: np.ndarray,
        cap: int,
        floor: int,
        per_list: np.ndarray,
        scanned: np.ndarray,
        target: float,
        budget: float | None,
    ) -> np.ndarray:
        """The nearest lists one query probes (see :meth:`_lists_needed`), at most ``cap``.

        The centroid scores are computed on the calling thread (``fvec_inner_products_ny``,
        ~0.08 ms for 4,000 lists) and only as many nearest lists are sorted as are needed:
        FAISS's quantizer search, a heap of ``cap``, takes 0.45 ms for all 4,000 at 1M.
        """
        faiss = _faiss()
        nlist = self.nlist
        if self._centroids is None or self._centroids.shape[0] != nlist:
            centroids = self._index.quantizer.reconstruct_n(0, nlist)
            self._centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        scores = np.empty(nlist, dtype=np.float32)
        q = np.ascontiguousarray(query, dtype=np.float32)
        faiss.fvec_inner_products_ny(
            faiss.swig_ptr(scores),
            faiss.swig_ptr(q),
            faiss.swig_ptr(self._centroids),
            self._dim,
            nlist,
        )
        scores = -scores
        m = min(cap, max(64, 4 * floor))
        while True:
            top = np.argpartition(scores, m - 1)[:m] if m < nlist else np.arange(nlist)
            top = top[np.argsort(scores[top], kind="stable")]
            needed = self._lists_needed(top, floor, per_list, scanned, target, budget)
            if needed < m or m >= cap:
                return top[: min(needed, cap)]
            m = min(cap, 8 * m)

    def _scan(
        self, queries: np.ndarray, k: int, keys: np.ndarray, bitmap: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scan the sub-lists ``keys`` (per query, ``-1`` skipped), rows outside ``bitmap``
        rejected; returns FAISS's ``(distances, rows)``."""
        faiss = _faiss()
        nq = queries.shape[0]
        params = faiss.SearchParametersIVF(nprobe=int(keys.shape[1]))
        if bitmap is not None:
            params.sel = faiss.IDSelectorBitmap(bitmap)
        d = np.empty((nq, k), dtype=np.float32)
        internal = np.empty((nq, k), dtype=np.int64)
        coarse = np.zeros(keys.shape, dtype=np.float32)  # unused by IVFFlat's IP scanner
        self._index.search_preassigned_c(
            nq,
            faiss.swig_ptr(queries),
            k,
            faiss.swig_ptr(keys),
            faiss.swig_ptr(coarse),
            faiss.swig_ptr(d),
            faiss.swig_ptr(internal),
            False,
            params,
        )
        del bitmap  # kept alive through the search above
        return d, internal

    def _search(
        self, queries: np.ndarray, k: int, allowed: _RowSubset | None
    ) -> tuple[np.ndarray, np.ndarray]:
        n_valid = len(self) if allowed is None else allowed.count
        kk = min(k, n_valid)
        if self.plan(n_valid) == "exact":
            rows = np.flatnonzero(self._alive) if allowed is None else allowed.rows
            return _exact_scan(queries, self._vectors(rows), self._labels[rows], kk)
        keys, use_bitmap = self._probe(queries, allowed)
        bitmap = allowed.bitmap if use_bitmap and allowed is not None else None
        d, internal = self._scan(queries, kk, keys, bitmap)
        valid = self._alive if allowed is None else allowed.mask
        return _finish(queries, kk, d, internal, valid, self._labels, self._exact)

    def _search_broad(
        self, queries: np.ndarray, k: int, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Post-filtering for broad filters (a price range allowing 30 % of a million ids).

        Turning 300,000 ids into index rows and a bitmap costs more than the search itself.
        When the filter allows at least ``post_filter_share`` of the ids (given sorted and
        unique, as the metadata table hands them over), search without it for ``2k / share
        + 16`` results and keep the allowed ones. Exact whenever at least ``k`` survive: the
        allowed ids among the unfiltered top-``m`` are exactly those scoring above the
        ``m``-th, so the best ``k`` allowed ones are all among them (up to the unfiltered
        search's own recall). A query with fewer survivors - a filter working against the
        query - falls back to the regular plan.
        """
        n = len(self)
        if self._index is None or allowed.size < self.post_filter_share * n or allowed.size >= n:
            return None
        if allowed.size > 1 and not bool(np.all(allowed[1:] > allowed[:-1])):
            return None  # the membership test below needs sorted, unique ids
        share = allowed.size / n
        want = min(n, int(np.ceil(2 * k / share)) + 16)
        d, ext = self._search(queries, want, None)
        pos = np.minimum(np.searchsorted(allowed, ext), allowed.size - 1)
        keep = (ext >= 0) & (allowed[pos] == ext)
        if bool((keep.sum(axis=1) < k).any()):
            return None
        scores = np.empty((queries.shape[0], k), dtype=np.float32)
        labels = np.empty((queries.shape[0], k), dtype=np.int64)
        for r in range(queries.shape[0]):
            cols = np.flatnonzero(keep[r])[:k]
            scores[r], labels[r] = d[r, cols], ext[r, cols]
        return scores, labels

    def _exact(
        self, queries: np.ndarray, k: int, valid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` over the ``valid`` rows: gathered and scored when few, else every
        non-empty sub-list scanned with the bitmap (exact too, without copying the vectors)."""
        rows = np.flatnonzero(valid)
        if self._index is None or rows.size <= max(self.exact_threshold, 4 * k):
            return _exact_scan(queries, self._vectors(rows), self._labels[rows], k)
        keys = np.flatnonzero(self._sub_size > 0).astype(np.int64)
        keys = np.ascontiguousarray(np.broadcast_to(keys, (queries.shape[0], keys.size)))
        d, internal = self._scan(queries, k, keys, np.packbits(valid, bitorder="little"))
        hit = internal >= 0
        ext = np.where(hit, self._labels[np.where(hit, internal, 0)], -1)
        return np.where(hit, d, -np.inf).astype(np.float32), ext

    # ------------------------------------------------------------------ persistence
    def _save(self, directory: Path) -> None:
        live = np.flatnonzero(self._alive)
        if self._index is not None:
            _faiss().write_index(self._index, str(directory / "ivf.faiss"))
            np.savez(
                directory / "ivf_rows.npz",
                labels=self._labels,
                alive=self._alive,
                trained_at=np.int64(self._trained_at),
                facet_of_row=self._facet_of_row,
                slot_of_code=self._slot_of_code,
                list_of_row=self._list_of_row,
                slot_of_row=self._slot_of_row,
            )
        else:
            np.savez(
                directory / "ivf_rows.npz",
                labels=self._labels[live],
                alive=np.ones(live.size, dtype=bool),
                trained_at=np.int64(0),
                vectors=self._buffer[live],
                facet_of_row=self._facet_of_row[live],
            )

    @classmethod
    def _load(cls, directory: Path, dim: int, options: dict[str, Any]) -> IVFIndex:
        obj = cls(dim, **options)
        with np.load(directory / "ivf_rows.npz") as data:
            arrays = {name: data[name] for name in data.files}
        labels = arrays["labels"].astype(np.int64)
        alive = arrays["alive"].astype(bool)
        trained_at = int(arrays["trained_at"])
        facets = arrays.get("facet_of_row", np.full(labels.size, -1)).astype(np.int64)
        vectors = arrays.get("vectors")
        live = np.flatnonzero(alive)
        if facets.size != labels.size or alive.size != labels.size:
            raise ValueError(f"corrupt IVF index in {directory}: rows of different lengths")
        obj._labels = labels
        obj._alive = alive
        obj._facet_of_row = facets
        obj._rows.assign(labels[live], live.astype(np.int64))
        if vectors is not None:
            if vectors.shape != (labels.size, dim):
                raise ValueError(f"corrupt IVF index in {directory}: vectors {vectors.shape}")
            obj._buffer = np.ascontiguousarray(vectors, dtype=np.float32)
            return obj
        faiss = _faiss()
        index = faiss.read_index(str(directory / "ivf.faiss"))
        slot_of_code = arrays.get("slot_of_code", np.zeros(0)).astype(np.int32)
        n_slots = int(slot_of_code.max()) + 1 if slot_of_code.size else 1
        coarse = int(index.quantizer.ntotal)
        if index.d != dim or index.ntotal != live.size or index.nlist != coarse * n_slots:
            raise ValueError(
                f"corrupt IVF index in {directory}: dimension {index.d} (expected {dim}), "
                f"{index.ntotal} vectors, {live.size} live rows, {index.nlist} lists"
            )
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        obj._index = index
        obj._trained_at = max(trained_at, 1)
        obj._slot_of_code = slot_of_code
        obj._n_slots = n_slots
        if "list_of_row" in arrays:
            obj._list_of_row = arrays["list_of_row"].astype(np.int32)
            obj._slot_of_row = arrays["slot_of_row"].astype(np.int32)
        else:  # saved before facet partitions: one sub-list per list, read from the lists
            obj._list_of_row = obj._read_list_of_row()
            obj._slot_of_row = np.zeros(labels.size, dtype=np.int32)
        keys = obj._list_of_row[live].astype(np.int64) * n_slots + obj._slot_of_row[live]
        obj._sub_size = np.bincount(keys, minlength=int(index.nlist)).astype(np.int64)
        obj._slot_live = np.bincount(obj._slot_of_row[live], minlength=n_slots).astype(np.int64)
        obj._list_live = np.bincount(obj._list_of_row[live], minlength=coarse).astype(np.int64)
        return obj

    def _read_list_of_row(self) -> np.ndarray:
        """Which inverted list holds each row, read from the lists themselves."""
        faiss = _faiss()
        out = np.full(self._labels.size, -1, dtype=np.int32)
        invlists = self._index.invlists
        for list_no in range(int(self._index.nlist)):
            size = int(invlists.list_size(list_no))
            if size:
                out[faiss.rev_swig_ptr(invlists.get_ids(list_no), size)] = list_no
        return out


#: Below this many vectors ``"auto"`` picks the exact flat index (see :func:`choose_index_kind`).
AUTO_FLAT_MAX = 30_000


def choose_index_kind(n: int) -> str:
    """The backend ``index_backend="auto"`` uses for ``n`` vectors: ``"flat"`` or ``"ivf"``.

    Flat is exact but its query time grows linearly with ``n``; IVF stays near-constant.
    Measured with scripts/bench_index.py (384-d clustered vectors, 2 busy AMD cores,
    single-threaded top-10): flat unfiltered p50 1.9 ms at 30k, 30-40 ms at 100k and
    166-274 ms at 1M, where IVF takes 0.34 ms (recall@10 0.997) and 0.9 ms (1.000). Below
    :data:`AUTO_FLAT_MAX` (30,000: flat still within the 2 ms budget, and too few vectors to
    train IVF lists well) results stay exact, so the 10,000-product demo catalog is flat.
    """
    return "flat" if int(n) < AUTO_FLAT_MAX else "ivf"


def resolve_index_kind(backend: str, n: int) -> str:
    """``backend`` itself, or for ``"auto"`` the kind :func:`choose_index_kind` picks for
    ``n`` vectors."""
    return choose_index_kind(n) if backend == "auto" else backend
