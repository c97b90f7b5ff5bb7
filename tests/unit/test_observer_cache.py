"""The observer's sentiment cache: a text recurring (a quick reply, "cheaper") is scored once,
callers cannot corrupt the cached answer, and the cache stays bounded."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

import tailor.profiles.observer as observer_module
from tailor.profiles.observer import Observer
from tailor.sentiment.model import to_sentiment
from tailor.store import make_session_factory

LABELS = ["negative", "neutral", "positive"]


class CountingModel:
    """A deterministic stand-in for the scoring function: polarity from the text's length."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.batches: list[list[str]] = []

    def __call__(self, texts: str | list[str]) -> object:
        """One text → its sentiment; a list → a list (as SentimentModel); ``batches``
        records each call's texts."""
        items = [texts] if isinstance(texts, str) else list(texts)
        self.calls.extend(items)
        self.batches.append(items)
        out = [
            to_sentiment([(len(t) % 7) / 10, 0.1, 0.9 - (len(t) % 7) / 10], LABELS) for t in items
        ]
        return out[0] if isinstance(texts, str) else out


def observer(model: CountingModel, size: int = observer_module.SCORE_CACHE_SIZE) -> Observer:
    return Observer(
        make_session_factory("sqlite://"), None, sentiment_model=model, score_cache_size=size
    )


def test_a_repeated_text_is_scored_once() -> None:
    model = CountingModel()
    obs = observer(model)
    first = obs.score("cheaper please")
    again = obs.score("  cheaper please ")
    assert first == again and model.calls == ["cheaper please"]
    assert obs.score("/affirm") is None and obs.score("  ") is None
    assert model.calls == ["cheaper please"]


def test_callers_cannot_change_the_cached_answer() -> None:
    obs = observer(CountingModel())
    first = obs.score("too expensive")
    assert first is not None
    first.scores["negative"] = 99.0
    again = obs.score("too expensive")
    assert again is not None and again.scores["negative"] != 99.0


def test_the_cache_is_bounded_and_keeps_recent_texts() -> None:
    model = CountingModel()
    obs = observer(model, size=3)
    texts: Sequence[str] = ["a", "bb", "ccc"]
    for t in texts:
        obs.score(t)
    obs.score("a")  # "a" is now the most recent: "bb" goes first
    obs.score("dddd")
    assert len(obs._scores) == 3
    model.calls.clear()
    for t in ("a", "ccc", "dddd", "bb"):
        obs.score(t)
    assert model.calls == ["bb"]


def test_without_the_cache_every_message_is_scored() -> None:
    """``text_caches = false`` (``tailor bench --cold-caches``): each message pays the model,
    with the same answer the cache would give."""
    cached, cold = CountingModel(), CountingModel()
    warm_obs, cold_obs = observer(cached), observer(cold, size=0)
    for _ in range(3):
        assert cold_obs.score("too pricey") == warm_obs.score("too pricey")
    assert cold.calls == ["too pricey"] * 3 and cached.calls == ["too pricey"]
    assert len(cold_obs._scores) == 0
    with pytest.raises(ValueError, match="score_cache_size"):
        observer(CountingModel(), size=-1)


def test_many_texts_are_scored_in_one_call_as_one_by_one() -> None:
    """score_many against score, text by text: same answers, cached and empty texts skipped,
    a repeated text scored once, one model call for the rest."""
    texts = ["cheaper", "  ", "love these", "/affirm", "cheaper", "too pricey", "love these"]
    reference = observer(CountingModel())
    expected = [reference.score(t) for t in texts]
    model = CountingModel()
    obs = observer(model)
    obs.score("too pricey")
    assert obs.score_many(texts) == expected
    assert model.batches == [["too pricey"], ["cheaper", "love these"]]


def test_submitted_messages_are_scored_in_the_models_thread() -> None:
    model = CountingModel()
    obs = observer(model)
    futures = [obs.submit_score(t) for t in ["great", "awful", "", "great"]]
    results = [f.result(timeout=10) for f in futures]
    assert results == [observer(CountingModel()).score(t) for t in ["great", "awful", "", "great"]]
    assert sorted(set(model.calls)) == ["awful", "great"]


def test_a_broken_model_gives_no_sentiment_and_the_conversation_goes_on() -> None:
    def broken(texts: object) -> object:
        raise RuntimeError("model file damaged")

    obs = Observer(make_session_factory("sqlite://"), None, sentiment_model=broken)
    assert obs.submit_score("hello there").result(timeout=10) is None
    assert obs.safe_score_many(["a", "b"]) == [None, None]
