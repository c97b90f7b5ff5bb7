"""Write the demo catalog, customers and their events into a database, idempotently."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from tailor.demo.customers import (
    CustomerRecord,
    EventRecord,
    demo_sender_id,
    generate_customers,
    generate_events,
)
from tailor.demo.generator import generate_products
from tailor.store.catalog import ProductRecord, UpsertCounts, upsert_products
from tailor.store.db import session_scope
from tailor.store.models import Customer, Event, Product

__all__ = ["BATCH_SIZE", "LoadSummary", "load_demo", "upsert_customers"]

#: Products written per transaction.
BATCH_SIZE = 1000

_CHUNK = 500
_T = TypeVar("_T")


@dataclass
class LoadSummary:
    """What :func:`load_demo` wrote."""

    products_inserted: int = 0
    products_updated: int = 0
    products_unchanged: int = 0
    reviews: int = 0
    customers: int = 0
    customers_inserted: int = 0
    customers_updated: int = 0
    events: int = 0
    seconds: float = 0.0

    @property
    def products(self) -> int:
        """Products seen (inserted + updated + unchanged)."""
        return self.products_inserted + self.products_updated + self.products_unchanged

    def __str__(self) -> str:
        return (
            f"Demo data: {self.products} products ({self.products_inserted} new, "
            f"{self.products_updated} updated, {self.products_unchanged} unchanged), "
            f"{self.reviews} reviews written, "
            f"{self.customers} customers ({self.customers_inserted} new, "
            f"{self.customers_updated} updated), {self.events} events in {self.seconds:.1f} s"
        )


def _batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="row", file=sys.stderr, disable=not enabled)


def upsert_customers(session: Session, records: Sequence[CustomerRecord]) -> tuple[int, int]:
    """Insert or update customers by ``external_id``; returns ``(inserted, updated)``."""
    wanted = {r.external_id: r for r in records}
    ids = list(wanted)
    existing: dict[str, Customer] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for c in session.scalars(select(Customer).where(Customer.external_id.in_(chunk))):
            existing[c.external_id] = c
    inserted = updated = 0
    for ext, rec in wanted.items():
        values = {
            "name": rec.name,
            "email": rec.email,
            "age_band": rec.age_band,
            "gender": rec.gender,
            "country": rec.country,
            "region": rec.region,
            "attributes": dict(rec.attributes),
        }
        customer = existing.get(ext)
        if customer is None:
            session.add(Customer(external_id=ext, created_at=rec.created_at, **values))
            inserted += 1
            continue
        changed = False
        for name, value in values.items():
            if getattr(customer, name) != value:
                setattr(customer, name, value)
                changed = True
        updated += changed
    session.flush()
    return inserted, updated


def _write_events(
    session: Session,
    events: Sequence[EventRecord],
    customer_ids: dict[str, int],
    product_ids: dict[str, int],
) -> int:
    """Replace the demo events of these customers with ``events``; returns rows written."""
    ids = sorted(customer_ids.values())
    for start in range(0, len(ids), _CHUNK):
        session.execute(
            delete(Event).where(
                Event.customer_id.in_(ids[start : start + _CHUNK]),
                Event.sender_id.like("demo:%"),
            ),
            execution_options={"synchronize_session": False},
        )
    rows = [
        {
            "kind": e.kind,
            "sender_id": demo_sender_id(e.customer_external_id),
            "customer_id": customer_ids[e.customer_external_id],
            "product_id": product_ids[e.product_sku],
            "value": e.value,
            "payload": e.payload,
            "created_at": e.created_at,
        }
        for e in events
        if e.customer_external_id in customer_ids and e.product_sku in product_ids
    ]
    for batch in _batches(rows, 5000):
        session.execute(insert(Event), batch)
    return len(rows)


def load_demo(
    session_factory: sessionmaker[Session],
    n_products: int,
    n_customers: int,
    seed: int = 42,
    progress: bool = False,
) -> LoadSummary:
    """Generate and store ``n_products`` products (with reviews), ``n_customers`` customers
    and their purchase / view events; one transaction per :data:`BATCH_SIZE` products.

    Idempotent: products are upserted by sku, customers by external id, and the customers'
    earlier demo events (``sender_id`` ``demo:<external id>``) are replaced, so a second run
    with the same arguments changes nothing. ``progress`` shows tqdm bars on stderr.
    """
    t0 = time.perf_counter()
    summary = LoadSummary()
    counts = UpsertCounts()
    catalog: list[ProductRecord] = []
    with _progress(n_products, "products", progress) as bar:
        for batch in _batches(generate_products(n_products, seed), BATCH_SIZE):
            with session_scope(session_factory) as session:
                counts.add(upsert_products(session, batch))
            catalog.extend(batch)
            bar.update(len(batch))
    summary.products_inserted = counts.inserted
    summary.products_updated = counts.updated
    summary.products_unchanged = counts.unchanged
    summary.reviews = counts.reviews

    customers = generate_customers(n_customers, seed)
    summary.customers = len(customers)
    events = generate_events(customers, catalog, seed)
    with (
        _progress(len(customers), "customers", progress) as bar,
        session_scope(session_factory) as session,
    ):
        for chunk_of_customers in _batches(customers, BATCH_SIZE):
            ins, upd = upsert_customers(session, chunk_of_customers)
            summary.customers_inserted += ins
            summary.customers_updated += upd
            bar.update(len(chunk_of_customers))
        wanted = [c.external_id for c in customers]
        customer_ids: dict[str, int] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            stmt = select(Customer.external_id, Customer.id).where(Customer.external_id.in_(chunk))
            customer_ids.update({ext: cid for ext, cid in session.execute(stmt)})
        product_ids = dict(counts.ids)
        missing = sorted({e.product_sku for e in events} - set(product_ids))
        for start in range(0, len(missing), _CHUNK):
            stmt = select(Product.sku, Product.id).where(
                Product.sku.in_(missing[start : start + _CHUNK])
            )
            product_ids.update({sku: pid for sku, pid in session.execute(stmt)})
        summary.events = _write_events(session, events, customer_ids, product_ids)
    summary.seconds = time.perf_counter() - t0
    return summary
