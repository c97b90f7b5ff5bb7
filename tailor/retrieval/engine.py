"""Product search: embeddings + vector index + exact metadata filters, persisted and kept fresh.

Layout of ``index_dir``::

    manifest.json        format, model, dim, backend, count, catalog_fingerprint, built_at, data
    data-<token>/        one saved generation (the manifest names the live one)
        index/           the VectorIndex (see tailor.retrieval.index)
        metadata.npz, metadata_vocab.json
        hashes.npz       per-product ids, content hashes and embedding-text hashes

Saving writes a new generation and then swaps the manifest atomically, so a crash never
leaves a half-written index behind; one writer per ``index_dir`` is assumed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from tailor.config import Settings
from tailor.retrieval.cache import VectorCache
from tailor.retrieval.embed import Embedder
from tailor.retrieval.filters import Filter, MetadataTable
from tailor.retrieval.index import VectorIndex, create_index, index_kinds, resolve_index_kind
from tailor.retrieval.text import product_text, text_hash
from tailor.runtime.batching import MicroBatcher
from tailor.store.catalog import fingerprint_of, product_hashes
from tailor.store.models import Product

logger = logging.getLogger(__name__)

#: Version of the on-disk layout; a different version forces a rebuild.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_ID_CHUNK = 500  # ids per ``IN (...)`` query

SessionFactory = Callable[[], Session]


@dataclass(frozen=True)
class Hit:
    """One search result: a product id and its cosine similarity to the query."""

    product_id: int
    score: float


@dataclass(frozen=True)
class SyncReport:
    """What an update did: products added, updated and removed, and vectors computed."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    embedded: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        """Whether anything changed."""
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        """Short form, e.g. ``"+3 ~1 -0"``."""
        return f"+{self.added} ~{self.updated} -{self.removed}"


@dataclass(frozen=True)
class _Item:
    """A detached snapshot of what the index needs from one product."""

    id: int
    category: str | None
    brand: str | None
    colour: str | None
    material: str | None
    sizes: tuple[str, ...]
    price: float | None
    stock: int
    text: str
    content_hash: str
    text_hash: str

    @classmethod
    def of(cls, product: Any) -> _Item:
        text = product_text(product)
        content = getattr(product, "content_hash", "") or ""
        if not content and hasattr(product, "compute_hash"):
            content = product.compute_hash()
        return cls(
            id=int(product.id),
            category=product.category,
            brand=product.brand,
            colour=product.colour,
            material=product.material,
            sizes=tuple(product.sizes or ()),
            price=None if product.price is None else float(product.price),
            stock=int(product.stock or 0),
            text=text,
            content_hash=content,
            text_hash=text_hash(text),
        )


def _fingerprint(hashes: dict[int, str]) -> str:
    """SHA-1 over the sorted ``(id, content_hash)`` pairs: the store's catalog fingerprint."""
    return fingerprint_of(hashes)


def _catalog_hashes(session_factory: SessionFactory) -> dict[int, str]:
    """``{product id: content hash}`` of the catalog, as the store computes it."""
    with session_factory() as session:
        return product_hashes(session)


def _read_items(session_factory: SessionFactory, ids: Sequence[int] | None) -> list[_Item]:
    """Snapshots of the products ``ids`` (all products when ``None``), ordered by id."""
    items: list[_Item] = []
    with session_factory() as session:
        if ids is None:
            stmt = select(Product).order_by(Product.id).execution_options(yield_per=1000)
            items.extend(_Item.of(p) for p in session.scalars(stmt))
        else:
            wanted = sorted(set(int(i) for i in ids))
            for start in range(0, len(wanted), _ID_CHUNK):
                chunk = wanted[start : start + _ID_CHUNK]
                stmt = select(Product).where(Product.id.in_(chunk)).order_by(Product.id)
                items.extend(_Item.of(p) for p in session.scalars(stmt))
    return items


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def embedder_for(settings: Settings) -> Embedder:
    """The configured embedder: model, batch size, backend (ONNX exports go to
    ``<models_dir>/onnx``)."""
    return Embedder(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        backend=settings.embedding_backend,
        cache_dir=Path(str(settings.models_dir)) / "onnx",
    )


