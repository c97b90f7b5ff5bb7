"""The shipped sentiment adapter: accuracy targets and a few shopping reactions (slow)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tailor.config import PROJECT_ROOT
from tailor.sentiment import SentimentModel, default_model_path, evaluate
from tailor.sentiment.data import load_shopping, load_sst2, load_uci, split_shopping

pytestmark = pytest.mark.slow

SHARED = Path(os.environ.get("TAILOR_SHARED_DATA") or PROJECT_ROOT.parent / "shared" / "data")
SENTIMENT = SHARED / "sentiment"
needs_shared = pytest.mark.skipif(
    not (SENTIMENT / "sst2" / "dev.tsv").is_file() or not (SENTIMENT / "uci").is_dir(),
    reason=f"SST-2 dev / UCI sentences not found under {SENTIMENT} (set TAILOR_SHARED_DATA)",
)


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    m = SentimentModel.load(default_model_path())
    m("warm up")
    return m


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("too pricey", "negative"),
        ("love it", "positive"),
        ("what sizes do you have", "neutral"),
        ("not my style", "negative"),
        ("perfect for my wife", "positive"),
    ],
)
def test_shopping_reactions(model: SentimentModel, text: str, label: str) -> None:
    result = model(text)
    assert result.label == label, result
    if label == "negative":
        assert result.score < 0
    elif label == "positive":
        assert result.score > 0


def test_shopping_heldout_accuracy(model: SentimentModel) -> None:
    _, heldout = split_shopping(load_shopping())
    assert evaluate(model, heldout, binary=False) >= 0.8


@needs_shared
def test_sst2_dev_accuracy(model: SentimentModel) -> None:
    assert evaluate(model, load_sst2(SENTIMENT, "dev")) >= 0.85


@needs_shared
def test_uci_accuracy(model: SentimentModel) -> None:
    assert evaluate(model, load_uci(SENTIMENT)) >= 0.85
