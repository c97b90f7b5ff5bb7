"""Vector search over the catalog with exact metadata filters.

Typical use::

    from tailor.retrieval import Embedder, Filter, ProductSearch

    search = ProductSearch.open(settings.index_dir, session_factory,
                                Embedder(settings.embedding_model), backend=settings.index_backend)
    hits = search.search("waterproof hiking boots", k=10, flt=Filter(price_max=150))

Importing this package is cheap: FAISS, torch and the model load on first use.
"""

from __future__ import annotations

from tailor.retrieval.embed import Embedder
from tailor.retrieval.engine import Hit, ProductSearch, SyncReport
from tailor.retrieval.filters import Filter, MetadataTable
from tailor.retrieval.index import (
    FlatIndex,
    HNSWIndex,
    VectorIndex,
    create_index,
    index_kinds,
    load_index,
)
from tailor.retrieval.text import product_text

__all__ = [
    "Embedder",
    "Filter",
    "FlatIndex",
    "HNSWIndex",
    "Hit",
    "MetadataTable",
    "ProductSearch",
    "SyncReport",
    "VectorIndex",
    "create_index",
    "index_kinds",
    "load_index",
    "product_text",
]
