"""ONNX Runtime embeddings against torch on the real model, and the embedding cache on a
real catalog (slow: loads all-MiniLM-L6-v2 and exports it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tailor.config import Settings, default_embedding_model
from tailor.retrieval import Embedder, ProductSearch
from tailor.retrieval.embed import top_k_agreement
from tailor.retrieval.onnx import OnnxEncoder, export_onnx, supports_onnx
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
    ref = (embedder.encode(texts), embedder.encode(queries))
    got = (int8.encode(texts), int8.encode(queries))
    # measured on 2,000 demo products and 200 shopper queries: 0.936 (scripts/bench_embed.py)
    assert top_k_agreement(*ref, *got) >= 0.9


def test_q8_embeds_the_catalog_in_fp32_and_queries_in_blockwise_int8(
    embedder: Any, texts: list[str], onnx_dir: Path
) -> None:
    import onnx

    q8 = Embedder(default_embedding_model(), backend="onnx-q8", cache_dir=onnx_dir)
    assert q8.name == embedder.name  # the catalog vectors are fp32's: an index serves both
    queries = [t.split(".")[0] for t in texts[::10]]
    ref = (embedder.encode(texts), embedder.encode(queries))
    catalog = q8.encode(texts)
    assert np.abs(catalog - ref[0]).max() < 1e-4
    got = q8.encode_queries(queries)
    assert got.dtype == np.float32 and np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.abs(q8.encode_one(queries[3]) - got[3]).max() < 1e-5
    # another model: int8 weights in MatMulNBits nodes, a scale per 32 of them
    assert q8.onnx_file is not None and q8.onnx_file.name == "model-q8.onnx"
    graph = onnx.load(str(q8.onnx_file)).graph
    weights = {t.name for t in graph.initializer}
    nodes = list(graph.node)
    # six per layer (query, key, value, output, and the two of the feed-forward block); the
    # attention's own products multiply activations and stay fp32
    assert sum(n.op_type == "MatMulNBits" for n in nodes) == 36
    assert not [n for n in nodes if n.op_type == "MatMul" and n.input[1] in weights]
    cosine = (got * ref[1]).sum(axis=1)
    assert cosine.min() > 0.999 and np.abs(got - ref[1]).max() > 1e-6
    # measured on 2,000 demo products and 200 shopper queries: 0.992 (docs/benchmarks.md)
    assert top_k_agreement(*ref, catalog, got) >= 0.97


def test_bf16_keeps_the_top_ten(embedder: Any, texts: list[str]) -> None:
    bf16 = Embedder(default_embedding_model(), backend="torch-bf16", batch_size=64)
    queries = [t.split(".")[0] for t in texts[::10]]
    ref = (embedder.encode(texts), embedder.encode(queries))
    got = (bf16.encode(texts), bf16.encode(queries))
    assert got[0].dtype == np.float32 and np.allclose(np.linalg.norm(got[0], axis=1), 1.0)
    # measured on 2,000 demo products and 200 shopper queries: 0.997 (scripts/bench_embed.py)
    assert top_k_agreement(*ref, *got) >= 0.95


def test_the_configured_backend_agrees_with_fp32(
    embedder: Any, texts: list[str], onnx_dir: Path
) -> None:
    settings = Settings.load(env={})
    chosen = Embedder(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        backend=settings.embedding_backend,
        cache_dir=onnx_dir,
    )
    queries = [t.split(".")[0] for t in texts[::10]]
    ref = (embedder.encode(texts), embedder.encode(queries))
    # queries as a shopper's are embedded (a split backend: ONNX Runtime fp32)
    got = (chosen.encode(texts), chosen.encode_queries(queries))
    assert top_k_agreement(*ref, *got) >= 0.95


def test_openvino_bf16_catalog_vectors_match_fp32(
    embedder: Any, texts: list[str], onnx_dir: Path
) -> None:
    pytest.importorskip("openvino")
    from tailor.retrieval.onnx import OpenVinoEncoder

    split = Embedder(default_embedding_model(), backend="openvino-bf16", cache_dir=onnx_dir)
    assert split.backend == "openvino-bf16"
    assert split.name.endswith("-ovbf16") and split.name != embedder.name
    ref = embedder.encode(texts)
    got = split.encode(texts)
    assert isinstance(split._bulk, OpenVinoEncoder)
    assert got.shape == ref.shape and got.dtype == np.float32 and got.flags.c_contiguous
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosine = (got * ref).sum(axis=1)
    assert cosine.min() >= 0.99  # bf16: about 0.9999 on these texts
    # order is kept although batches are formed by length and run out of order (in bf16 a
    # text's vector depends a little on its batch's padding: 3e-4 seen on an Intel Xeon, while
    # two different texts differ by far more)
    again = split.encode([texts[7], texts[3]])
    assert np.abs(again - got[[7, 3]]).max() < 2e-3
    assert np.abs(got[7] - got[3]).max() > 2e-2
    # a single query is the ONNX Runtime fp32 vector (the fast path), not the bf16 one
    queries = [t.split(".")[0] for t in texts[::10]]
    fp32_queries = embedder.encode(queries)
    assert np.abs(split.encode_one(queries[0]) - fp32_queries[0]).max() < 1e-4
    assert np.abs(split.encode_queries(queries) - fp32_queries).max() < 1e-4
    # measured on 2,000 demo products and 200 shopper queries (scripts/bench_embed.py)
    assert top_k_agreement(ref, fp32_queries, got, split.encode_queries(queries)) >= 0.95


def test_without_openvino_the_split_backend_is_plain_onnx(
    monkeypatch: pytest.MonkeyPatch, onnx_dir: Path
) -> None:
    import tailor.retrieval.onnx as onnx_module

    monkeypatch.setattr(onnx_module, "openvino_available", lambda: False)
    emb = Embedder(default_embedding_model(), backend="openvino-bf16", cache_dir=onnx_dir)
    assert emb.backend == "onnx"
    assert emb.name == Embedder(default_embedding_model(), backend="onnx").name


def test_the_token_cap_is_honoured(texts: list[str], onnx_dir: Path) -> None:
    model = default_embedding_model()
    capped = Embedder(model, backend="onnx", cache_dir=onnx_dir, max_tokens=16)
    full = Embedder(model, backend="onnx", cache_dir=onnx_dir)
    assert capped.name != full.name  # a cache or index of full texts is never reused
    vecs = capped.encode(texts[:20])
    assert isinstance(capped._model, OnnxEncoder)
    counts = capped._model.token_counts(texts[:20])
    assert max(counts) == 16 and capped._model.max_tokens == 16
    # words past the cap change nothing; within it, they do
    long_text = texts[0] + " and many more words that the cap cuts off"
    assert np.abs(capped.encode([long_text])[0] - vecs[0]).max() < 1e-5
    assert np.abs(full.encode([long_text])[0] - full.encode([texts[0]])[0]).max() > 1e-3
    # torch honours the same cap: the same vectors
    torch_capped = Embedder(model, backend="torch", max_tokens=16)
    assert torch_capped.name == capped.name
    assert np.abs(torch_capped.encode(texts[:20]) - vecs).max() < 1e-4


def test_parallel_sessions_give_the_same_vectors(texts: list[str], onnx_dir: Path) -> None:
    emb = Embedder(default_embedding_model(), backend="onnx", cache_dir=onnx_dir)
    emb.encode_one("load")
    assert emb.onnx_file is not None
    one = OnnxEncoder(emb.onnx_file, default_embedding_model(), threads=1, workers=1)
    two = OnnxEncoder(emb.onnx_file, default_embedding_model(), workers=2)
    a = one.encode(texts[:100], batch_size=8)
    b = two.encode(texts[:100], batch_size=8)  # 13 batches over 2 sessions
    assert b.shape == (100, 384) and np.abs(a - b).max() < 1e-5


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


def test_the_cache_keeps_bulk_backends_apart(tmp_path: Path, onnx_dir: Path) -> None:
    pytest.importorskip("openvino")
    from tailor.demo import load_demo

    factory = make_session_factory(f"sqlite:///{tmp_path / 'k.db'}")
    load_demo(factory, 60, 5, 2, progress=False)
    model = default_embedding_model()
    fp32 = Embedder(model, backend="onnx", cache_dir=onnx_dir)
    first = ProductSearch.open(tmp_path / "index", factory, fp32)
    assert first.last_open_report == "built 60" and first.cache_hits == 0
    # bf16 catalog vectors: the fp32 index and cached vectors are not reused, nor mixed
    split = Embedder(model, backend="openvino-bf16", cache_dir=onnx_dir)
    second = ProductSearch.open(tmp_path / "index", factory, split)
    assert second.last_open_report == "built 60" and second.cache_hits == 0
    third = ProductSearch.open(tmp_path / "index", factory, split)
    assert third.last_open_report == "loaded"  # the index is now the bf16 one
    assert (tmp_path / "embeddings" / split.name).is_dir()
    assert (tmp_path / "embeddings" / fp32.name).is_dir()
