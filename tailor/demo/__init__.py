"""Deterministic demo data: a realistic product catalog, customers and their histories.

Shipped as code, not a data dump: ``generate_products(n, seed)`` always yields the same
records, and ``load_demo(factory, n_products, n_customers, seed)`` writes them idempotently.
"""

from __future__ import annotations

from tailor.demo.customers import (
    CustomerRecord,
    EventRecord,
    generate_customers,
    generate_events,
)
from tailor.demo.generator import REFERENCE_DATE, generate_products, make_product
from tailor.demo.loader import LoadSummary, load_demo
from tailor.demo.taxonomy import CATEGORIES, COLOURS, MATERIALS, SIZE_SYSTEMS, category_paths
from tailor.store.catalog import ProductRecord, ReviewRecord

__all__ = [
    "CATEGORIES",
    "COLOURS",
    "MATERIALS",
    "REFERENCE_DATE",
    "SIZE_SYSTEMS",
    "CustomerRecord",
    "EventRecord",
    "LoadSummary",
    "ProductRecord",
    "ReviewRecord",
    "category_paths",
    "generate_customers",
    "generate_events",
    "generate_products",
    "load_demo",
    "make_product",
]
