"""The sentence-transformers model as ONNX: exported once, offline, from the local weights,
and run with ONNX Runtime — the same vectors as torch (fp32) at a fraction of the latency on
these cores, or an int8 copy (dynamic quantisation) for faster catalog ingestion.

Only BERT-style "Transformer → mean Pooling → Normalize" models are supported (the MiniLM
family); anything else keeps the torch backend.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OnnxEncoder", "OpenVinoEncoder", "export_onnx", "openvino_available", "supports_onnx"]

logger = logging.getLogger(__name__)

#: Bump when the export changes: cached exports with another version are redone.
EXPORT_VERSION = 2
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def supports_onnx(model_path: str | Path) -> bool:
    """True for a local Transformer → mean Pooling (→ Normalize) model with a fast
    tokenizer file."""
    root = Path(model_path)
    try:
        modules = json.loads((root / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k not in ("Normalize",) for k in kinds[2:]):
        return False
    pooling = next(m for m in modules if str(m.get("type", "")).endswith("Pooling"))
    try:
        cfg = json.loads((root / pooling.get("path", "") / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    only_mean = cfg.get("pooling_mode_mean_tokens") and not any(
        v
        for k, v in cfg.items()
        if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
    )
    return bool(only_mean) and (root / "tokenizer.json").is_file()


def _max_length(model_path: Path) -> int:
    try:
        cfg = json.loads((model_path / "sentence_bert_config.json").read_text("utf-8"))
        return int(cfg.get("max_seq_length", 256))
    except (OSError, ValueError, TypeError):
        return 256


#: Quantised copies :func:`export_onnx` can write beside the fp32 export, by file name:
#: ``int8`` (:func:`quantize_matmuls`) and ``q8`` (:func:`quantize_blockwise`).
QUANTISED = {"int8": "model-int8.onnx", "q8": "model-q8.onnx"}


def export_onnx(model_path: str | Path, out_dir: str | Path, quantize: bool | str = False) -> Path:
    """Export the model to ``out_dir/model.onnx`` unless an export of this version is already
    there; with ``quantize`` (``"int8"``, or ``True`` for it, or ``"q8"``) also write that
    quantised copy (:data:`QUANTISED`). Returns the file to load. Runs offline from the local
    weights; the writes are atomic."""
    kind = "int8" if quantize is True else quantize or ""
    if kind and kind not in QUANTISED:
        raise ValueError(f"unknown quantisation {quantize!r}; valid: {sorted(QUANTISED)}")
    src = Path(model_path)
    out = Path(out_dir)
    target = out / (QUANTISED[kind] if kind else "model.onnx")
    stamp = out / "export.json"
    if target.is_file() and stamp.is_file():
        try:
            if json.loads(stamp.read_text("utf-8")).get("version") == EXPORT_VERSION:
                return target
        except ValueError:
            pass
    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / "model.onnx"
    if not (fp32.is_file() and stamp.is_file()):
        _export_fp32(src, fp32)
    if kind:
        write_quantised(kind, fp32, target)
    stamp.write_text(json.dumps({"version": EXPORT_VERSION, "source": str(src)}), "utf-8")
    return target


def quantisation_of(backend: str) -> str:
    """The quantisation an ONNX backend name asks for (``"onnx-int8"`` → ``"int8"``,
    ``"onnx-q8"`` → ``"q8"``), or ``""``."""
    kind = backend.removeprefix("onnx-")
    return kind if backend.startswith("onnx-") and kind in QUANTISED else ""


def write_quantised(kind: str, src: Path, target: Path) -> Path:
    """Write the ``kind`` (a key of :data:`QUANTISED`) copy of the ONNX model ``src`` to
    ``target``: :func:`quantize_matmuls` for ``int8``, :func:`quantize_blockwise` for
    ``q8``."""
    if kind == "int8":
        return quantize_matmuls(src, target)
    if kind == "q8":
        return quantize_blockwise(src, target)
    raise ValueError(f"unknown quantisation {kind!r}; valid: {sorted(QUANTISED)}")


def _write_atomically(target: Path, write: Callable[[str], None]) -> Path:
    """Have ``write`` write a file at the temporary path it is given, beside ``target``,
    then move it into place (a reader never sees a partial file; a failure leaves none)."""
    fd, tmp = tempfile.mkstemp(suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def quantize_matmuls(src: Path, target: Path) -> Path:
    """Write an int8 copy of the ONNX model ``src`` to ``target`` (atomically): dynamic
    quantisation, per-channel int8 weights of the matrix products only; the embedding
    lookup and the rest stay fp32 (measured on the query embedder: top-10 agreement 0.93
    vs 0.87 for the default settings)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    return _write_atomically(
        target,
        lambda tmp: quantize_dynamic(
            str(src),
            tmp,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        ),
    )


