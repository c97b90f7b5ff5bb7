"""The catalog admin API (``/api/admin/*``): list, read, create, update and delete products,
and import a catalog file — for agents with the ``admin`` role only.

Writes go through :mod:`tailor.store.catalog` and :mod:`tailor.store.importers` (the same
code as ``tailor import``), then the search index on disk is brought up to date the way
``tailor index`` does it (:meth:`ProductSearch.sync`: only added or re-worded products are
embedded, deleted ones dropped), in a background thread so a large import does not hold the
request; ``GET /api/admin/index`` says where that stands. The running action server keeps the
index it loaded; it picks the synced one up when restarted (as after ``tailor import``).

No session is 401, an agent without the admin role 403; writes need the CSRF header
(:mod:`tailor.web.security`).
"""

# No ``from __future__ import annotations``: FastAPI resolves the routes' annotations, which
# name the closure-local ``admin`` dependency.
import asyncio
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from tailor.config import Settings
from tailor.retrieval import ProductSearch
from tailor.store.catalog import ProductRecord, delete_products, get_product, upsert_products
from tailor.store.importers import ImportSummary, import_csv, import_dummyjson
from tailor.store.models import Product
from tailor.web.errors import unprocessable
from tailor.web.security import AgentUser, PanelAuth

log = logging.getLogger(__name__)

__all__ = ["IndexSync", "admin_router"]

MAX_IMPORT_BYTES = 50 * 1024 * 1024
MAX_LISTED = 200
MAX_REPORTED_ERRORS = 50


