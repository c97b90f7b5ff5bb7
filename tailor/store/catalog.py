"""Catalog data functions: upsert, read, fingerprint and delete products. The caller owns the
session (``with session_scope(factory) as s: upsert_products(s, records)``).

Products arrive as :class:`ProductRecord` (plain data, no session) and are matched by ``sku``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, event, func, insert, select, update
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from tailor.store.models import CatalogState, Event, Product, Review, utcnow

__all__ = [
    "DISTINCT_COLUMNS",
    "ProductCache",
    "ProductRecord",
    "ReviewRecord",
    "UpsertCounts",
    "catalog_fingerprint",
    "catalog_version",
    "count_products",
    "delete_products",
    "distinct_values",
    "get_product",
    "get_products",
    "product_hashes",
    "upsert_products",
]

#: Columns :func:`distinct_values` accepts.
DISTINCT_COLUMNS: tuple[str, ...] = ("brand", "category", "colour", "currency", "material")

#: Rows per ``IN (...)`` clause; well under every backend's bound-parameter limit.
_CHUNK = 500


@dataclass
class ReviewRecord:
    """One review as plain data."""

    rating: int
    text: str = ""
    author: str | None = None
    created_at: datetime | None = None


@dataclass
class ProductRecord:
    """A product as plain data, ready for :func:`upsert_products` (matched by ``sku``)."""

    sku: str
    title: str
    category: str
    price: float
    description: str = ""
    brand: str | None = None
    currency: str = "USD"
    colour: str | None = None
    material: str | None = None
    sizes: list[str] = field(default_factory=list)
    rating: float | None = None
    review_count: int = 0
    stock: int = 0
    tags: list[str] = field(default_factory=list)
    image_url: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    source: str = "manual"
    reviews: list[ReviewRecord] = field(default_factory=list)


#: The Product columns a record sets (everything but ``sku`` and ``reviews``).
_RECORD_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(ProductRecord) if f.name not in ("sku", "reviews")
)


@dataclass
class UpsertCounts:
    """What :func:`upsert_products` did.

    ``updated`` counts existing products whose stored fields or reviews changed, ``unchanged``
    existing products left as they were; ``reviews`` counts review rows written.
    ``ids`` maps each sku to its product id.
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    reviews: int = 0
    ids: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def total(self) -> int:
        """Products seen (inserted + updated + unchanged)."""
        return self.inserted + self.updated + self.unchanged

    def add(self, other: UpsertCounts) -> None:
        """Accumulate another batch's counts into this one."""
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.reviews += other.reviews
        self.ids.update(other.ids)


