"""The evaluation plumbing on tiny fixtures with hand-computed values: scope counting,
constraint scoring, Rasa report reading, sentiment scoring, lexical persistence and the
hybrid score rescaling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tailor.evaluation.nlu import prepare_cv_data, read_reports
from tailor.evaluation.scope import (
    ShoppingRequest,
    gets_suggestions,
    handled_as_request,
    load_clinc,
    load_shopping_requests,
    run_scope_eval,
    score_understanding,
)
from tailor.evaluation.sentiment import score_rows
from tailor.nlu.understand import QueryUnderstanding
from tailor.nlu.vocab import Vocabulary
from tailor.retrieval.engine import Hit
from tailor.retrieval.hybrid import rescale
from tailor.retrieval.lexical import LexicalIndex, open_lexical

CARDS = [{"text": "Here you go"}, {"custom": {"type": "product_cards", "products": [{"id": 1}]}}]
NO_MATCH = [{"text": "I couldn't find anything for umbrellas. I could look with…"}]
OTHER = [{"text": "I can only help with shopping."}]


def test_reply_classification() -> None:
    assert gets_suggestions(CARDS) and handled_as_request(CARDS)
    assert not gets_suggestions(NO_MATCH) and handled_as_request(NO_MATCH)
    assert not gets_suggestions(OTHER) and not handled_as_request(OTHER)
    assert not gets_suggestions([{"custom": {"products": []}}])


def test_scope_counts_by_hand() -> None:
    replies = {"weather?": OTHER, "joke": CARDS, "boots": CARDS, "umbrella": NO_MATCH, "x": OTHER}

    def say(sender: str, text: str) -> list[dict[str, Any]]:
        assert sender.startswith("eval-scope-")
        return replies[text]

    non = [("utility", "weather?"), ("small_talk", "joke")]
    shop = [ShoppingRequest("boots", "short"), ShoppingRequest("umbrella", "short")]
    shop.append(ShoppingRequest("x", "sentence"))
    seen: list[tuple[int, int]] = []
    report = run_scope_eval(say, non, shop, workers=2, progress=lambda d, t: seen.append((d, t)))
    assert report.non_shopping == {"utility": (0, 1), "small_talk": (1, 1)}
    assert report.wrong_suggestion_rate == 0.5
    assert report.shopping == {"short": (2, 2), "sentence": (0, 1)}
    assert report.shopping_cards == {"short": (1, 2), "sentence": (0, 1)}
    assert report.recognised_rate == pytest.approx(2 / 3)
    assert report.suggested_rate == pytest.approx(1 / 3)
    assert report.wrong == [("small_talk", "joke")] and report.missed == [("sentence", "x")]
    assert seen[-1] == (5, 5)
    assert "**50.0%**" in report.markdown()


def test_the_shipped_shopping_set_loads() -> None:
    rows = load_shopping_requests()
    assert len(rows) >= 300
    assert {r.style for r in rows} == {"sentence", "short", "typo", "constraint"}
    assert len({r.text.lower() for r in rows}) == len(rows)
    with_max = [r for r in rows if r.price_max is not None]
    assert with_max and all(r.price_max > 0 for r in with_max)  # type: ignore[operator]


def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tstyle\n\tshort\n", encoding="utf-8")
    with pytest.raises(ValueError, match="row 2"):
        load_shopping_requests(bad)
    clinc = tmp_path / "c.json"
    clinc.write_text(json.dumps({"train": []}), encoding="utf-8")
    with pytest.raises(ValueError, match="CLINC150"):
        load_clinc(clinc)


def test_constraint_scoring_by_hand() -> None:
    vocab = Vocabulary(
        brands=["Salomon", "Nike"], colours=["red"], categories=["Shoes > Hiking Boots"]
    )
    qu = QueryUnderstanding(vocab, {"hiking": 3, "boots": 3}, {"please"})
    rows = [
        ShoppingRequest(
            "hiking boots under 120, not Salomon",
            "constraint",
            "Hiking Boots",
            exclude_brand="Salomon",
            price_max=120.0,
        ),
        ShoppingRequest("red nike boots", "short", "Hiking Boots", brand="Nike", colour="red"),
        ShoppingRequest("anything nice", "sentence"),  # nothing stated
        ShoppingRequest("hikng boots in red", "typo", "Hiking Boots"),  # colour not labelled
    ]
    rep = score_understanding(qu.understand, rows, vocab.category_for)
    assert rep.fields["product type"] == (3, 3, 0)
    assert rep.fields["excluded brand"] == (1, 1, 0)
    assert rep.fields["brand"] == (1, 1, 0)
    assert rep.fields["price max"] == (1, 1, 0)
    assert rep.fields["price min"] == (0, 0, 0)
    # one unlabelled colour was extracted: a false positive
    assert rep.fields["colour"] == (1, 1, 1)
    assert rep.corrections["hikng→hiking"] == 1


def test_rasa_reports_are_read(tmp_path: Path) -> None:
    intent = {
        "greet": {"precision": 1.0, "recall": 0.5, "f1-score": 2 / 3, "support": 2},
        "deny": {"precision": 0.5, "recall": 1.0, "f1-score": 2 / 3, "support": 1},
        "accuracy": 2 / 3,
        "macro avg": {"precision": 0.75, "recall": 0.75, "f1-score": 2 / 3, "support": 3},
        "weighted avg": {"precision": 0.8, "recall": 0.7, "f1-score": 0.7, "support": 3},
    }
    (tmp_path / "intent_report.json").write_text(json.dumps(intent), encoding="utf-8")
    errors = [{"text": "hey", "intent": "greet", "intent_prediction": {"name": "deny"}}]
    (tmp_path / "intent_errors.json").write_text(json.dumps(errors), encoding="utf-8")
    ents = {
        "brand": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 4},
        "no_entity": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 40},
        "macro avg": {"precision": 1.0, "recall": 1.0, "f1-score": 0.9, "support": 44},
    }
    (tmp_path / "RegexEntityExtractor_report.json").write_text(json.dumps(ents), "utf-8")
    rep = read_reports(tmp_path, folds=5)
    assert set(rep.intents) == {"greet", "deny"}
    assert rep.intent_accuracy == pytest.approx(2 / 3)
    assert rep.intent_macro_f1 == pytest.approx(2 / 3)
    assert set(rep.entities) == {"brand"} and rep.entity_macro_f1 == 0.9
    # rebuilt confusion: greet 2 = 1 right + 1 as deny; deny 1 right
    assert rep.confusion == (["deny", "greet"], [[1, 0], [1, 1]])
    assert "| greet | 1.000 | 0.500 |" in rep.markdown()


def test_cv_data_leaves_out_generated_requests(tmp_path: Path) -> None:
    bot = tmp_path / "bot"
    (bot / "data" / "generated").mkdir(parents=True)
    (bot / "data" / "nlu.yml").write_text('version: "3.1"\nnlu: []\n', encoding="utf-8")
    (bot / "data" / "generated" / "lookups.yml").write_text(
        'version: "3.1"\nnlu:\n- lookup: brand\n  examples: |\n    - Nike\n'
        "- intent: ask_recommendation\n  examples: |\n    - [boots](product_type)\n",
        encoding="utf-8",
    )
    out = prepare_cv_data(bot, tmp_path / "cv")
    text = (out / "lookups.yml").read_text(encoding="utf-8")
    assert "lookup: brand" in text and "ask_recommendation" not in text
    assert (out / "nlu.yml").is_file()


def test_sentiment_scoring_binary_and_three_class() -> None:
    labels = ["negative", "neutral", "positive"]
    probs = [[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]]
    rows = [("a", "positive"), ("b", "negative"), ("c", "neutral")]
    gold, binary = score_rows(labels, probs, rows, binary=True)
    assert binary == ["positive", "negative", "positive"]  # neutral ignored
    _, three = score_rows(labels, probs, rows, binary=False)
    assert three == ["neutral", "negative", "positive"]
    assert gold == ["positive", "negative", "neutral"]


def test_rescale_keeps_order_and_maps_onto_the_dense_range() -> None:
    fused = [Hit(1, 2.0), Hit(2, 1.0), Hit(3, 0.0)]
    dense = [Hit(9, 0.8), Hit(8, 0.6), Hit(7, 0.4)]
    got = rescale(fused, dense)
    assert [h.product_id for h in got] == [1, 2, 3]
    assert [round(h.score, 6) for h in got] == [0.8, 0.6, 0.4]
    assert rescale(fused, []) == fused
    assert [h.score for h in rescale([Hit(1, 5.0)], dense)] == [0.8]


def test_lexical_index_survives_save_and_load(tmp_path: Path) -> None:
    pairs = [(10, "Sony PSLX350H turntable"), (11, "Pioneer speakers"), (12, "red running shoes")]
    index = LexicalIndex(pairs)
    index.save(tmp_path / "lex")
    again = LexicalIndex.load(tmp_path / "lex")
    for query in ("pslx350h", "speaker", "running shoes red", "nothing here"):
        assert again.search(query, 3) == index.search(query, 3)
        assert np.allclose(again.scores(query), index.scores(query))
    # open_lexical builds once, then loads; a new fingerprint rebuilds and drops the old one
    calls: list[int] = []

    def texts() -> list[tuple[int, str]]:
        calls.append(1)
        return pairs

    first = open_lexical(tmp_path / "idx", "aaaa", texts)
    second = open_lexical(tmp_path / "idx", "aaaa", texts)
    assert len(calls) == 1 and second.search("turntable") == first.search("turntable")
    open_lexical(tmp_path / "idx", "bbbb", texts)
    assert len(calls) == 2
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["lexical-bbbb"]
    # a damaged index is rebuilt, not trusted
    (tmp_path / "idx" / "lexical-bbbb" / "lexical.json").write_text("{", encoding="utf-8")
    open_lexical(tmp_path / "idx", "bbbb", texts)
    assert len(calls) == 3


def test_eval_commands_name_missing_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tailor.cli import main

    for what in ("nlu", "sentiment", "all"):
        code = main(["--home", str(tmp_path / "home"), "eval", what, "--data", str(tmp_path)])
        assert code == 2
        err = capsys.readouterr().err
        assert "evaluation data not found" in err and "clinc150_train_val.json" in err
    # nothing was built or written for a run that could not start
    assert not (tmp_path / "home" / "eval").exists()
