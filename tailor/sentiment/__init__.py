"""Sentiment of shopping-chat messages: negative / neutral / positive with a signed score.

>>> model = SentimentModel.load()          # the shipped adapter; nothing read yet
>>> model("too pricey").label               # doctest: +SKIP
'negative'

The default model (:func:`default_model_path`) is a LoRA adapter + linear head over the
MiniLM encoder, trained by :func:`train`; any Hugging Face sequence-classification model
directory can be loaded instead. :func:`score_reviews` scores the catalog's reviews with it and
stores each product's mean review sentiment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tailor.sentiment.model import Sentiment, SentimentModel
from tailor.sentiment.reviews import ReviewScoreReport, score_reviews

__all__ = [
    "ReviewScoreReport",
    "Sentiment",
    "SentimentModel",
    "default_model_path",
    "evaluate",
    "model_for",
    "score_reviews",
    "train",
]

#: The adapter shipped in the repository.
SHIPPED_WEIGHTS = Path(__file__).resolve().parent / "weights"


def model_for(settings: Any, path: str | Path | None = None, bulk: bool = False) -> SentimentModel:
    """The sentiment model as configured: ``path`` (default :func:`default_model_path`) on
    the configured encoder and backend, ONNX exports in ``<models_dir>/onnx``. ``bulk``
    (scoring many texts, e.g. reviews) uses every core; otherwise one thread per call."""
    return SentimentModel.load(
        path if path is not None else default_model_path(),
        encoder_path=settings.embedding_model,
        backend=settings.sentiment_backend,
        cache_dir=Path(str(settings.models_dir)) / "onnx",
        threads=0 if bulk else 1,
    )


def default_model_path() -> Path:
    """``$TAILOR_SENTIMENT_MODEL`` if set, else the shipped adapter directory."""
    configured = os.environ.get("TAILOR_SENTIMENT_MODEL")
    return Path(configured) if configured else SHIPPED_WEIGHTS


def train(*args: Any, **kwargs: Any) -> Any:
    """See :func:`tailor.sentiment.training.train` (imported lazily: it pulls in torch)."""
    from tailor.sentiment.training import train as _train

    return _train(*args, **kwargs)


def evaluate(*args: Any, **kwargs: Any) -> float:
    """See :func:`tailor.sentiment.evaluation.evaluate`."""
    from tailor.sentiment.evaluation import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
