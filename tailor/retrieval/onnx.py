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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OnnxEncoder", "export_onnx", "supports_onnx"]

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


def export_onnx(model_path: str | Path, out_dir: str | Path, quantize: bool = False) -> Path:
    """Export the model to ``out_dir/model.onnx`` (and ``model-int8.onnx`` with
    ``quantize``) unless an export of this version is already there; returns the file to
    load. Runs offline from the local weights; the write is atomic."""
    src = Path(model_path)
    out = Path(out_dir)
    target = out / ("model-int8.onnx" if quantize else "model.onnx")
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
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=out)
        os.close(fd)
        # per-channel int8 weights of the matrix products only: the embedding lookup and
        # the rest stay fp32 (measured: top-10 agreement 0.93 vs 0.87 for the default)
        quantize_dynamic(
            str(fp32),
            tmp,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
        os.replace(tmp, target)
    stamp.write_text(json.dumps({"version": EXPORT_VERSION, "source": str(src)}), "utf-8")
    return target


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
    and the model's own fast tokenizer (same truncation as sentence-transformers)."""

    def __init__(self, onnx_file: str | Path, model_path: str | Path, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
        self._tokenizer.enable_truncation(_max_length(Path(model_path)))
        self._lock = threading.Lock()  # the tokenizer's padding state is shared

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Vectors for ``texts`` in order; batches are formed from texts of similar length
        so padding stays short."""
        n = len(texts)
        out: np.ndarray | None = None
        order = sorted(range(n), key=lambda i: len(texts[i]))
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            vecs = self._batch([texts[i] for i in idx])
            if out is None:
                out = np.empty((n, vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def _batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            self._tokenizer.enable_padding()
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        hidden = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