def quantize_blockwise(src: Path, target: Path, block_size: int = 32) -> Path:
    """Write a copy of the ONNX model ``src`` to ``target`` (atomically) whose matrix products
    hold their weights in int8, one scale per ``block_size`` weights (``MatMulNBits``,
    symmetric), and compute in int8 with the activations quantised per block too
    (``accuracy_level`` 4). Finer scales than :func:`quantize_matmuls`: on MiniLM, top-10
    agreement with fp32 queries 0.99 (0.93 there), at a quarter of the weights' memory
    traffic, which is what a single short text's forward pass waits for on these cores
    (docs/benchmarks.md)."""
    import onnx

    # the quantiser's module calls logging.basicConfig(level=INFO) when imported: give the
    # root logger a handler meanwhile so that it changes nothing, and quiet its per-node log
    root = logging.getLogger()
    guard = logging.NullHandler() if not root.handlers else None
    if guard is not None:
        root.addHandler(guard)
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )
    finally:
        if guard is not None:
            root.removeHandler(guard)
    logging.getLogger(MatMulNBitsQuantizer.__module__).setLevel(logging.WARNING)

    config = DefaultWeightOnlyQuantConfig(
        block_size=block_size,
        is_symmetric=True,
        accuracy_level=4,
        bits=8,
        op_types_to_quantize=("MatMul",),
    )
    quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), algo_config=config)
    quantizer.process()
    return _write_atomically(
        target, lambda tmp: quantizer.model.save_model_to_file(tmp, use_external_data_format=False)
    )


