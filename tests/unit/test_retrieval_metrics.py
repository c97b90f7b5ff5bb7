"""Retrieval evaluation: metrics and RRF against hand-computed values, BM25 on a tiny
corpus, and the dataset loaders on tiny fixtures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tailor.evaluation.retrieval import (
    evaluate_rankings,
    load_abt_buy,
    load_dataset,
    mrr,
    ndcg_at_k,
    recall_at_k,
)
from tailor.retrieval.hybrid import rrf_fuse
from tailor.retrieval.lexical import LexicalIndex, tokenize

RANKED = ["d1", "d2", "d3", "d4", "d5"]


def test_recall_at_k_by_hand() -> None:
    assert recall_at_k(RANKED, {"d2"}, 1) == 0.0
    assert recall_at_k(RANKED, {"d2"}, 2) == 1.0
    # two relevant, one (d3) within the first 3, the other (d9) never retrieved
    assert recall_at_k(RANKED, {"d3", "d9"}, 3) == 0.5
    assert recall_at_k(RANKED, {"d1", "d4"}, 10) == 1.0
    assert recall_at_k(RANKED, set(), 10) == 0.0


def test_mrr_by_hand() -> None:
    assert mrr(RANKED, {"d1"}) == 1.0
    assert mrr(RANKED, {"d3"}) == pytest.approx(1 / 3)
    assert mrr(RANKED, {"d4", "d2"}) == 0.5  # the first relevant one counts
    assert mrr(RANKED, {"zz"}) == 0.0


def test_ndcg_at_k_by_hand() -> None:
    assert ndcg_at_k(RANKED, {"d1"}, 10) == 1.0
    # one relevant at rank 3: (1/log2 4) / 1 = 0.5
    assert ndcg_at_k(RANKED, {"d3"}, 10) == pytest.approx(0.5)
    assert ndcg_at_k(RANKED, {"d3"}, 2) == 0.0
    # relevant d2 and d4: DCG = 1/log2(3) + 1/log2(5); ideal = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(RANKED, {"d2", "d4"}, 10) == pytest.approx(expected)  # ≈ 0.6509
    assert expected == pytest.approx(0.6509, abs=1e-4)
    # three relevant, k=2: ideal counts only 2 positions; found d1 only → 1 / (1 + 1/log2 3)
    assert ndcg_at_k(RANKED, {"d1", "d7", "d8"}, 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_evaluate_rankings_means() -> None:
    rankings = {"q1": ["a", "b"], "q2": ["c", "d"]}
    qrels = {"q1": {"a"}, "q2": {"d"}}
    row = evaluate_rankings("x", rankings, qrels, 10)
    assert row.queries == 2
    assert row.recall_1 == 0.5
    assert row.recall_k == 1.0
    assert row.mrr == pytest.approx(0.75)
    assert row.ndcg_k == pytest.approx((1 + 1 / math.log2(3)) / 2)


def test_rrf_by_hand() -> None:
    # k=1: id 2 → 1/(1+2) + 1/(1+1) = 0.8333; id 1 → 1/2; id 3 → 1/3
    hits = rrf_fuse([[1, 2], [2, 3]], k=1)
    assert [h.product_id for h in hits] == [2, 1, 3]
    assert [h.score for h in hits] == pytest.approx([1 / 3 + 1 / 2, 1 / 2, 1 / 3])
    # k=60, weights (1, 2): id 3 → 2/61 beats id 1 → 1/61
    weighted = rrf_fuse([[1], [3]], k=60, weights=[1, 2])
    assert [h.product_id for h in weighted] == [3, 1]
    assert weighted[0].score == pytest.approx(2 / 61)
    with pytest.raises(ValueError, match="weights"):
        rrf_fuse([[1]], weights=[1, 2])


def test_tokenize_keeps_model_numbers() -> None:
    assert tokenize("Sony Turntable - PSLX350H/ Belt Drive speakers") == [
        "sony",
        "turntable",
        "pslx350h",
        "pslx",
        "350",
        "h",
        "belt",
        "drive",
        "speaker",
    ]
    assert tokenize("batteries glass of the") == ["battery", "glass"]


def test_bm25_ranks_the_obvious_document_first() -> None:
    index = LexicalIndex(
        [
            (10, "Sony Turntable PSLX350H belt drive"),
            (11, "Bose Acoustimass 5 speaker system AM53BK"),
            (12, "Canon PowerShot digital camera"),
            (13, "Sony Bravia LCD television"),
        ]
    )
    assert len(index) == 4
    hits = index.search("bose speakers", k=4)
    assert hits[0].product_id == 11
    assert [h.product_id for h in index.search("PSLX-350H turntable", k=1)] == [10]
    sony = [h.product_id for h in index.search("sony", k=10)]
    assert sorted(sony) == [10, 13]  # documents without a query term are not returned
    assert [h.product_id for h in index.search("sony", k=10, allowed_ids=[13, 12])] == [13]
    assert index.search("zeppelin", k=5) == []
    assert index.search("sony", k=0) == []


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def test_folder_loader(tmp_path: Path) -> None:
    _write(
        tmp_path / "corpus.csv",
        "id,title,description,price,brand\n"
        'p1,Red mug,"Ceramic, 300 ml",$4.50,Acme\n'
        "p2,Blue mug,,,\n"
        "p3,Teapot,Glass,12,\n",
    )
    _write(tmp_path / "queries.csv", "id,text\nq1,red cup\nq2,pot for tea\nq3,no answer\n")
    _write(tmp_path / "qrels.csv", "query_id,corpus_id\nq1,p1\nq1,p2\nq2,p3\nq3,p404\n")
    ds = load_dataset("folder", tmp_path)
    assert [d.id for d in ds.corpus] == ["p1", "p2", "p3"]
    assert ds.corpus[0].price == 4.5 and ds.corpus[0].brand == "Acme"
    assert ds.corpus[1].price is None and ds.corpus[1].brand is None
    assert ds.queries == {"q1": "red cup", "q2": "pot for tea"}  # q3 has no known relevant
    assert ds.qrels == {"q1": {"p1", "p2"}, "q2": {"p3"}}
    with pytest.raises(ValueError, match="valid datasets"):
        load_dataset("nope", tmp_path)


def test_folder_loader_names_missing_columns(tmp_path: Path) -> None:
    _write(tmp_path / "corpus.csv", "id,name\np1,x\n")
    with pytest.raises(ValueError, match="title"):
        load_dataset("folder", tmp_path)


def test_abt_buy_loader(tmp_path: Path) -> None:
    _write(
        tmp_path / "Abt.csv",
        '"id","name","description","price"\n'
        '1,"Sony Turntable - PSLX350H","Belt drive",$99.00\n'
        '2,"Bose Speaker - AM53BK","Black",\n',
    )
    _write(
        tmp_path / "Buy.csv",
        '"id","name","description","manufacturer","price"\n'
        '100,"Sony PS-LX350H Turntable","Belt-drive","Sony",\n'
        '200,"Unmatched thing","","",\n',
    )
    _write(tmp_path / "matches_dev.csv", "idAbt,idBuy\n1,100\n")
    ds = load_abt_buy(tmp_path)
    assert ds.name == "abt-buy"
    assert len(ds.corpus) == 2 and ds.corpus[0].price == 99.0
    assert ds.queries == {"100": "Sony PS-LX350H Turntable. Sony. Belt-drive"}
    assert ds.qrels == {"100": {"1"}}


def test_convex_fuse_by_hand() -> None:
    from tailor.retrieval.engine import Hit
    from tailor.retrieval.hybrid import convex_fuse

    dense = [Hit(1, 0.9), Hit(2, 0.7), Hit(3, 0.5)]  # normalised: 1, 0.5, 0
    lexical = [Hit(3, 12.0), Hit(4, 2.0)]  # normalised: 1, 0
    hits = convex_fuse([dense, lexical], weights=[1.0, 2.0])
    # 3 → 0 + 2·1 = 2; 1 → 1; 2 → 0.5; 4 → 0
    assert [h.product_id for h in hits] == [3, 1, 2, 4]
    assert [h.score for h in hits] == pytest.approx([2.0, 1.0, 0.5, 0.0])
    single = convex_fuse([[Hit(7, 0.3)], []])
    assert [(h.product_id, h.score) for h in single] == [(7, 1.0)]


def test_precision_at_k_and_curves_by_hand() -> None:
    from tailor.evaluation.retrieval import curves, precision_at_k

    assert precision_at_k(["d1", "d2", "d3"], {"d2", "d9"}, 2) == 0.5
    assert precision_at_k(["d1"], {"d1"}, 4) == 0.25  # a short list still divides by k
    with pytest.raises(ValueError):
        precision_at_k(RANKED, {"d1"}, 0)
    rankings = {"q1": ["a", "b"], "q2": ["c", "d"], "q3": ["x"]}
    qrels = {"q1": {"b"}, "q2": {"c", "d"}}  # q3 has no judgement and is skipped
    got = curves(rankings, qrels, max_k=2)
    # k=1: precision (0 + 1)/2, recall (0 + 1/2)/2; k=2: precision (1/2 + 1)/2, recall (1 + 1)/2
    assert got == [(1, 0.5, 0.25), (2, 0.75, 1.0)]


def test_bm25_allowed_ids_match_a_brute_force_filter() -> None:
    rng = np.random.default_rng(7)
    words = ["red", "blue", "mug", "shoe", "lamp", "desk", "wool", "steel"]
    docs = [(int(pid), " ".join(rng.choice(words, 4))) for pid in rng.permutation(500)[:120]]
    index = LexicalIndex(docs)
    for _ in range(30):
        query = " ".join(rng.choice(words, 2))
        allowed = rng.choice(600, int(rng.integers(0, 200)), replace=False)  # some unknown ids
        everything = index.search(query, k=len(docs))
        expected = [h for h in everything if h.product_id in set(allowed.tolist())][:7]
        assert index.search(query, k=7, allowed_ids=allowed) == expected
        assert index.search(query, k=7, allowed_ids=list(allowed)) == expected
