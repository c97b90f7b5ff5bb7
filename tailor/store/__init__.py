"""Storage: SQLAlchemy models, engines and sessions, catalog data functions, importers."""

from tailor.store import agents as agents
from tailor.store.catalog import (
    ProductRecord,
    ReviewRecord,
    UpsertCounts,
    catalog_fingerprint,
    count_products,
    delete_products,
    distinct_values,
    get_product,
    get_products,
    product_hashes,
    upsert_products,
)
from tailor.store.db import init_db, make_engine, make_session_factory, session_scope
from tailor.store.models import Base, Customer, Event, Product, Review

__all__ = [
    "Base",
    "Customer",
    "Event",
    "Product",
    "ProductRecord",
    "Review",
    "ReviewRecord",
    "UpsertCounts",
    "catalog_fingerprint",
    "count_products",
    "delete_products",
    "distinct_values",
    "get_product",
    "get_products",
    "init_db",
    "make_engine",
    "make_session_factory",
    "product_hashes",
    "session_scope",
    "upsert_products",
]