def _export_fp32(src: Path, target: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer

    logger.info("exporting %s to ONNX (%s)", src, target)
    tokenizer = AutoTokenizer.from_pretrained(str(src))
    model = AutoModel.from_pretrained(str(src)).eval()

    class _Wrapped(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = tokenizer(["a", "a longer example sentence"], padding=True, return_tensors="pt")
    tmpdir = Path(tempfile.mkdtemp(dir=target.parent))
    try:
        tmp = tmpdir / "model.onnx"
        with torch.no_grad():
            torch.onnx.export(
                _Wrapped(model),
                tuple(sample[name] for name in _INPUTS),
                str(tmp),
                input_names=list(_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "seq"} for n in (*_INPUTS, "last_hidden_state")},
                opset_version=17,
                dynamo=False,
            )
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


class OnnxEncoder:
    """Mean-pooled, L2-normalised sentence vectors from an exported model with ONNX Runtime
    and the model's own fast tokenizer (same truncation as sentence-transformers, or a
    shorter ``max_tokens`` cap)."""

    def __init__(
        self,
        onnx_file: str | Path,
        model_path: str | Path,
        threads: int = 0,
        max_tokens: int | None = None,
        workers: int = 0,
    ) -> None:
        from tokenizers import Tokenizer

        self._onnx_file = str(onnx_file)
        self._threads = threads or (os.cpu_count() or 1)
        #: One single-threaded session per core for batches (made on the first large
        #: encode): independent batches in parallel scale better than one session's
        #: threads splitting each small matrix product (scripts/bench_embed.py).
        self.workers = max(1, int(workers)) if workers else self._threads
        # Queries: one text at a time is as fast on one thread as on two here, at half the
        # CPU (5.3 ms either way, 5 vs 12 ms CPU with two spinning threads while Rasa shares
        # the cores), and the action server runs several shoppers' queries side by side.
        self._session = self._new_session(1)
        self._pool: list[Any] = []
        limit = _max_length(Path(model_path))
        #: Word pieces read per text (``[CLS]`` and ``[SEP]`` included).
        self.max_tokens = min(limit, max_tokens) if max_tokens else limit
        self._tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
        self._tokenizer.no_padding()  # padded here, per batch, to its longest text
        self._tokenizer.enable_truncation(self.max_tokens)
        self._lock = threading.Lock()  # the tokenizer's settings are shared state

    def _new_session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle threads sleep instead of spinning, leaving the cores to Rasa and to each other
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(self._onnx_file, options, providers=["CPUExecutionProvider"])

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Word pieces each text is read as, after truncation."""
        with self._lock:
            return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Vectors for ``texts`` in order. Texts are tokenised once and batched by token
        count, so a batch pads to within a few tokens of its texts."""
        n = len(texts)
        if n == 0:
            return np.zeros((0, 0), dtype=np.float32)
        with self._lock:
            encodings = self._tokenizer.encode_batch(list(texts))
        ids_of = [e.ids for e in encodings]
        order = sorted(range(n), key=lambda i: len(ids_of[i]))
        batches = [order[s : s + batch_size] for s in range(0, n, batch_size)]
        if self.workers > 1 and len(batches) > 1:
            results = self._parallel([[ids_of[i] for i in idx] for idx in batches])
        else:
            results = [self._batch(self._session, [ids_of[i] for i in idx]) for idx in batches]
        out = np.empty((n, results[0].shape[1]), dtype=np.float32)
        for idx, vecs in zip(batches, results, strict=True):
            out[idx] = vecs
        return out

    def _parallel(self, batches: list[list[list[int]]]) -> list[np.ndarray]:
        """``batches`` spread over single-threaded sessions, one thread each (ONNX Runtime
        releases the GIL while it computes)."""
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            while len(self._pool) < self.workers:
                self._pool.append(self._new_session(1))
        pool = self._pool

        def run(worker: int) -> list[tuple[int, np.ndarray]]:
            return [
                (j, self._batch(pool[worker], batches[j]))
                for j in range(worker, len(batches), len(pool))
            ]

        results: list[np.ndarray | None] = [None] * len(batches)
        with ThreadPoolExecutor(len(pool), thread_name_prefix="onnx-embed") as ex:
            for part in ex.map(run, range(len(pool))):
                for j, vecs in part:
                    results[j] = vecs
        return [r for r in results if r is not None]

    @staticmethod
    def _batch(session: Any, rows: list[list[int]]) -> np.ndarray:
        feed = _pad(rows)
        return _pool(session.run(None, feed)[0], feed["attention_mask"])


def _pad(rows: list[list[int]]) -> dict[str, np.ndarray]:
    """The model's inputs for ``rows`` of word-piece ids, padded to the longest."""
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the unpadded tokens, L2-normalised, float32."""
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def openvino_available() -> bool:
    """Whether the optional ``openvino`` package is installed (``pip install .[openvino]``)."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


class OpenVinoEncoder:
    """The exported ONNX model compiled by OpenVINO for the CPU, for bulk (catalog) encoding:
    with ``precision="bf16"`` the matrix products run in bfloat16 on CPUs with AVX-512 BF16 or
    AMX (fp32 elsewhere: OpenVINO ignores the hint). Same tokenisation, token-count batching
    and pooling as :class:`OnnxEncoder`.

    Batches run as asynchronous requests over ``streams`` single-threaded CPU streams
    (independent batches in parallel, as :class:`OnnxEncoder` does with its sessions).
    Measured on 2 Zen 4 cores (scripts/bench_embed.py): 1.8x the products per CPU-second of
    ONNX Runtime fp32 at 0.995 top-10 agreement; 1 stream x 2 threads was slower.
    """

    def __init__(
        self,
        onnx_file: str | Path,
        model_path: str | Path,
        precision: str = "bf16",
        streams: int = 0,
        max_tokens: int | None = None,
    ) -> None:
        import openvino as ov
        from tokenizers import Tokenizer

        self.precision = precision
        self.streams = max(1, int(streams)) if streams else (os.cpu_count() or 1)
        core = ov.Core()
        self._compiled = core.compile_model(
            str(onnx_file),
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": precision,
                "PERFORMANCE_HINT": "THROUGHPUT",
                "NUM_STREAMS": self.streams,
                "INFERENCE_NUM_THREADS": self.streams,
            },
        )
        self._queue = ov.AsyncInferQueue(self._compiled, self.streams)
        limit = _max_length(Path(model_path))
        self.max_tokens = min(limit, max_tokens) if max_tokens else limit
        self._tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self.max_tokens)
        #: One encode at a time: the request queue and its callback are shared.
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """Vectors for ``texts`` in order (texts sorted by token count into batches)."""
        n = len(texts)
        if n == 0:
            return np.zeros((0, 0), dtype=np.float32)
        with self._lock:
            ids_of = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
            order = sorted(range(n), key=lambda i: len(ids_of[i]))
            batches = [order[s : s + batch_size] for s in range(0, n, batch_size)]
            masks: dict[int, np.ndarray] = {}
            results: dict[int, np.ndarray] = {}

            def done(request: Any, j: int) -> None:
                # copied out: the request's output buffer is reused by its next batch
                results[j] = _pool(np.array(request.get_output_tensor(0).data), masks.pop(j))

            self._queue.set_callback(done)
            for j, idx in enumerate(batches):
                feed = _pad([ids_of[i] for i in idx])
                masks[j] = feed["attention_mask"]
                self._queue.start_async(feed, j)
            self._queue.wait_all()
            dim = results[0].shape[1]
            out = np.empty((n, dim), dtype=np.float32)
            for j, idx in enumerate(batches):
                out[idx] = results[j]
            return out