class ProductFields(BaseModel):
    """Product fields an admin may set (all optional: an update changes what it names)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=512)
    category: str | None = Field(default=None, min_length=1, max_length=256)
    price: float | None = Field(default=None, ge=0, le=1e9)
    description: str | None = Field(default=None, max_length=20_000)
    brand: str | None = Field(default=None, max_length=128)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    colour: str | None = Field(default=None, max_length=64)
    material: str | None = Field(default=None, max_length=64)
    sizes: list[str] | None = Field(default=None, max_length=100)
    rating: float | None = Field(default=None, ge=0, le=5)
    review_count: int | None = Field(default=None, ge=0)
    stock: int | None = Field(default=None, ge=0)
    tags: list[str] | None = Field(default=None, max_length=100)
    image_url: str | None = Field(default=None, max_length=1024, pattern=r"^https?://\S+$")
    attributes: dict[str, Any] | None = None


class ProductCreate(ProductFields):
    """A new product: ``sku``, ``title``, ``category`` and ``price`` are required."""

    sku: str = Field(min_length=1, max_length=128, pattern=r"^\S+$")
    title: str = Field(min_length=1, max_length=512)
    category: str = Field(min_length=1, max_length=256)
    price: float = Field(ge=0, le=1e9)


def product_json(p: Product) -> dict[str, Any]:
    """A product as the admin API shows it."""
    return {
        "id": p.id,
        "sku": p.sku,
        "source": p.source,
        "title": p.title,
        "description": p.description,
        "category": p.category,
        "brand": p.brand,
        "price": float(p.price),
        "currency": p.currency,
        "colour": p.colour,
        "material": p.material,
        "sizes": list(p.sizes or []),
        "rating": p.rating,
        "review_count": p.review_count,
        "stock": p.stock,
        "tags": list(p.tags or []),
        "image_url": p.image_url,
        "attributes": dict(p.attributes or {}),
        "updated_at": p.updated_at.isoformat() if p.updated_at else None,
    }


def _record_of(p: Product) -> ProductRecord:
    return ProductRecord(
        sku=p.sku,
        title=p.title,
        category=p.category,
        price=float(p.price),
        description=p.description or "",
        brand=p.brand,
        currency=p.currency,
        colour=p.colour,
        material=p.material,
        sizes=list(p.sizes or []),
        rating=p.rating,
        review_count=p.review_count,
        stock=p.stock,
        tags=list(p.tags or []),
        image_url=p.image_url,
        attributes=dict(p.attributes or {}),
        source=p.source,
    )


def summary_json(summary: ImportSummary) -> dict[str, Any]:
    return {
        "rows": summary.rows,
        "imported": summary.imported,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
        "skipped": summary.skipped,
        "reviews": summary.reviews,
        "errors": [str(e) for e in summary.errors[:MAX_REPORTED_ERRORS]],
        "summary": summary.render(),
    }


class IndexSync:
    """Keeps the on-disk search index in step with the catalog, one sync at a time, in a
    background thread; writes arriving during a sync cause one more sync afterwards."""

    def __init__(self, open_search: Callable[[], ProductSearch], sync: Callable[[], str]) -> None:
        self._open = open_search
        self._sync = sync
        self._lock = threading.Lock()
        self._pending = False
        self._thread: threading.Thread | None = None
        self.state = "idle"
        self.last: str | None = None
        self.error: str | None = None
        self.runs = 0

    @classmethod
    def for_settings(
        cls, settings: Settings, factory: Callable[[], sessionmaker[Session]]
    ) -> "IndexSync":
        holder: dict[str, ProductSearch] = {}

        def open_search() -> ProductSearch:
            if "search" not in holder:  # opening syncs: a stale index is brought up to date
                holder["search"] = ProductSearch.open_configured(settings, factory())
            return holder["search"]

        def sync() -> str:
            fresh = "search" not in holder
            search = open_search()
            if fresh:
                return str(search.last_open_report)
            return str(search.sync(factory()))

        return cls(open_search, sync)

    def request(self) -> None:
        """Ask for a sync; returns at once."""
        with self._lock:
            self._pending = True
            if self._thread is None or not self._thread.is_alive():
                self.state = "pending"
                self._thread = threading.Thread(target=self._run, name="admin-index-sync")
                self._thread.daemon = True
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self.state = "idle" if self.error is None else "error"
                    return
                self._pending = False
                self.state = "running"
            try:
                report = self._sync()
            except Exception as exc:  # reported by GET /api/admin/index, logged in full
                log.exception("search index sync after a catalog change failed")
                with self._lock:
                    self.error = f"{type(exc).__name__}: {exc}"
                continue
            with self._lock:
                self.error = None
                self.last = report
                self.runs += 1

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"state": self.state, "last": self.last, "error": self.error, "runs": self.runs}

    def wait(self, timeout: float) -> bool:
        """Wait for the current sync to finish (tests, CLI); True if idle afterwards."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status()["state"] in ("idle", "error")


