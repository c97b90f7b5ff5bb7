"""Sentiment package: label mapping, data loading/splitting, output shapes, a tiny training run."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tailor.sentiment import Sentiment, SentimentModel, default_model_path
from tailor.sentiment.data import (
    HELDOUT_EVERY,
    load_shopping,
    load_sst2,
    load_uci,
    sample,
    split_shopping,
)
from tailor.sentiment.model import LABELS, normalize_labels, read_manifest, to_sentiment


# ---------------------------------------------------------------------------- labels
def test_normalize_labels_generic_binary_and_three_class() -> None:
    assert normalize_labels({0: "LABEL_0", 1: "LABEL_1"}) == ["negative", "positive"]
    assert normalize_labels({"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"}) == list(LABELS)


def test_normalize_labels_aliases_and_order() -> None:
    assert normalize_labels({1: "POSITIVE", 0: "NEGATIVE"}) == ["negative", "positive"]
    assert normalize_labels({0: "neg", 1: "neu", 2: "pos"}) == list(LABELS)
    assert normalize_labels({0: "Joy", 1: "Anger"}) == ["joy", "anger"]


def test_to_sentiment_score_is_signed_polarity() -> None:
    s = to_sentiment([0.7, 0.2, 0.1], LABELS)
    assert s.label == "negative"
    assert s.score == pytest.approx(0.1 - 0.7)
    assert s.scores == pytest.approx({"negative": 0.7, "neutral": 0.2, "positive": 0.1})
    assert to_sentiment([0.0, 0.0, 1.0], LABELS).score == 1.0
    binary = to_sentiment([0.25, 0.75], ["negative", "positive"])
    assert (binary.label, binary.score) == ("positive", pytest.approx(0.5))


# ---------------------------------------------------------------------------- data
def test_shopping_set_is_large_varied_and_three_class() -> None:
    rows = load_shopping()
    counts = Counter(label for _, label in rows)
    assert len(rows) >= 450
    assert set(counts) == set(LABELS)
    assert counts["neutral"] >= 150
    texts = [t.lower() for t, _ in rows]
    assert len(set(texts)) == len(texts), "duplicate texts"
    for text, label in [
        ("too pricey", "negative"),
        ("love it", "positive"),
        ("meh", "negative"),
        ("not my style", "negative"),
        ("perfect for my wife", "positive"),
    ]:
        assert (text, label) in rows


def test_shopping_split_is_deterministic_and_disjoint() -> None:
    rows = load_shopping()
    train, heldout = split_shopping(rows)
    assert split_shopping(rows) == (train, heldout)
    assert len(train) + len(heldout) == len(rows)
    assert len(heldout) == len(rows) // HELDOUT_EVERY
    assert heldout[0] == rows[HELDOUT_EVERY - 1]
    assert not set(train) & set(heldout)
    assert {label for _, label in heldout} == set(LABELS)


def test_load_shopping_rejects_unknown_label(tmp_path: Path) -> None:
    f = tmp_path / "bad.tsv"
    f.write_text("text\tlabel\nfine\tneutral\nwhat\tangry\n", encoding="utf-8")
    with pytest.raises(ValueError, match="angry"):
        load_shopping(f)


def test_binary_loaders_skip_headers_and_keep_nel(tmp_path: Path) -> None:
    sst = tmp_path / "sst2"
    sst.mkdir()
    (sst / "train.tsv").write_text("text\tlabel\ngood film \t1\nbad film\t0\n", encoding="utf-8")
    (sst / "dev.tsv").write_text("text\tlabel\nfine\t1\n", encoding="utf-8")
    assert load_sst2(tmp_path) == [("good film", "positive"), ("bad film", "negative")]
    assert load_sst2(sst / "train.tsv", "dev") == [("fine", "positive")]
    uci = tmp_path / "uci"
    uci.mkdir()
    (uci / "yelp_labelled.txt").write_text(
        "sentence\tscore\r\nGreat\u0085 food.\t1\r\nMeh.\t0\r\n", encoding="utf-8"
    )
    assert load_uci(tmp_path) == [("Great\u0085 food.", "positive"), ("Meh.", "negative")]


def test_sample_is_seeded() -> None:
    rows = [(str(i), "positive") for i in range(100)]
    assert sample(rows, 10, 1) == sample(rows, 10, 1)
    assert sample(rows, 10, 1) != sample(rows, 10, 2)
    assert len(sample(rows, None, 1)) == 100


# ---------------------------------------------------------------------------- model API
class _FakeTokenizer:
    def __call__(self, texts: list[str], **_: object) -> dict:
        import torch

        n = len(texts)
        return {
            "input_ids": torch.tensor([[len(t)] for t in texts]),
            "attention_mask": torch.ones(n, 1, dtype=torch.long),
        }


def _fake_module():  # logits from the text length: short → negative, long → positive
    import torch

    class Fake(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            x = input_ids.float()
            return torch.cat([10 - x, torch.zeros_like(x), x - 10], dim=1)

    return Fake()


def test_output_is_shaped_like_input() -> None:
    model = SentimentModel.from_module(_fake_module(), _FakeTokenizer(), LABELS, batch_size=2)
    one = model("tiny")
    assert isinstance(one, Sentiment) and one.label == "negative"
    many = model(["tiny", "a much longer sentence here", "abc"])
    assert isinstance(many, list) and len(many) == 3
    assert [s.label for s in many] == ["negative", "positive", "negative"]
    assert model([]) == []
    assert model(("x",))[0].label == "negative"
    for s in many:
        assert -1.0 <= s.score <= 1.0
        assert sum(s.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert model.predict_proba(["a", "bb"]).shape == (2, 3)


def test_load_is_lazy_and_checks_path(tmp_path: Path) -> None:
    model = SentimentModel.load(default_model_path())
    assert not model.loaded
    with pytest.raises(FileNotFoundError):
        SentimentModel.load(tmp_path / "missing")


def test_import_does_not_load_torch() -> None:
    import subprocess

    code = (
        "import sys, tailor.sentiment, tailor.sentiment.model, tailor.sentiment.data;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_shipped_manifest_describes_adapter() -> None:
    manifest = read_manifest(default_model_path())
    assert manifest is not None, "the shipped adapter is missing"
    assert manifest["labels"] == list(LABELS)
    weights = default_model_path() / manifest["weights"]
    assert weights.is_file() and weights.stat().st_size < 1_000_000
    assert {"sst2_dev", "uci", "shopping_heldout"} <= set(manifest["metrics"])
    json.dumps(manifest)


# ---------------------------------------------------------------------------- training
@pytest.mark.slow
def test_tiny_training_run_writes_a_loadable_adapter(tmp_path: Path) -> None:
    from tailor.sentiment import evaluate, train

    sst = tmp_path / "sst2"
    sst.mkdir()
    lines = ["text\tlabel"] + [f"a wonderful film number {i}\t1" for i in range(30)]
    lines += [f"a dreadful film number {i}\t0" for i in range(30)]
    (sst / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = train(
        tmp_path / "out",
        sst,
        max_sst2=60,
        shopping_repeat=1,
        max_steps=1,
        batch_size=8,
        evaluate_on={},
        progress=False,
    )
    assert report.steps == 1
    assert report.examples["sst2"] == 60
    assert "shopping_heldout" in report.metrics
    manifest = read_manifest(tmp_path / "out")
    assert manifest is not None and manifest["training"]["steps"] == 1
    model = SentimentModel.load(tmp_path / "out")
    result = model(["love it", "too pricey"])
    assert len(result) == 2 and all(isinstance(s, Sentiment) for s in result)
    probs = model.predict_proba(["ok"])
    assert np.isfinite(probs).all() and probs.sum() == pytest.approx(1.0, abs=1e-5)
    acc = evaluate(model, [("love it", "positive"), ("meh", "negative")])
    assert 0.0 <= acc <= 1.0


def test_package_functions_survive_importing_their_modules() -> None:
    """``tailor.sentiment.train``/``evaluate`` must stay functions, whatever was imported."""
    import importlib

    import tailor.sentiment as pkg

    importlib.import_module("tailor.sentiment.training")
    importlib.import_module("tailor.sentiment.evaluation")
    assert callable(pkg.train) and callable(pkg.evaluate)
