"""Shared fixtures. Keep this file small: per-suite fixtures live next to their tests."""

from __future__ import annotations

import os
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedder() -> Any:
    """The real all-MiniLM-L6-v2 :class:`tailor.retrieval.Embedder`, loaded once per session.

    Only tests marked ``slow`` should use it.
    """
    from tailor.config import default_embedding_model
    from tailor.retrieval import Embedder

    emb = Embedder(default_embedding_model(), batch_size=64)
    emb.encode_one("warm up")  # load now so per-test timings exclude the model load
    return emb