def admin_router(
    settings: Settings,
    factory: Callable[[], sessionmaker[Session]],
    auth: PanelAuth,
    index: IndexSync | None = None,
) -> APIRouter:
    """Routes of the catalog admin API; ``index`` overrides how the index is synced (tests)."""
    syncer = index or IndexSync.for_settings(settings, factory)
    admin = auth.require("admin")
    router = APIRouter(prefix="/api/admin")

    def load(session: Session, product_id: int) -> Product:
        product = get_product(session, product_id)
        if product is None:
            raise HTTPException(404, f"No product with id {product_id}.")
        return product

    @router.get("/products")
    def list_products(
        _user: Annotated[AgentUser, Depends(admin)],
        q: str | None = Query(None, max_length=200, description="text in sku, title or brand"),
        offset: int = Query(0, ge=0),
        limit: int = Query(50, ge=1, le=MAX_LISTED),
    ) -> dict[str, Any]:
        with factory()() as session:
            stmt = select(Product)
            if q:
                like = f"%{q.lower()}%"
                stmt = stmt.where(
                    or_(
                        func.lower(Product.sku).like(like),
                        func.lower(Product.title).like(like),
                        func.lower(Product.brand).like(like),
                    )
                )
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = session.scalars(stmt.order_by(Product.id).offset(offset).limit(limit))
            return {"total": int(total), "products": [product_json(p) for p in rows]}

    @router.get("/products/{product_id}")
    def read_product(
        product_id: int, _user: Annotated[AgentUser, Depends(admin)]
    ) -> dict[str, Any]:
        with factory()() as session:
            return product_json(load(session, product_id))

    @router.post("/products", status_code=201)
    def create_product(
        body: ProductCreate, _user: Annotated[AgentUser, Depends(admin)]
    ) -> dict[str, Any]:
        with factory().begin() as session:
            if session.scalar(select(Product.id).where(Product.sku == body.sku)) is not None:
                raise HTTPException(409, f"A product with sku {body.sku!r} exists; update it.")
            fields = body.model_dump(exclude_none=True)
            counts = upsert_products(session, [ProductRecord(**fields, source="admin")])
            out = product_json(load(session, counts.ids[body.sku]))
        syncer.request()
        return out

    @router.patch("/products/{product_id}")
    def update_product(
        product_id: int, body: ProductFields, _user: Annotated[AgentUser, Depends(admin)]
    ) -> dict[str, Any]:
        with factory().begin() as session:
            record = _record_of(load(session, product_id))
            for name, value in body.model_dump(exclude_unset=True).items():
                if value is None and name in ("title", "category", "price", "currency"):
                    raise unprocessable(f"{name} cannot be removed", "body", name)
                setattr(record, name, value if value is not None else _empty(name))
            counts = upsert_products(session, [record], replace_reviews=False)
            out = product_json(load(session, product_id))
        if counts.updated:
            syncer.request()
        return out

    @router.delete("/products/{product_id}")
    def remove_product(
        product_id: int, _user: Annotated[AgentUser, Depends(admin)]
    ) -> dict[str, Any]:
        with factory().begin() as session:
            load(session, product_id)
            delete_products(session, [product_id])
        syncer.request()
        return {"ok": True, "deleted": product_id}

    @router.post("/import")
    async def import_catalog(
        request: Request,
        _user: Annotated[AgentUser, Depends(admin)],
        format: Literal["dummyjson", "csv"] = Query(...),
        map: Annotated[list[str] | None, Query(description="FIELD=COLUMN for CSV")] = None,
    ) -> dict[str, Any]:
        """Import a catalog file sent as the request body (JSON or CSV, up to 50 MB)."""
        mapping: dict[str, str] = {}
        for item in map or []:
            if "=" not in item:
                raise unprocessable(f"map takes FIELD=COLUMN, got {item!r}", "query", "map")
            key, column = item.split("=", 1)
            mapping[key.strip()] = column.strip()
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_IMPORT_BYTES:
                raise HTTPException(413, f"A catalog file may be at most {MAX_IMPORT_BYTES} bytes.")
        if not data:
            raise unprocessable("Send the catalog file as the request body.", "body")
        suffix = ".json" if format == "dummyjson" else ".csv"
        fd, name = tempfile.mkstemp(prefix="tailor-import-", suffix=suffix)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            try:
                if format == "dummyjson":
                    summary = await asyncio.to_thread(import_dummyjson, factory(), Path(name))
                else:
                    summary = await asyncio.to_thread(
                        import_csv, factory(), Path(name), mapping or None
                    )
            except ValueError as exc:  # unreadable file, unknown mapping: the message says why
                raise unprocessable(str(exc), "body") from exc
        finally:
            Path(name).unlink(missing_ok=True)
        if summary.imported or summary.updated > summary.unchanged:
            syncer.request()
        return summary_json(summary)

    @router.get("/index")
    def index_status(_user: Annotated[AgentUser, Depends(admin)]) -> dict[str, Any]:
        """Where the search index sync after catalog changes stands."""
        return syncer.status()

    return router


def _empty(name: str) -> Any:
    """What clearing a field stores (lists and dicts become empty, others None)."""
    return {"sizes": [], "tags": [], "attributes": {}, "description": ""}.get(name)
