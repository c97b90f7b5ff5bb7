"""Exact metadata filters: a :class:`Filter` spec and a columnar :class:`MetadataTable`.

:meth:`Filter.matches` is the plain-Python reference semantics; :meth:`MetadataTable.mask`
is the vectorised implementation used at search time and must agree with it exactly.

Semantics (all string comparisons ignore case and surrounding whitespace):

* ``categories``: category path prefixes; a product matches one if its category equals the
  prefix or starts with ``prefix + " > "`` ("Shoes" matches "Shoes > Running", not "Shoeshine").
* ``brands`` / ``colours`` / ``materials``: the product's value is one of them (a product
  without a value never matches a non-empty include list).
* ``exclude_brands`` / ``exclude_colours``: the product's value is none of them (a product
  without a value is never excluded).
* ``sizes``: the product offers at least one of them.
* ``price_min`` / ``price_max``: inclusive bounds; a product without a price fails any bound.
* ``in_stock``: when true (the default) only products with ``stock > 0``.
* ``exclude_ids``: product ids never returned.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

_TEXT_FIELDS = (
    "categories",
    "brands",
    "exclude_brands",
    "colours",
    "exclude_colours",
    "materials",
    "sizes",
)


def normalize(value: Any) -> str | None:
    """Canonical form of a text attribute: stripped and case-folded; ``None`` if empty."""
    if value is None:
        return None
    text = str(value).strip().casefold()
    return text or None


def _text_tuple(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"Filter.{name} must be a sequence of strings, got {value!r}") from None
    out: list[str] = []
    for item in items:
        if item is None:
            continue
        text = str(item).strip()
        if text and text not in out:
            out.append(text)
    return tuple(out)


def _price(name: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Filter.{name} must be a number or None, got {value!r}") from None
    if math.isnan(price):
        raise ValueError(f"Filter.{name} must not be NaN")
    return price


@dataclass(frozen=True)
class Filter:
    """Exact constraints on products; see the module docstring for the semantics.

    ``Filter()`` is not empty: it keeps ``in_stock=True``. ``Filter(in_stock=False)`` matches
    every product.
    """

    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    exclude_brands: tuple[str, ...] = ()
    colours: tuple[str, ...] = ()
    exclude_colours: tuple[str, ...] = ()
    materials: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    price_min: float | None = None
    price_max: float | None = None
    in_stock: bool = True
    exclude_ids: tuple[int, ...] = ()
    _norm: ClassVar[dict[str, frozenset[str | None]]]
    _prefixes: ClassVar[tuple[str | None, ...]]

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in _TEXT_FIELDS:
            set_(self, name, _text_tuple(name, getattr(self, name)))
        lo = _price("price_min", self.price_min)
        hi = _price("price_max", self.price_max)
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"price_min ({lo}) must not exceed price_max ({hi})")
        set_(self, "price_min", lo)
        set_(self, "price_max", hi)
        set_(self, "in_stock", bool(self.in_stock))
        ids = self.exclude_ids
        if ids is None:
            ids = ()
        elif isinstance(ids, int | np.integer):
            ids = (ids,)
        set_(self, "exclude_ids", tuple(dict.fromkeys(int(i) for i in ids)))
        # Normalised values for matches(); not dataclass fields, so eq/hash/repr ignore them.
        set_(
            self,
            "_norm",
            {name: frozenset(map(normalize, getattr(self, name))) for name in _TEXT_FIELDS},
        )
        set_(self, "_prefixes", tuple(normalize(p) for p in self.categories))

    def is_empty(self) -> bool:
        """True when the filter has no constraint at all, i.e. matches every product."""
        return not self.in_stock and all(
            getattr(self, f.name) in ((), None) for f in fields(self) if f.name != "in_stock"
        )

    def matches(self, product: Any) -> bool:
        """Reference implementation: does ``product`` (any object with the Product attributes
        ``id, category, brand, colour, material, sizes, price, stock``) satisfy the filter?"""
        if self.exclude_ids and int(product.id) in self.exclude_ids:
            return False
        if self.in_stock and not (product.stock or 0) > 0:
            return False
        if self.price_min is not None or self.price_max is not None:
            if product.price is None:
                return False
            price = float(product.price)
            if math.isnan(price):
                return False
            if self.price_min is not None and price < self.price_min:
                return False
            if self.price_max is not None and price > self.price_max:
                return False
        if self.categories:
            category = normalize(product.category)
            if category is None:
                return False
            if not any(category == p or category.startswith(f"{p} > ") for p in self._prefixes):
                return False
        norm = self._norm
        if not _included(product.brand, norm["brands"], norm["exclude_brands"]):
            return False
        if not _included(product.colour, norm["colours"], norm["exclude_colours"]):
            return False
        if not _included(product.material, norm["materials"], frozenset()):
            return False
        if self.sizes:
            have = {normalize(s) for s in (product.sizes or ())}
            if not norm["sizes"] & have:
                return False
        return True


def _included(value: Any, include: frozenset[str | None], exclude: frozenset[str | None]) -> bool:
    norm = normalize(value)
    if include and norm not in include:
        return False
    return not (exclude and norm is not None and norm in exclude)


class _Vocab:
    """Normalised string -> int code; codes are never reused (removals keep the entry)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values: list[str] = []
        self._codes: dict[str, int] = {}
        for v in values:
            self.code(v, add=True)

    def code(self, value: Any, add: bool = False) -> int:
        norm = normalize(value)
        if norm is None:
            return -1
        code = self._codes.get(norm)
        if code is None:
            if not add:
                return -1
            code = len(self.values)
            self.values.append(norm)
            self._codes[norm] = code
        return code

    def codes(self, values: Iterable[Any]) -> np.ndarray:
        found = {self.code(v) for v in values}
        found.discard(-1)
        return np.fromiter(sorted(found), dtype=np.int32, count=len(found))


