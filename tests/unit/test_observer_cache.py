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

    def __call__(self, text: str) -> object:
        self.calls.append(text)
        neg = (len(text) % 7) / 10
        return to_sentiment([neg, 0.1, 0.9 - neg], LABELS)


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
