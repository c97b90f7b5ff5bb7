"""ONNX Runtime embeddings against torch on the real model, and the embedding cache on a
real catalog (slow: loads all-MiniLM-L6-v2 and exports it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tailor.config import default_embedding_model
from tailor.retrieval import Embedder, ProductSearch
from tailor.retrieval.onnx import export_onnx, supports_onnx
from tailor.retrieval.text import product_text
from tailor.store import make_session_factory
from tailor.store.models import Product

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def texts(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from tailor.demo import load_demo

    factory = make_session_factory(f"sqlite:///{tmp_path_factory.mktemp('emb') / 't.db'}")
    load_demo(factory, 300, 5, 3, progress=False)
    with factory() as session:
        return [product_text(p) for p in session.query(Product).order_by(Product.id)]


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


def test_the_model_can_be_exported_once(onnx_dir: Path) -> None:
    model = default_embedding_model()
    assert supports_onnx(model)
    assert not supports_onnx(onnx_dir)  # no modules.json
    first = export_onnx(model, onnx_dir / "m")
    stamp = first.stat().st_mtime_ns
    again = export_onnx(model, onnx_dir / "m")
    assert again == first and again.stat().st_mtime_ns == stamp  # cached, not redone


def test_onnx_gives_the_torch_vectors(embedder: Any, texts: list[str], onnx_dir: Path) -> None:
    onnx = Embedder(default_embedding_model(), backend="onnx", cache_dir=onnx_dir)
    assert onnx.name == embedder.name  # interchangeable: an index built by torch stays valid
    a = embedder.encode(texts[:80])
    b = onnx.encode(texts[:80])
    assert b.shape == a.shape and b.dtype == np.float32
    assert np.abs(a - b).max() < 1e-4
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    # order is kept although batches are formed by length
    assert np.abs(onnx.encode([texts[5], texts[0]]) - a[[5, 0]]).max() < 1e-4


def test_int8_keeps_the_top_ten(embedder: Any, texts: list[str], onnx_dir: Path) -> None:
    int8 = Embedder(default_embedding_model(), backend="onnx-int8", cache_dir=onnx_dir)
    assert int8.name != embedder.name  # its index is told apart
    queries = [t.split(".")[0] for t in texts[::10]]
    ref_docs, ref_q = embedder.encode(texts), embedder.encode(queries)
    q_docs, q_q = int8.encode(texts), int8.encode(queries)
    agree = []
    for i in range(len(queries)):
        ref = set(np.argsort(-(ref_docs @ ref_q[i]))[:10].tolist())
        got = set(np.argsort(-(q_docs @ q_q[i]))[:10].tolist())
        agree.append(len(ref & got) / 10)
    assert float(np.mean(agree)) >= 0.9, agree


def test_rebuilding_the_index_reuses_cached_embeddings(tmp_path: Path, embedder: Any) -> None:
    from tailor.demo import load_demo

    factory = make_session_factory(f"sqlite:///{tmp_path / 'c.db'}")
    load_demo(factory, 120, 5, 4, progress=False)
    first = ProductSearch.open(tmp_path / "index", factory, embedder)
    assert first.last_open_report == "built 120" and first.cache_hits == 0
    # another backend forces a full rebuild: nothing is embedded again
    second = ProductSearch.open(tmp_path / "index", factory, embedder, backend="hnsw")
    assert second.last_open_report == "built 120" and second.cache_hits == 120
    probe = embedder.encode_one("warm jacket")
    assert [h.product_id for h in first.search(probe, 5)] == [
        h.product_id for h in second.search(probe, 5)
    ]