#: Query texts whose vectors :class:`ProductSearch` keeps (least recently used dropped).
QUERY_CACHE_SIZE = 512
#: Query texts :meth:`ProductSearch.embed_ahead` may hold for a search that never came (the
#: oldest are dropped).
PENDING_QUERIES = 64


class ProductSearch:
    """Semantic product search with exact metadata filters.

    Holds an :class:`Embedder`, a :class:`VectorIndex` and a :class:`MetadataTable`; usually
    created with :meth:`open`, which loads, incrementally syncs or builds the persisted index.
    Searches and mutations are thread-safe (a lock guards the shared state; embedding for an
    update happens outside it, so searches continue meanwhile).
    """

    def __init__(
        self,
        embedder: Embedder,
        index_dir: str | Path | None = None,
        backend: str = "flat",
        index_options: dict[str, Any] | None = None,
        query_cache_size: int = QUERY_CACHE_SIZE,
    ) -> None:
        if backend != "auto" and backend not in index_kinds():
            raise ValueError(
                f"Unknown index backend {backend!r}; valid backends are {['auto', *index_kinds()]}"
            )
        self.embedder = embedder
        self.index_dir = Path(index_dir) if index_dir is not None else None
        self.backend = backend
        self.index_options = dict(index_options or {})
        self._index: VectorIndex | None = None
        self._meta = MetadataTable()
        self._content: dict[int, str] = {}
        self._texts: dict[int, str] = {}
        self.built_at: str | None = None
        #: What :meth:`open` did: "loaded", "synced: +a ~u -d" or "built n".
        self.last_open_report: str = ""
        self._lock = threading.RLock()  # guards state read by searches
        # recent query texts -> vectors: a shopper's "show me more" or "cheaper" searches the
        # same text again, and the bot may search one message twice in a turn
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_lock = threading.Lock()
        self._query_cache_size = 0
        self.query_cache_size = query_cache_size
        # texts embedded ahead of their search (embed_ahead), each taken by one search
        self._pending: OrderedDict[str, Future[np.ndarray]] = OrderedDict()
        self._ahead: MicroBatcher[str, np.ndarray] | None = None
        self._write_lock = threading.RLock()  # serialises mutations
        self._cache: VectorCache | None = None
        #: How many texts the last build or update took from the embedding cache.
        self.cache_hits = 0

    @property
    def query_cache_size(self) -> int:
        """How many query texts keep their vectors (0: every search embeds its text)."""
        return self._query_cache_size

    @query_cache_size.setter
    def query_cache_size(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"query_cache_size must be >= 0, got {size}")
        with self._query_lock:
            self._query_cache_size = size
            while len(self._query_vectors) > size:
                self._query_vectors.popitem(last=False)

    @property
    def cache(self) -> VectorCache | None:
        """Embeddings by text hash for this model, beside the index folder
        (``<index_dir>/../embeddings/<model name>``); ``None`` without an index folder."""
        if self._cache is None and self.index_dir is not None:
            folder = self.index_dir.parent / "embeddings" / self.embedder.name
            self._cache = VectorCache(folder, self.embedder.dim)
        return self._cache

    def _embed(self, items: Sequence[_Item], progress: bool) -> np.ndarray:
        """Vectors for ``items``: from the cache by text hash, the rest embedded (and
        cached)."""
        cache = self.cache
        if cache is None or not items:
            self.cache_hits = 0
            return self.embedder.encode([it.text for it in items], progress=progress)
        keys = [it.text_hash for it in items]
        found, cached = cache.get_many(keys)
        out = np.empty((len(items), self.embedder.dim), dtype=np.float32)
        out[found] = cached
        missing = np.flatnonzero(~found)
        if missing.size:
            todo = [int(i) for i in missing]
            fresh = self.embedder.encode([items[i].text for i in todo], progress=progress)
            out[missing] = fresh
            cache.put_many([keys[i] for i in todo], fresh)
            cache.save()
        self.cache_hits = int(found.sum())
        return out

    def __repr__(self) -> str:
        return (
            f"ProductSearch(backend={self.backend!r}, count={len(self)}, "
            f"index_dir={str(self.index_dir) if self.index_dir else None!r})"
        )

    # ------------------------------------------------------------------ opening
    @classmethod
    def open_configured(
        cls, settings: Settings, session_factory: SessionFactory, progress: bool = False
    ) -> ProductSearch:
        """:meth:`open` with the embedding model, index folder and backend of ``settings``."""
        embedder = embedder_for(settings)
        engine = cls.open(
            Path(str(settings.index_dir)),
            session_factory,
            embedder,
            backend=settings.index_backend,
            progress=progress,
        )
        if not settings.text_caches:
            engine.query_cache_size = 0
        return engine

    @classmethod
    def open(
        cls,
        index_dir: str | Path,
        session_factory: SessionFactory,
        embedder: Embedder,
        backend: str = "flat",
        progress: bool = False,
        index_options: dict[str, Any] | None = None,
    ) -> ProductSearch:
        """Load the index persisted in ``index_dir`` and bring it up to date with the catalog.

        * same model and backend, catalog unchanged: load it (``"loaded"``);
        * catalog changed: load it and embed only added/changed products, drop deleted ones,
          then save (``"synced: +a ~u -d"``);
        * no index, unreadable, another model, backend or format: build from scratch and save
          (``"built n"``).

        The outcome is in :attr:`last_open_report`. ``index_options`` (e.g. ``ef_search`` for
        "hnsw") apply when the index is built.
        """
        engine = cls(embedder, index_dir=index_dir, backend=backend, index_options=index_options)
        manifest = engine._read_manifest()
        reason = engine._rebuild_reason(manifest)
        if reason is None:
            assert manifest is not None
            try:
                engine._load(manifest)
            except Exception as exc:  # corrupt or partial files: rebuild
                logger.warning("cannot read index in %s (%s); rebuilding", index_dir, exc)
                reason = f"unreadable index: {exc}"
        if reason is not None:
            logger.info("building product index in %s: %s", index_dir, reason)
            count = engine.build(session_factory, progress=progress)
            engine.last_open_report = f"built {count}"
        else:
            assert manifest is not None
            hashes = _catalog_hashes(session_factory)
            fingerprint = _fingerprint(hashes)
            if fingerprint == manifest.get("catalog_fingerprint") == engine.fingerprint:
                engine.last_open_report = "loaded"
            else:
                report = engine._sync_to(hashes, session_factory, progress)
                engine.save()
                engine.last_open_report = f"synced: {report.summary()}"
        logger.info("product index %s: %s", index_dir, engine.last_open_report)
        return engine

    def _read_manifest(self) -> dict[str, Any] | None:
        if self.index_dir is None:
            return None
        path = self.index_dir / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _rebuild_reason(self, manifest: dict[str, Any] | None) -> str | None:
        if manifest is None:
            return "no index"
        if manifest.get("format") != FORMAT_VERSION:
            return f"format {manifest.get('format')!r} != {FORMAT_VERSION}"
        if manifest.get("model") != self.embedder.name:
            return f"model {manifest.get('model')!r} != {self.embedder.name!r}"
        saved = manifest.get("backend")
        chosen = resolve_index_kind(self.backend, int(manifest.get("count") or 0))
        if saved not in (self.backend, chosen):  # "auto" reuses an index of the kind it picks
            return f"backend {saved!r} != {self.backend!r}"
        if manifest.get("dim") != self.embedder.dim:
            return f"dim {manifest.get('dim')!r} != {self.embedder.dim}"
        return None

    def _load(self, manifest: dict[str, Any]) -> None:
        assert self.index_dir is not None
        data = self.index_dir / str(manifest["data"])
        index = VectorIndex.load(data / "index")
        # "auto": the saved kind must still be the one chosen for its size, else rebuild.
        if index.kind != resolve_index_kind(self.backend, len(index)) or (
            index.dim != self.embedder.dim
        ):
            raise ValueError(f"saved index is {index.kind!r}/{index.dim}d")
        meta = MetadataTable.load(data)
        with np.load(data / "hashes.npz", allow_pickle=False) as h:
            ids = h["ids"].astype(np.int64)
            content = h["content"].tolist()
            texts = h["text"].tolist()
        id_set = set(ids.tolist())
        if not (
            len(id_set) == len(ids) == len(index) == len(meta) == int(manifest["count"])
            and id_set == set(index.ids().tolist()) == set(meta.ids.tolist())
        ):
            raise ValueError("index, metadata and hashes disagree")
        with self._lock:
            self._index = index
            self._meta = meta
            self._content = dict(zip(ids.tolist(), content, strict=True))
            self._texts = dict(zip(ids.tolist(), texts, strict=True))
            self.built_at = manifest.get("built_at")

    # ------------------------------------------------------------------ building and syncing
    def build(self, session_factory: SessionFactory, progress: bool = False) -> int:
        """Embed the whole catalog into a fresh index (searches keep using the old one until
        it is ready); saves when ``index_dir`` is set. Returns the number of products."""
        with self._write_lock:
            start = time.perf_counter()
            items = _read_items(session_factory, None)
            vectors = self._embed(items, progress)
            kind = resolve_index_kind(self.backend, len(items))
            index = create_index(kind, self.embedder.dim, **self.index_options)
            ids = np.array([it.id for it in items], dtype=np.int64)
            meta = MetadataTable.from_products(items)
            # an IVF index keeps each list's products grouped by category (its facet), so a
            # category filter scans only those: it takes the metadata's codes of that column
            facet = index.facet
            index.add(ids, vectors, facets=meta.codes(facet, ids) if facet else None)
            with self._lock:
                self._index = index
                self._meta = meta
                self._content = {it.id: it.content_hash for it in items}
                self._texts = {it.id: it.text_hash for it in items}
                self.built_at = _now()
            logger.info("embedded %d products in %.1fs", len(items), time.perf_counter() - start)
            if self.index_dir is not None:
                self.save()
            return len(items)

    def sync(self, session_factory: SessionFactory, progress: bool = False) -> SyncReport:
        """Bring the index up to date with the catalog incrementally (embedding only added or
        re-worded products, dropping deleted ones); saves when something changed."""
        with self._write_lock:
            report = self._sync_to(_catalog_hashes(session_factory), session_factory, progress)
            if report.changed and self.index_dir is not None:
                self.save()
            return report

    def _sync_to(
        self, hashes: dict[int, str], session_factory: SessionFactory, progress: bool
    ) -> SyncReport:
        with self._write_lock:
            start = time.perf_counter()
            current = self._content
            stale = [pid for pid, h in hashes.items() if current.get(pid) != h]
            gone = [pid for pid in current if pid not in hashes]
            items = _read_items(session_factory, stale)
            vanished = set(stale) - {it.id for it in items}  # deleted while we read
            report = self._apply(items, [*gone, *vanished], progress)
            return dataclasses.replace(report, seconds=time.perf_counter() - start)

    def upsert_products(self, products: Iterable[Any], progress: bool = False) -> SyncReport:
        """Add or replace products (Product rows or look-alikes); only those whose embedding
        text changed are re-embedded. Call :meth:`save` to persist."""
        with self._write_lock:
            start = time.perf_counter()
            report = self._apply([_Item.of(p) for p in products], [], progress)
            return dataclasses.replace(report, seconds=time.perf_counter() - start)

    def delete_products(self, ids: Iterable[int]) -> int:
        """Remove products by id (unknown ids are ignored); returns how many were removed.
        Call :meth:`save` to persist."""
        with self._write_lock:
            return self._apply([], [int(i) for i in ids], False).removed

    def _apply(self, items: list[_Item], remove: Sequence[int], progress: bool) -> SyncReport:
        """Write items and removals; embedding runs before taking the search lock."""
        latest = {it.id: it for it in items}
        items = list(latest.values())
        index = self._ensure_index()
        to_embed = [it for it in items if self._texts.get(it.id) != it.text_hash]
        vectors = self._embed(to_embed, progress)
        added = sum(1 for it in items if it.id not in self._content)
        remove_ids = np.array(sorted({int(i) for i in remove} - set(latest)), dtype=np.int64)
        with self._lock:
            self._meta.upsert(items)  # first: it assigns the facet codes the index takes
            if to_embed:
                up = np.array([it.id for it in to_embed], dtype=np.int64)
                facet = index.facet
                index.upsert(up, vectors, facets=self._meta.codes(facet, up) if facet else None)
            for it in items:
                self._content[it.id] = it.content_hash
                self._texts[it.id] = it.text_hash
            removed = 0
            if remove_ids.size:
                removed = index.remove(remove_ids)
                self._meta.remove(remove_ids)
                for pid in remove_ids.tolist():
                    self._content.pop(pid, None)
                    self._texts.pop(pid, None)
        return SyncReport(
            added=added, updated=len(items) - added, removed=removed, embedded=len(to_embed)
        )

    def _ensure_index(self) -> VectorIndex:
        with self._lock:
            if self._index is None:
                kind = resolve_index_kind(self.backend, 0)
                self._index = create_index(kind, self.embedder.dim, **self.index_options)
                self.built_at = self.built_at or _now()
            return self._index

    # ------------------------------------------------------------------ persistence
    @property
    def fingerprint(self) -> str:
        """Catalog fingerprint of what is indexed (same formula as for the database)."""
        with self._lock:
            return _fingerprint(self._content)

    def save(self) -> Path:
        """Persist into ``index_dir`` (new generation + atomic manifest swap); returns the
        generation folder."""
        if self.index_dir is None:
            raise ValueError("this ProductSearch has no index_dir; pass one to save")
        root = self.index_dir
        with self._write_lock:
            root.mkdir(parents=True, exist_ok=True)
            token = uuid.uuid4().hex[:12]
            tmp = root / f".tmp-{token}"
            index = self._ensure_index()
            with self._lock:
                index.save(tmp / "index")
                self._meta.save(tmp)
                ids = sorted(self._content)
                np.savez(
                    tmp / "hashes.npz",
                    ids=np.array(ids, dtype=np.int64),
                    content=np.array([self._content[i] for i in ids], dtype=str),
                    text=np.array([self._texts[i] for i in ids], dtype=str),
                )
                manifest = {
                    "format": FORMAT_VERSION,
                    "model": self.embedder.name,
                    "dim": index.dim,
                    "backend": self.backend,
                    "count": len(index),
                    "catalog_fingerprint": _fingerprint(self._content),
                    "built_at": self.built_at or _now(),
                    "saved_at": _now(),
                    "data": f"data-{token}",
                }
            final = root / f"data-{token}"
            tmp.rename(final)
            manifest_tmp = root / f".{MANIFEST}.{token}"
            manifest_tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            os.replace(manifest_tmp, root / MANIFEST)
            self._cleanup(root)
            return final

    def _cleanup(self, root: Path) -> None:
        """Delete generations the manifest does not name (re-read in case of another writer)."""
        current = (self._read_manifest() or {}).get("data")
        for child in root.iterdir():
            if (
                child.is_dir()
                and child.name.startswith(("data-", ".tmp-"))
                and child.name != current
            ):
                shutil.rmtree(child, ignore_errors=True)

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        with self._lock:
            return 0 if self._index is None else len(self._index)

    def __contains__(self, product_id: object) -> bool:
        with self._lock:
            try:
                return int(product_id) in self._content  # type: ignore[call-overload]
            except (TypeError, ValueError):
                return False

    @property
    def metadata(self) -> MetadataTable:
        """The metadata table (read-only use)."""
        return self._meta

    @property
    def index(self) -> VectorIndex:
        """The vector index (read-only use)."""
        return self._ensure_index()

    def _allowed(self, flt: Filter | None) -> np.ndarray | None:
        if flt is None or flt.is_empty():
            return None
        return self._meta.allowed_ids(flt)

    def query_vector(self, query: str | np.ndarray) -> np.ndarray:
        """The ``(1, dim)`` query vector of a text (cached: a repeated text is embedded once)
        or of a given vector."""
        return self._query_vector(query)

    def embed_ahead(self, text: str) -> None:
        """Start embedding the query ``text`` in a background thread; the next search for
        ``text`` takes that vector instead of embedding it.

        For a caller that knows its query before it can search (the recommender, while the
        shopper's context loads): ONNX Runtime releases the GIL, so the model runs on the
        other core meanwhile. One thread embeds ahead, so many conversations at once queue
        rather than crowd the cores, and texts that queued while the model was busy are
        embedded together (``tailor.runtime.batching``). A text already cached or on its way
        is not embedded again.
        """
        with self._query_lock:
            if text in self._query_vectors or text in self._pending:
                return
            if self._ahead is None:
                self._ahead = MicroBatcher(self._embed_queries, max_batch=8, name="tailor-embed")
            self._pending[text] = self._ahead.submit(text)
            while len(self._pending) > PENDING_QUERIES:
                self._pending.popitem(last=False)

    def _embed_query(self, text: str) -> np.ndarray:
        vec = self.embedder.encode_one(text).reshape(1, -1)
        vec.setflags(write=False)
        return vec

    def _embed_queries(self, texts: list[str]) -> list[np.ndarray]:
        # one text alone gets exactly the vector a plain search would (in a batch, padding
        # moves the floats by ~1e-7)
        if len(texts) == 1:
            return [self._embed_query(texts[0])]
        out = []
        for row in self.embedder.encode_queries(texts):
            vec = row.reshape(1, -1).copy()
            vec.setflags(write=False)
            out.append(vec)
        return out

    def _query_vector(self, query: str | np.ndarray) -> np.ndarray:
        if isinstance(query, str):
            with self._query_lock:
                cached = self._query_vectors.get(query)
                if cached is not None:
                    self._query_vectors.move_to_end(query)
                    return cached
                ahead = self._pending.pop(query, None)
            vec = None
            if ahead is not None:
                try:
                    vec = ahead.result()
                except Exception:  # embedded again below, where the error is raised
                    logger.exception("embedding %r ahead failed", query)
            if vec is None:
                vec = self._embed_query(query)
            with self._query_lock:
                self._query_vectors[query] = vec
                while len(self._query_vectors) > self._query_cache_size:
                    self._query_vectors.popitem(last=False)
            return vec
        vec = np.ascontiguousarray(query, dtype=np.float32)
        if vec.ndim == 2 and vec.shape[0] == 1:
            return vec
        if vec.ndim != 1:
            raise ValueError(
                f"query vector must have shape ({self.embedder.dim},), got {vec.shape}"
            )
        return vec.reshape(1, -1)

    def search(self, query: str | np.ndarray, k: int = 10, flt: Filter | None = None) -> list[Hit]:
        """The ``k`` products closest to ``query`` (text or vector), best first.

        Never returns a product violating ``flt`` (``None``: no constraint at all); returns
        exactly ``k`` hits when at least ``k`` products match, fewer only if fewer match.
        """
        if k <= 0:
            return []
        vec = self._query_vector(query)
        with self._lock:
            if self._index is None or len(self._index) == 0:
                return []
            allowed = self._allowed(flt)
            if allowed is not None and allowed.size == 0:
                return []
            scores, ids = self._index.search(vec, k, allowed)
        return [
            Hit(int(pid), float(score))
            for score, pid in zip(scores[0], ids[0], strict=True)
            if pid >= 0
        ]

    def similar(self, product_id: int, k: int = 10, flt: Filter | None = None) -> list[Hit]:
        """Products most similar to ``product_id`` (never itself), best first, within ``flt``."""
        vec = self.vector(product_id)
        base = flt if flt is not None else Filter(in_stock=False)
        scoped = dataclasses.replace(base, exclude_ids=(*base.exclude_ids, int(product_id)))
        return self.search(vec, k, scoped)

    def count(self, flt: Filter | None = None) -> int:
        """How many indexed products match ``flt`` (all when ``None``)."""
        with self._lock:
            return len(self._meta) if flt is None else self._meta.count(flt)

    def vectors(self, product_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """The stored embeddings of those of ``product_ids`` that are indexed, by id (one
        batched lookup: ranking needs a few dozen candidates' vectors every turn)."""
        wanted = [int(p) for p in dict.fromkeys(product_ids)]
        with self._lock:
            if self._index is None:
                return {}
            present = [p for p in wanted if p in self._content]
            if not present:
                return {}
            rows = self._index.reconstruct(np.asarray(present, dtype=np.int64))
        return {p: rows[i] for i, p in enumerate(present)}

    def vector(self, product_id: int) -> np.ndarray:
        """The stored embedding of ``product_id``; ``KeyError`` if it is not indexed."""
        with self._lock:
            if self._index is None or int(product_id) not in self._content:
                raise KeyError(f"product {product_id} is not in the index")
            return self._index.reconstruct(np.array([int(product_id)], dtype=np.int64))[0]