def _as_record(record: ProductRecord | Mapping[str, Any]) -> ProductRecord:
    if isinstance(record, ProductRecord):
        return record
    if isinstance(record, Mapping):
        data = dict(record)
        valid = {f.name for f in fields(ProductRecord)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ValueError(
                f"Unknown product field(s) {unknown}; valid fields are {sorted(valid)}"
            )
        reviews = [
            r if isinstance(r, ReviewRecord) else ReviewRecord(**r)
            for r in data.pop("reviews", None) or []
        ]
        return ProductRecord(**data, reviews=reviews)
    raise TypeError(f"Expected a ProductRecord or a mapping, got {type(record).__name__}")


def _naive_utc(value: datetime | None) -> datetime | None:
    """Datetimes compare equal whether or not the backend kept the timezone (SQLite drops it)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _review_key(rating: int, text: str, author: str | None, created: datetime | None) -> tuple:
    return (int(rating), text or "", author, _naive_utc(created))


def _values(record: ProductRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in _RECORD_FIELDS}
    values["sizes"] = list(values["sizes"] or [])
    values["tags"] = list(values["tags"] or [])
    values["attributes"] = dict(values["attributes"] or {})
    values["price"] = round(float(values["price"]), 2)
    return values


def upsert_products(
    session: Session,
    records: Iterable[ProductRecord | Mapping[str, Any]],
    replace_reviews: bool = True,
) -> UpsertCounts:
    """Insert new products and update existing ones (matched by ``sku``); refresh hashes.

    With ``replace_reviews`` (the default) each product's reviews become exactly the record's
    reviews (rewritten only when they differ); with ``False`` stored reviews are kept and the
    record's reviews are ignored. Later duplicates of a sku in ``records`` win. Flushes, so
    the returned ``ids`` are real; committing is the caller's job.
    """
    batch: dict[str, ProductRecord] = {}
    for raw in records:
        rec = _as_record(raw)
        batch[rec.sku] = rec
    counts = UpsertCounts()
    if not batch:
        return counts

    skus = list(batch)
    existing: dict[str, Product] = {}
    for start in range(0, len(skus), _CHUNK):
        chunk = skus[start : start + _CHUNK]
        for product in session.scalars(select(Product).where(Product.sku.in_(chunk))):
            existing[product.sku] = product

    old_reviews: dict[int, list[tuple]] = {}
    if replace_reviews and existing:
        ids = [p.id for p in existing.values()]
        for start in range(0, len(ids), _CHUNK):
            stored = session.execute(
                select(
                    Review.product_id, Review.rating, Review.text, Review.author, Review.created_at
                )
                .where(Review.product_id.in_(ids[start : start + _CHUNK]))
                .order_by(Review.product_id, Review.id)
            )
            for pid, rating, text, author, created in stored:
                old_reviews.setdefault(pid, []).append(_review_key(rating, text, author, created))

    new_products: list[Product] = []
    changed_reviews: list[Product] = []
    for sku, rec in batch.items():
        values = _values(rec)
        found = existing.get(sku)
        if found is None:
            fresh = Product(sku=sku, **values)
            fresh.refresh_hash()
            new_products.append(fresh)
            continue
        product = found
        changed = False
        for name, value in values.items():
            if getattr(product, name) != value:
                setattr(product, name, value)
                changed = True
        before = product.content_hash
        product.refresh_hash()
        if changed and product.content_hash == before:
            product.updated_at = utcnow()
        if replace_reviews:
            wanted = [_review_key(r.rating, r.text, r.author, r.created_at) for r in rec.reviews]
            if wanted != old_reviews.get(product.id, []):
                changed_reviews.append(product)
                changed = True
        if changed:
            counts.updated += 1
        else:
            counts.unchanged += 1

    session.add_all(new_products)
    session.flush()
    counts.inserted = len(new_products)

    if changed_reviews:
        ids = [p.id for p in changed_reviews]
        for start in range(0, len(ids), _CHUNK):
            session.execute(
                delete(Review).where(Review.product_id.in_(ids[start : start + _CHUNK])),
                execution_options={"synchronize_session": False},
            )
        for product in changed_reviews:
            session.expire(product, ["reviews"])

    rows: list[dict[str, Any]] = []
    if replace_reviews:
        for product in [*new_products, *changed_reviews]:
            for r in batch[product.sku].reviews:
                rows.append(
                    {
                        "product_id": product.id,
                        "rating": int(r.rating),
                        "text": r.text or "",
                        "author": r.author,
                        "created_at": r.created_at or utcnow(),
                    }
                )
    if rows:
        session.execute(insert(Review), rows)
    counts.reviews = len(rows)
    counts.ids = {p.sku: p.id for p in (*existing.values(), *new_products)}
    return counts


def get_products(session: Session, ids: Sequence[int]) -> list[Product]:
    """The products with these ids, in the order given; missing ids are skipped."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    found: dict[int, Product] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        for product in session.scalars(select(Product).where(Product.id.in_(chunk))):
            found[product.id] = product
    return [found[int(i)] for i in ids if int(i) in found]


def get_product(session: Session, product_id: int) -> Product | None:
    """One product by id, or ``None``."""
    return session.get(Product, int(product_id))


def count_products(session: Session) -> int:
    """How many products the catalog holds."""
    return int(session.scalar(select(func.count()).select_from(Product)) or 0)


def product_hashes(session: Session) -> dict[int, str]:
    """``{product id: content hash}``; rows with an empty stored hash get one computed."""
    rows = session.execute(select(Product.id, Product.content_hash)).all()
    out = {int(pid): h for pid, h in rows if h}
    missing = [int(pid) for pid, h in rows if not h]
    for start in range(0, len(missing), _CHUNK):
        chunk = missing[start : start + _CHUNK]
        for product in session.scalars(select(Product).where(Product.id.in_(chunk))):
            out[product.id] = product.compute_hash()
    return out


def catalog_fingerprint(session: Session) -> str:
    """SHA-1 over the sorted ``(id, content_hash)`` pairs; the same formula as the search index
    manifest. An empty catalog gives SHA-1 of nothing (``da39a3ee…``)."""
    return fingerprint_of(product_hashes(session))


def fingerprint_of(hashes: dict[int, str]) -> str:
    """The fingerprint of ``{product id: content hash}`` (see :func:`catalog_fingerprint`)."""
    digest = hashlib.sha1()
    for pid in sorted(hashes):
        digest.update(f"{pid}:{hashes[pid]}\n".encode())
    return digest.hexdigest()


def distinct_values(session: Session, column_name: str) -> list[str]:
    """Sorted distinct non-empty values of one product column (see :data:`DISTINCT_COLUMNS`)."""
    if column_name not in DISTINCT_COLUMNS:
        raise ValueError(
            f"Cannot list distinct values of {column_name!r}; valid columns are "
            f"{', '.join(DISTINCT_COLUMNS)}"
        )
    column = getattr(Product, column_name)
    rows = session.scalars(select(column).where(column.is_not(None)).distinct())
    return sorted({str(v) for v in rows if str(v).strip()})


def delete_products(session: Session, ids: Iterable[int]) -> int:
    """Delete products (and their reviews; events keep their row with no product); returns how
    many products were deleted."""
    wanted = sorted({int(i) for i in ids})
    deleted = 0
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        session.execute(
            delete(Review).where(Review.product_id.in_(chunk)),
            execution_options={"synchronize_session": False},
        )
        session.execute(
            update(Event).where(Event.product_id.in_(chunk)).values(product_id=None),
            execution_options={"synchronize_session": False},
        )
        result = session.execute(
            delete(Product).where(Product.id.in_(chunk)),
            execution_options={"synchronize_session": "fetch"},
        )
        deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return deleted


# ---------------------------------------------------------------- catalog version
def _bump_catalog_version(session: Session) -> None:
    """Count one more change of the catalog in ``session``'s transaction (the row is made
    on first use)."""
    if session.info.get("_catalog_bumped"):
        return  # once per transaction is enough: readers compare, they do not count
    session.info["_catalog_bumped"] = True
    done = session.execute(
        update(CatalogState).where(CatalogState.id == 1).values(version=CatalogState.version + 1),
        execution_options={"synchronize_session": False},
    )
    if not getattr(done, "rowcount", 0):
        session.execute(insert(CatalogState).values(id=1, version=1))


@event.listens_for(Session, "before_flush")
def _products_flushed(session: Session, _ctx: UOWTransaction, _instances: object) -> None:
    if any(isinstance(o, Product) for o in (*session.new, *session.dirty, *session.deleted)):
        _bump_catalog_version(session)


@event.listens_for(Session, "do_orm_execute")
def _products_written(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and mapper.class_ is Product:
        _bump_catalog_version(state.session)


@event.listens_for(Session, "after_transaction_end")
def _transaction_ended(session: Session, _transaction: object) -> None:
    session.info.pop("_catalog_bumped", None)


_VERSION = select(CatalogState.__table__.c.version).where(CatalogState.__table__.c.id == 1)


def catalog_version(session: Session) -> int:
    """A number that changes whenever a transaction that wrote products commits (0 for a
    catalog never written since the counter exists). Read without flushing ``session``:
    its own unflushed product changes are not counted yet."""
    # a Core query on the session's connection: every turn reads it, and the ORM's
    # statement handling cost twice the query
    return int(session.connection().execute(_VERSION).scalar() or 0)


class ProductCache:
    """Products by id, kept in memory while the catalog does not change.

    A turn ranks about fifty candidate products; loading them through the ORM was a third
    of its CPU. Every :meth:`get` first reads :func:`catalog_version` (one primary-key
    lookup) and drops everything when it moved, so an import, a price or stock change or a
    deletion shows in the next turn, from any process that wrote it through
    :mod:`tailor.store`. Products are returned detached, with their columns loaded (not their
    reviews); at most ``max_items`` are kept (least recently used go first).
    """

    def __init__(self, session_factory: Callable[[], Session], max_items: int = 20_000) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        self._factory = session_factory
        self.max_items = max_items
        self._items: OrderedDict[int, Product] = OrderedDict()
        self._version: int | None = None
        self._lock = threading.Lock()
        #: Products served from memory and read from the database (for tests, benchmarks).
        self.hits = 0
        self.misses = 0

    def get(self, ids: Sequence[int]) -> list[Product]:
        """The products with these ids, in the order given; missing ids are skipped (as
        :func:`get_products`)."""
        wanted = [int(i) for i in ids]
        with self._factory() as session:
            version = catalog_version(session)
            with self._lock:
                self._follow(version)
                found = {i: self._items[i] for i in dict.fromkeys(wanted) if i in self._items}
                for i in found:
                    self._items.move_to_end(i)
            todo = [i for i in dict.fromkeys(wanted) if i not in found]
            fresh = self._detached(session, get_products(session, todo) if todo else [])
        with self._lock:
            self.hits += len(found)
            self.misses += len(todo)
            self._keep(version, fresh)
        found.update((p.id, p) for p in fresh)
        return [found[i] for i in wanted if i in found]

    def fill(self) -> int:
        """Read the whole catalog into memory when it fits (at most ``max_items`` products),
        so that no turn reads its candidates from the database; returns how many products
        were read (0 for a catalog too large, which keeps filling turn by turn).

        For start-up: a shopper's first request for something new ranked about fifty
        products the cache had not seen, and reading them took 1.5 ms of the recommendation
        against 0.4 ms from memory (the demo catalog, in process). After a
        catalog change the cache empties and fills again turn by turn, as without this."""
        with self._factory() as session:
            version = catalog_version(session)
            if count_products(session) > self.max_items:
                return 0
            with self._lock:
                self._follow(version)
            fresh = self._detached(
                session, list(session.scalars(select(Product).order_by(Product.id)))
            )
        with self._lock:
            self._keep(version, fresh)
        return len(fresh)

    @staticmethod
    def _detached(session: Session, products: list[Product]) -> list[Product]:
        # detached with every column loaded: nothing is read from them after the session
        for product in products:
            session.expunge(product)
        return products

    def _follow(self, version: int) -> None:
        """Drop everything when the catalog's version moved (call with the lock held)."""
        if version != self._version:
            self._items.clear()
            self._version = version

    def _keep(self, version: int, fresh: list[Product]) -> None:
        """Keep products read at ``version`` unless it moved meanwhile, within the bound
        (call with the lock held)."""
        if self._version == version:
            for product in fresh:
                self._items[product.id] = product
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every product (the next :meth:`get` reads them again)."""
        with self._lock:
            self._items.clear()
            self._version = None
