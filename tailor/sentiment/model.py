"""Three-class sentiment (negative / neutral / positive) over a transformers encoder.

Two kinds of model directory are understood by :meth:`SentimentModel.load`:

* a full Hugging Face sequence-classification model (``config.json`` + weights), loaded with
  ``AutoModelForSequenceClassification``; its labels come from ``config.id2label``;
* our adapter directory (``manifest.json`` with ``"format": "tailor-sentiment-lora"``): the
  frozen MiniLM encoder (read from the configured encoder path), low-rank adapters (LoRA) on
  its linear layers and a linear head over mean-pooled tokens. Only the adapter and head
  weights are stored (``adapter.safetensors``, a few hundred kilobytes).

Nothing is loaded at import or construction; the model is read on the first call.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np

logger = logging.getLogger(__name__)

#: ``manifest.json`` ``format`` value of an adapter directory.
ADAPTER_FORMAT = "tailor-sentiment-lora"
#: File holding the LoRA and head weights of an adapter directory.
ADAPTER_WEIGHTS = "adapter.safetensors"
#: Canonical class names, in the order the adapter head predicts them.
LABELS: tuple[str, ...] = ("negative", "neutral", "positive")

#: Inference backends: "torch", "onnx" (an adapter exported once with its LoRA merged;
#: several times faster per message on these cores, same probabilities to float rounding)
#: or "onnx-int8" (that export with int8 matrix products: about half its CPU per message,
#: probabilities within rounding of a few hundredths) or "onnx-q8" (block-wise int8 weights,
#: one scale per 32: a third less time per message than fp32 and the same accuracy on the
#: evaluation sets, where "onnx-int8" loses three points on the shopping reactions; see
#: docs/benchmarks.md).
BACKENDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8", "onnx-q8")
ONNX_BACKENDS = frozenset({"onnx", "onnx-int8", "onnx-q8"})

#: Label spellings of other models mapped onto the canonical names.
_ALIASES = {
    "neg": "negative",
    "negative": "negative",
    "neu": "neutral",
    "neutral": "neutral",
    "pos": "positive",
    "positive": "positive",
}


@dataclass(frozen=True)
class Sentiment:
    """One prediction: the winning ``label``, a signed polarity ``score`` in [-1, 1]
    (``p(positive) - p(negative)``) and every class probability in ``scores``."""

    label: str
    score: float
    scores: dict[str, float] = field(default_factory=dict)


def normalize_labels(id2label: dict[Any, str]) -> list[str]:
    """Class names in index order, mapped to negative/neutral/positive where recognisable.

    ``LABEL_0``/``LABEL_1`` of a binary model become negative/positive, and those of a
    three-class model negative/neutral/positive (the usual order); other names are kept,
    lower-cased.
    """
    ordered = [str(id2label[k]) for k in sorted(id2label, key=lambda k: int(k))]
    generic = all(name.upper() == f"LABEL_{i}" for i, name in enumerate(ordered))
    if generic and len(ordered) == 2:
        return ["negative", "positive"]
    if generic and len(ordered) == 3:
        return list(LABELS)
    return [_ALIASES.get(name.lower(), name.lower()) for name in ordered]


def to_sentiment(probs: Sequence[float], labels: Sequence[str]) -> Sentiment:
    """A :class:`Sentiment` from one row of class probabilities."""
    scores = {label: float(p) for label, p in zip(labels, probs, strict=True)}
    best = max(range(len(labels)), key=lambda i: probs[i])
    polarity = scores.get("positive", 0.0) - scores.get("negative", 0.0)
    return Sentiment(labels[best], float(min(1.0, max(-1.0, polarity))), scores)


# ---------------------------------------------------------------------------- LoRA
def _torch() -> Any:
    import torch

    return torch


class _LoRALinear:  # namespace for the lazily built torch class
    cls: Any = None


def lora_linear_class() -> Any:
    """``LoRALinear(base, r, alpha, dropout)``: ``base(x) + (B A x) * alpha / r``.

    Built on first use so that importing this module does not import torch.
    """
    if _LoRALinear.cls is None:
        torch = _torch()
        nn = torch.nn

        class LoRALinear(nn.Module):  # type: ignore[name-defined]  # nn is torch.nn, bound lazily
            def __init__(self, base: Any, r: int, alpha: float, dropout: float = 0.0) -> None:
                super().__init__()
                self.base = base
                self.r = r
                self.scaling = alpha / r
                self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
                self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
                nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
                self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

            def forward(self, x: Any) -> Any:
                delta = self.dropout(x) @ self.lora_A.t() @ self.lora_B.t()
                return self.base(x) + delta * self.scaling

        _LoRALinear.cls = LoRALinear
    return _LoRALinear.cls


def apply_lora(
    encoder: Any, targets: Sequence[str], r: int, alpha: float, dropout: float = 0.0
) -> list[str]:
    """Freeze ``encoder`` and wrap its ``encoder.layer.*`` linear layers whose name ends
    with one of ``targets`` (dot-separated suffixes such as ``"attention.self.query"``).

    Returns the wrapped module names.
    """
    torch = _torch()
    cls = lora_linear_class()
    for p in encoder.parameters():
        p.requires_grad_(False)
    wrapped = []
    for name, module in list(encoder.named_modules()):
        if not isinstance(module, torch.nn.Linear) or not name.startswith("encoder.layer."):
            continue
        if not any(name == t or name.endswith("." + t) for t in targets):
            continue
        parent_name, _, child = name.rpartition(".")
        parent = encoder.get_submodule(parent_name)
        setattr(parent, child, cls(module, r, alpha, dropout))
        wrapped.append(name)
    if not wrapped:
        raise ValueError(f"no linear layer of the encoder matches {list(targets)}")
    return wrapped


class _Classifier:
    cls: Any = None


def classifier_class() -> Any:
    """``LoRAClassifier(encoder, n_labels, dropout)``: mean-pooled encoder tokens → linear."""
    if _Classifier.cls is None:
        torch = _torch()
        nn = torch.nn

        class LoRAClassifier(nn.Module):  # type: ignore[name-defined]
            def __init__(self, encoder: Any, n_labels: int, dropout: float = 0.1) -> None:
                super().__init__()
                self.encoder = encoder
                self.dropout = nn.Dropout(dropout)
                self.head = nn.Linear(encoder.config.hidden_size, n_labels)

            def forward(self, input_ids: Any, attention_mask: Any, **_: Any) -> Any:
                out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
                tokens = out.last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
                pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return self.head(self.dropout(pooled))

            def trainable_state_dict(self) -> dict[str, Any]:
                """Only the LoRA and head tensors (what an adapter directory stores)."""
                names = {n for n, p in self.named_parameters() if p.requires_grad}
                return {k: v for k, v in self.state_dict().items() if k in names}

        _Classifier.cls = LoRAClassifier
    return _Classifier.cls


def build_classifier(
    encoder_path: str | Path,
    lora: dict[str, Any],
    n_labels: int = len(LABELS),
    dropout: float = 0.1,
) -> Any:
    """MiniLM (or another BERT-like encoder) from ``encoder_path`` with fresh LoRA + head."""
    _offline()
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the unused pooler weights are not worth a warning
    try:
        encoder = AutoModel.from_pretrained(str(encoder_path), add_pooling_layer=False)
    except TypeError:  # an encoder class without a pooler argument
        encoder = AutoModel.from_pretrained(str(encoder_path))
    finally:
        hf_logging.set_verbosity(verbosity)
    apply_lora(
        encoder,
        lora["targets"],
        int(lora["r"]),
        float(lora["alpha"]),
        float(lora.get("dropout", 0.0)),
    )
    return classifier_class()(encoder, n_labels, dropout)


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    """The adapter manifest of ``path``, or ``None`` if ``path`` is not an adapter directory."""
    f = Path(path) / "manifest.json"
    if not f.is_file():
        return None
    data = json.loads(f.read_text(encoding="utf-8"))
    return data if data.get("format") == ADAPTER_FORMAT else None


# ---------------------------------------------------------------------------- model
class SentimentModel:
    """Callable sentiment classifier: ``model("love it")`` → :class:`Sentiment`,
    ``model(["too pricey", "ok"])`` → a list of them.

    Build it with :meth:`load` (lazy: the weights are read on the first call) or
    :meth:`from_module` (an in-memory torch module, e.g. right after training).
    Safe to share between threads.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        encoder_path: str | Path | None = None,
        batch_size: int = 32,
        max_length: int = 128,
        device: str = "cpu",
        backend: str = "torch",
        cache_dir: str | Path | None = None,
        threads: int = 1,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown sentiment backend {backend!r}; valid: {list(BACKENDS)}")
        self.backend = backend
        #: ONNX Runtime threads (0 = every core): 1 for one message at a time, 0 for bulk.
        self.threads = int(threads)
        self.cache_dir = Path(cache_dir) if cache_dir else Path.home() / ".cache/tailor/onnx"
        self.path = None if path is None else str(path)
        self.encoder_path = None if encoder_path is None else str(encoder_path)
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self.device = device
        self._module: Any = None
        self._tokenizer: Any = None
        self._labels: list[str] | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"SentimentModel({self.path!r})"

    @classmethod
    def load(cls, path: str | Path | None = None, **kwargs: Any) -> SentimentModel:
        """A model over ``path`` (default: the shipped adapter, :func:`default_model_path`).

        ``path`` is an adapter directory (``manifest.json``) or any Hugging Face
        sequence-classification model directory. ``encoder_path`` overrides the encoder an
        adapter applies to (default: the configured embedding model).
        """
        if path is None:
            from tailor.sentiment import default_model_path

            path = default_model_path()
        if not Path(path).exists():
            raise FileNotFoundError(f"no sentiment model at {path}")
        return cls(path, **kwargs)

    @classmethod
    def from_module(
        cls, module: Any, tokenizer: Any, labels: Sequence[str], **kwargs: Any
    ) -> SentimentModel:
        """Wrap an in-memory module returning logits from ``input_ids``/``attention_mask``."""
        model = cls(None, **kwargs)
        model._module, model._tokenizer, model._labels = module, tokenizer, list(labels)
        return model

    # ------------------------------------------------------------------ loading
    @property
    def loaded(self) -> bool:
        return self._module is not None

    @property
    def labels(self) -> list[str]:
        """Class names in the order of the model's outputs."""
        self._load()
        assert self._labels is not None
        return list(self._labels)

    def prepare(self) -> bool:
        """Make the ONNX export now if this model uses one and it is missing (True when it
        was made). Lets `tailor run` pay the one-off export before any shopper comes."""
        if self.backend not in ONNX_BACKENDS or self.path is None:
            return False
        manifest = read_manifest(self.path)
        if manifest is None:
            return False
        if self._onnx_files()[1].exists():
            return False
        self._load()
        return True

    def _load(self) -> None:
        if self._module is not None:  # loaded: no lock on the hot path
            return
        with self._lock:
            if self._module is not None:
                return
            if self.path is None:
                raise RuntimeError("SentimentModel has neither a path nor a module")
            _offline()
            manifest = read_manifest(self.path)
            if manifest is not None and self.backend in ONNX_BACKENDS:
                self._load_onnx(manifest)
                return
            torch = _torch()
            from transformers import AutoTokenizer

            if manifest is not None:
                module, tokenizer, labels = self._load_adapter(manifest)
            else:
                from transformers import AutoModelForSequenceClassification

                logger.info("loading sentiment model %s", self.path)
                module = AutoModelForSequenceClassification.from_pretrained(self.path)
                tokenizer = AutoTokenizer.from_pretrained(self.path)
                labels = normalize_labels(module.config.id2label)
            module.to(self.device).eval()
            if torch.get_num_threads() > (os.cpu_count() or 1):
                torch.set_num_threads(os.cpu_count() or 1)
            self._tokenizer, self._labels, self._module = tokenizer, labels, module

    def _encoder_path(self) -> str:
        if self.encoder_path is None:
            from tailor.config import Settings

            self.encoder_path = Settings.load().embedding_model
        return self.encoder_path

    def _load_onnx(self, manifest: dict[str, Any]) -> None:
        """Use (exporting first if needed) the adapter's ONNX export; no torch once exported."""
        from tailor.sentiment.onnx import (
            OnnxClassifier,
            export_classifier,
            merge_lora,
            write_stamp,
        )

        assert self.path is not None
        encoder_path = self._encoder_path()
        fp32, target = self._onnx_files()
        labels = list(manifest["labels"])
        max_length = int(manifest.get("max_length", self.max_length))
        if not fp32.exists():
            module, tokenizer, labels = self._load_adapter(manifest)
            merged = merge_lora(module)
            logger.info("exporting sentiment model (%d LoRA layers merged) to %s", merged, fp32)
            export_classifier(module, tokenizer, fp32)
            write_stamp(fp32, self.path, encoder_path)
        if not target.exists():
            from tailor.retrieval.onnx import quantisation_of, write_quantised

            logger.info("quantising the sentiment model (%s): %s", self.backend, target)
            write_quantised(quantisation_of(self.backend), fp32, target)
        self.max_length = max_length
        self._tokenizer = None
        self._labels = labels
        self._module = OnnxClassifier(target, encoder_path, max_length, threads=self.threads)

    def _onnx_files(self) -> tuple[Path, Path]:
        """The fp32 export and the ONNX file this model's backend runs (the same file but
        for a quantised backend); either may not exist yet. The key hashes the encoder's
        weights: computed once per call."""
        from tailor.sentiment.onnx import onnx_file_for

        assert self.path is not None
        fp32 = onnx_file_for(self.cache_dir, self.path, self._encoder_path())
        from tailor.retrieval.onnx import quantisation_of

        kind = quantisation_of(self.backend)
        return (fp32, fp32.with_name(f"{fp32.stem}-{kind}.onnx")) if kind else (fp32, fp32)

    def _load_adapter(self, manifest: dict[str, Any]) -> tuple[Any, Any, list[str]]:
        from safetensors.torch import load_file
        from transformers import AutoTokenizer

        encoder_path = self._encoder_path()
        logger.info("loading sentiment adapter %s on encoder %s", self.path, encoder_path)
        labels = list(manifest["labels"])
        module = build_classifier(encoder_path, manifest["lora"], len(labels))
        state = load_file(str(Path(str(self.path)) / manifest.get("weights", ADAPTER_WEIGHTS)))
        state = {k: v.float() for k, v in state.items()}
        missing, unexpected = module.load_state_dict(state, strict=False)
        expected = {n for n, p in module.named_parameters() if p.requires_grad}
        if unexpected or expected & set(missing):
            raise ValueError(
                f"adapter {self.path} does not fit the encoder {encoder_path}: "
                f"missing {sorted(expected & set(missing))[:5]}, unexpected {unexpected[:5]}"
            )
        self.max_length = int(manifest.get("max_length", self.max_length))
        return module, AutoTokenizer.from_pretrained(str(encoder_path)), labels

    # ------------------------------------------------------------------ inference
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape ``(len(texts), len(labels))``, float32."""
        items = [str(t) for t in texts]
        self._load()
        assert self._labels is not None
        out = np.zeros((len(items), len(self._labels)), dtype=np.float32)
        if not items:
            return out
        order = sorted(range(len(items)), key=lambda i: len(items[i]))  # less padding
        from tailor.sentiment.onnx import OnnxClassifier

        if isinstance(self._module, OnnxClassifier):
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                out[idx] = self._module.predict_proba([items[i] for i in idx])
            return out
        torch = _torch()
        with self._lock, torch.inference_mode():
            was_training = self._module.training
            self._module.eval()
            try:
                for start in range(0, len(order), self.batch_size):
                    idx = order[start : start + self.batch_size]
                    enc = self._tokenizer(
                        [items[i] for i in idx],
                        padding=True,
                        truncation=True,
                        max_length=self.max_length,
                        return_tensors="pt",
                    )
                    enc = {k: v.to(self.device) for k, v in enc.items()}
                    logits = self._module(**enc)
                    logits = getattr(logits, "logits", logits)
                    out[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            finally:
                self._module.train(was_training)
        return out

    @overload
    def __call__(self, texts: str) -> Sentiment: ...  # type: ignore[overload-overlap]

    @overload
    def __call__(self, texts: Sequence[str]) -> list[Sentiment]: ...

    def __call__(self, texts: str | Sequence[str]) -> Sentiment | list[Sentiment]:
        """Classify one text (→ :class:`Sentiment`) or a sequence (→ list, same order)."""
        single = isinstance(texts, str)
        items: list[str] = [texts] if isinstance(texts, str) else [str(t) for t in texts]
        probs = self.predict_proba(items)
        labels = self.labels
        results = [to_sentiment(row.tolist(), labels) for row in probs]
        return results[0] if single else results