def _clip_int32(value: Any) -> int:
    return max(-(2**31), min(2**31 - 1, int(value or 0)))


_COLUMNS = ("ids", "category", "brand", "colour", "material", "price", "stock")

#: Bound of :class:`MetadataTable`'s cache of filter masks (bytes; one mask is a byte per
#: product: ~300 masks of a 100k catalog, 32 of a 1M one).
MASK_CACHE_BYTES = 32 * 1024 * 1024


class MetadataTable:
    """Filterable product attributes as numpy columns aligned by row.

    Columns: ``ids`` (int64), ``category``/``brand``/``colour``/``material`` codes (int32, -1 for
    none), ``price`` (float64, NaN for none), ``stock`` (int32), and sizes as sparse
    (row, size-code) pairs. Row order carries no meaning.
    """

    def __init__(self) -> None:
        self._vocab = {name: _Vocab() for name in ("category", "brand", "colour", "material")}
        self._sizes_vocab = _Vocab()
        self.ids = np.zeros(0, dtype=np.int64)
        self.category = np.zeros(0, dtype=np.int32)
        self.brand = np.zeros(0, dtype=np.int32)
        self.colour = np.zeros(0, dtype=np.int32)
        self.material = np.zeros(0, dtype=np.int32)
        self.price = np.zeros(0, dtype=np.float64)
        self.stock = np.zeros(0, dtype=np.int32)
        self.size_rows = np.zeros(0, dtype=np.int32)
        self.size_codes = np.zeros(0, dtype=np.int32)
        # Masks of recent filters without their exclude_ids, and the rows of ``ids`` in id
        # order: a shopper's turns repeat a filter with a growing list of products already
        # seen, and one turn asks for the same filter up to three times (dense search,
        # lexical search, count). Both are dropped whenever a column changes.
        self._masks: OrderedDict[Filter, np.ndarray] = OrderedDict()
        self._mask_bytes = 0
        self._id_order: np.ndarray | None = None
        self._cache_lock = threading.Lock()

    def _changed(self) -> None:
        """Forget what was derived from the columns (after every mutation)."""
        with self._cache_lock:
            self._masks.clear()
            self._mask_bytes = 0
            self._id_order = None

    @classmethod
    def from_products(cls, products: Iterable[Any]) -> MetadataTable:
        """Build a table from Products (or any objects with the same attributes)."""
        table = cls()
        table.upsert(products)
        return table

    def __len__(self) -> int:
        return int(self.ids.size)

    def __contains__(self, product_id: object) -> bool:
        try:
            key = int(product_id)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return False
        return bool(np.any(self.ids == key))

    # ------------------------------------------------------------------ mutation
    def upsert(self, products: Iterable[Any]) -> int:
        """Add products, replacing rows of ids already present (last one wins); returns the
        number of products written."""
        latest: dict[int, Any] = {}
        for p in products:
            latest[int(p.id)] = p
        if not latest:
            return 0
        self.remove(np.fromiter(latest, dtype=np.int64, count=len(latest)))
        base = len(self)
        rows = list(latest.values())
        vocab = self._vocab
        new = {
            "ids": np.fromiter(latest, dtype=np.int64, count=len(rows)),
            "category": np.array(
                [vocab["category"].code(p.category, True) for p in rows], np.int32
            ),
            "brand": np.array([vocab["brand"].code(p.brand, True) for p in rows], np.int32),
            "colour": np.array([vocab["colour"].code(p.colour, True) for p in rows], np.int32),
            "material": np.array(
                [vocab["material"].code(p.material, True) for p in rows], np.int32
            ),
            "price": np.array(
                [np.nan if p.price is None else float(p.price) for p in rows], np.float64
            ),
            "stock": np.array([_clip_int32(p.stock) for p in rows], np.int32),
        }
        for name in _COLUMNS:
            setattr(self, name, np.concatenate([getattr(self, name), new[name]]))
        pair_rows: list[int] = []
        pair_codes: list[int] = []
        for offset, p in enumerate(rows):
            codes = {self._sizes_vocab.code(s, True) for s in (p.sizes or ())}
            codes.discard(-1)
            for code in sorted(codes):
                pair_rows.append(base + offset)
                pair_codes.append(code)
        self.size_rows = np.concatenate([self.size_rows, np.array(pair_rows, np.int32)])
        self.size_codes = np.concatenate([self.size_codes, np.array(pair_codes, np.int32)])
        self._changed()
        return len(rows)

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """Remove rows of ``ids`` (unknown ids are ignored); returns how many were removed."""
        drop = np.isin(self.ids, np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids))
        removed = int(drop.sum())
        if not removed:
            return 0
        keep = ~drop
        new_row = np.cumsum(keep, dtype=np.int64) - 1
        for name in _COLUMNS:
            setattr(self, name, getattr(self, name)[keep])
        kept_pairs = keep[self.size_rows]
        self.size_rows = new_row[self.size_rows[kept_pairs]].astype(np.int32)
        self.size_codes = self.size_codes[kept_pairs]
        self._changed()
        return removed

    # ------------------------------------------------------------------ queries
    def mask(self, flt: Filter | None) -> np.ndarray:
        """Boolean row mask of the rows matching ``flt`` (``None`` matches every row).

        The mask of the filter without its ``exclude_ids`` is cached (see ``__init__``); the
        excluded ids are then cleared by binary search. The result is the caller's to change.
        """
        n = len(self)
        if flt is None or n == 0:
            return np.ones(n, dtype=bool)
        base = replace(flt, exclude_ids=()) if flt.exclude_ids else flt
        with self._cache_lock:
            cached = self._masks.get(base)
            if cached is not None:
                self._masks.move_to_end(base)
        if cached is None:
            cached = self._compute_mask(base)
            cached.setflags(write=False)
            with self._cache_lock:
                if base not in self._masks and cached.nbytes <= MASK_CACHE_BYTES:
                    self._masks[base] = cached
                    self._mask_bytes += cached.nbytes
                    while self._mask_bytes > MASK_CACHE_BYTES:
                        _, dropped = self._masks.popitem(last=False)
                        self._mask_bytes -= dropped.nbytes
        m = cached.copy()
        if flt.exclude_ids:
            m[self._rows_of(flt.exclude_ids)] = False
        return m

    def _rows_of(self, ids: Iterable[int]) -> np.ndarray:
        """Rows holding ``ids`` (ids not in the table are skipped)."""
        with self._cache_lock:
            order = self._id_order
        if order is None:
            order = np.argsort(self.ids, kind="stable")
            with self._cache_lock:
                self._id_order = order
        want = np.fromiter(ids, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.ids, want, sorter=order), order.size - 1)
        rows = order[pos]
        return rows[self.ids[rows] == want]

    def _compute_mask(self, flt: Filter) -> np.ndarray:
        """:meth:`mask` without the cache."""
        n = len(self)
        m = np.ones(n, dtype=bool)
        if flt.exclude_ids:
            m &= ~np.isin(self.ids, np.array(flt.exclude_ids, dtype=np.int64))
        if flt.in_stock:
            m &= self.stock > 0
        if flt.price_min is not None:
            m &= self.price >= flt.price_min  # NaN compares False
        if flt.price_max is not None:
            m &= self.price <= flt.price_max
        if flt.categories:
            m &= np.isin(self.category, self._category_codes(flt.categories))
        if flt.brands:
            m &= np.isin(self.brand, self._vocab["brand"].codes(flt.brands))
        if flt.exclude_brands:
            m &= ~np.isin(self.brand, self._vocab["brand"].codes(flt.exclude_brands))
        if flt.colours:
            m &= np.isin(self.colour, self._vocab["colour"].codes(flt.colours))
        if flt.exclude_colours:
            m &= ~np.isin(self.colour, self._vocab["colour"].codes(flt.exclude_colours))
        if flt.materials:
            m &= np.isin(self.material, self._vocab["material"].codes(flt.materials))
        if flt.sizes:
            wanted = self._sizes_vocab.codes(flt.sizes)
            has = np.zeros(n, dtype=bool)
            has[self.size_rows[np.isin(self.size_codes, wanted)]] = True
            m &= has
        return m

    def allowed_ids(self, flt: Filter | None) -> np.ndarray:
        """Sorted ids (int64) of the products matching ``flt``."""
        return np.sort(self.ids[self.mask(flt)])

    def codes(self, column: str, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Codes (``int64``) of a categorical ``column`` ("category", "brand", "colour" or
        "material") for ``ids``, ``-1`` for no value or an id not in the table: the ``facets``
        a vector index partitioned by that column takes (see ``IVFIndex``)."""
        if column not in self._vocab:
            raise ValueError(
                f"not a categorical column: {column!r}; use one of {list(self._vocab)}"
            )
        want = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64)
        out = np.full(want.shape, -1, dtype=np.int64)
        if want.size == 0 or len(self) == 0:
            return out
        column_codes = getattr(self, column)
        if want.size * 64 < len(self):  # a sync's few products: one pass, no sort
            rows = np.flatnonzero(np.isin(self.ids, want))
            code_of = dict(zip(self.ids[rows].tolist(), column_codes[rows].tolist(), strict=True))
            return np.array([code_of.get(i, -1) for i in want.tolist()], dtype=np.int64)
        order = np.argsort(self.ids, kind="stable")
        pos = np.minimum(np.searchsorted(self.ids, want, sorter=order), order.size - 1)
        rows = order[pos]
        found = self.ids[rows] == want
        out[found] = column_codes[rows[found]]
        return out

    def count(self, flt: Filter | None) -> int:
        """Number of products matching ``flt``."""
        return int(self.mask(flt).sum())

    def _category_codes(self, prefixes: Iterable[str]) -> np.ndarray:
        norms = [n for n in (normalize(p) for p in prefixes) if n is not None]
        codes = [
            code
            for code, cat in enumerate(self._vocab["category"].values)
            if any(cat == p or cat.startswith(f"{p} > ") for p in norms)
        ]
        return np.array(codes, dtype=np.int32)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        """Write ``metadata.npz`` (columns) and ``metadata_vocab.json`` into ``directory``."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in _COLUMNS}
        np.savez(
            path / "metadata.npz", size_rows=self.size_rows, size_codes=self.size_codes, **arrays
        )
        vocab = {name: v.values for name, v in self._vocab.items()}
        vocab["sizes"] = self._sizes_vocab.values
        (path / "metadata_vocab.json").write_text(
            json.dumps({"format": 1, "vocab": vocab}, ensure_ascii=False), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: str | Path) -> MetadataTable:
        """Read a table written by :meth:`save`."""
        path = Path(directory)
        table = cls()
        vocab = json.loads((path / "metadata_vocab.json").read_text(encoding="utf-8"))["vocab"]
        for name in table._vocab:
            table._vocab[name] = _Vocab(vocab[name])
        table._sizes_vocab = _Vocab(vocab["sizes"])
        with np.load(path / "metadata.npz") as data:
            for name in (*_COLUMNS, "size_rows", "size_codes"):
                setattr(table, name, data[name].astype(getattr(table, name).dtype))
        n = len(table)
        if any(getattr(table, c).size != n for c in _COLUMNS) or (
            table.size_rows.size and table.size_rows.max() >= n
        ):
            raise ValueError(f"corrupt metadata table in {path}: columns of different lengths")
        return table
