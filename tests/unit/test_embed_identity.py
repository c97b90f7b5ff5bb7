"""Embedder identity (what keys the index and the embedding cache) and the top-k agreement
measure; nothing here loads a model."""

from __future__ import annotations

import numpy as np
import pytest

from tailor.config import Settings, default_embedding_model
from tailor.retrieval import Embedder
from tailor.retrieval.embed import MIN_TOKENS, top_k_agreement


def test_everything_that_changes_a_vector_changes_the_name() -> None:
    model = default_embedding_model()
    plain = Embedder(model, backend="onnx")
    assert Embedder(model, backend="torch").name == plain.name  # same vectors (to 1e-7)
    assert Embedder(model, backend="onnx", batch_size=128).name == plain.name
    int8 = Embedder(model, backend="onnx-int8")
    capped = Embedder(model, backend="onnx", max_tokens=64)
    both = Embedder(model, backend="onnx-int8", max_tokens=64)
    bf16 = Embedder(model, backend="torch-bf16")
    names = {plain.name, int8.name, capped.name, both.name}
    assert len(names) == 4
    # a split backend is named after its catalog (bulk) vectors; never after fp32's
    openvino = Embedder(model, backend="openvino-bf16")
    if openvino.backend == "openvino-bf16":  # else openvino is not installed: plain onnx
        assert openvino.name.endswith("-ovbf16")
        assert openvino.name not in {*names, bf16.name}
        assert not openvino.loaded
    # int8 queries against the fp32 catalog: the catalog's vectors (and index) are the same
    assert Embedder(model, backend="onnx-q8").name == plain.name
    assert bf16.name.endswith("-bf16") or bf16.name == plain.name  # fp32 without bf16 support
    assert capped.name.endswith("-t64") and both.name.endswith("-int8-t64")
    # a cap at or above the model's own limit (256 word pieces) reads the same tokens
    assert Embedder(model, backend="onnx", max_tokens=256).name == plain.name
    assert Embedder(model, backend="onnx", max_tokens=1000).name == plain.name
    assert not plain.loaded and not capped.loaded


def test_the_configured_backend_keys_the_cache() -> None:
    from tailor.retrieval.engine import embedder_for

    default = embedder_for(Settings.load(env={}))
    int8 = embedder_for(Settings.load(env={"TAILOR_EMBEDDING_BACKEND": "onnx-int8"}))
    assert default.name != int8.name  # the cache folder is embeddings/<name>/
    split = embedder_for(Settings.load(env={"TAILOR_EMBEDDING_BACKEND": "openvino-bf16"}))
    if split.backend == "openvino-bf16":
        assert split.name not in {default.name, int8.name}
    assert default.backend == Settings().embedding_backend


def test_a_token_cap_must_leave_room_for_words() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        Embedder("x", max_tokens=MIN_TOKENS - 1)
    assert Embedder("x", max_tokens=None).max_tokens is None


def test_top_k_agreement() -> None:
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(50, 8)).astype(np.float32)
    queries = rng.normal(size=(6, 8)).astype(np.float32)
    assert top_k_agreement(docs, queries, docs, queries, k=10) == 1.0
    # a document order change does not matter, only which documents are retrieved
    assert top_k_agreement(docs, queries, docs * 2.0, queries, k=10) == 1.0
    # opposite queries retrieve the bottom 10: disjoint from the top 10 of 50
    assert top_k_agreement(docs, queries, docs, -queries, k=10) == 0.0
    # one query of two loses exactly one of its top 3
    d = np.eye(4, dtype=np.float32)
    q = np.array([[4, 3, 2, 1], [1, 2, 3, 4]], dtype=np.float32)
    moved = np.array([[4, 3, 0, 2], [1, 2, 3, 4]], dtype=np.float32)
    assert top_k_agreement(d, q, d, moved, k=3) == pytest.approx((1.0 + 2 / 3) / 2)
    assert top_k_agreement(d, q, d, q, k=10) == 1.0  # k above the catalog size: all of it
    with pytest.raises(ValueError):
        top_k_agreement(d, q, d[:3], q)
