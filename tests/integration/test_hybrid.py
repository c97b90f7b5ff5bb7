"""Hybrid search and the retrieval evaluation end to end with the real embedder on a
30-product fixture (slow: loads all-MiniLM-L6-v2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tailor.evaluation.retrieval import load_dataset, run_retrieval_eval
from tailor.retrieval import Filter, ProductSearch
from tailor.retrieval.hybrid import HybridSearch
from tailor.retrieval.lexical import LexicalIndex
from tailor.retrieval.text import product_text
from tailor.store import make_session_factory
from tailor.store.catalog import ProductRecord, upsert_products
from tailor.store.db import session_scope
from tailor.store.models import Product

pytestmark = pytest.mark.slow

BRANDS = ["Sony", "Bose", "Canon", "Samsung", "Panasonic", "Philips"]
KINDS = ["turntable", "speaker system", "digital camera", "LCD television", "blender"]


def _corpus() -> list[tuple[str, str, str, float, str]]:
    rows = []
    for i in range(30):
        brand = BRANDS[i % len(BRANDS)]
        kind = KINDS[i % len(KINDS)]
        model = f"{brand[:2].upper()}X{100 + i}"
        title = f"{brand} {kind.title()} - {model}"
        rows.append((f"p{i}", title, f"{brand} {kind} model {model}", 50.0 + 10 * i, brand))
    return rows


def _write_dataset(folder: Path) -> None:
    corpus = _corpus()
    lines = ["id,title,description,price,brand"]
    lines += [f"{i},{t},{d},{p},{b}" for i, t, d, p, b in corpus]
    (folder / "corpus.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    queries = ["id,text"] + [f"q{i[1:]},{b} {t.split(' - ')[1]}" for i, t, _, _, b in corpus[:10]]
    (folder / "queries.csv").write_text("\n".join(queries) + "\n", encoding="utf-8")
    qrels = ["query_id,corpus_id"] + [f"q{i[1:]},{i}" for i, *_ in corpus[:10]]
    (folder / "qrels.csv").write_text("\n".join(qrels) + "\n", encoding="utf-8")


def test_eval_runs_end_to_end(tmp_path: Path, embedder: Any) -> None:
    _write_dataset(tmp_path)
    dataset = load_dataset("folder", tmp_path)
    report = run_retrieval_eval(dataset, embedder, k=10)
    by_mode = {r.mode.split()[0]: r for r in report.rows}
    assert set(by_mode) == {"lexical", "dense", "hybrid"}
    assert by_mode["lexical"].recall_1 == 1.0  # the model number names the product
    assert by_mode["hybrid"].recall_k == 1.0
    assert report.split_rows and "tuned" in report.split_rows[-1].mode
    assert "| hybrid" in report.markdown()


def test_hybrid_search_modes_and_filters(tmp_path: Path, embedder: Any) -> None:
    factory = make_session_factory(f"sqlite:///{tmp_path / 'h.db'}")
    with session_scope(factory) as session:
        upsert_products(
            session,
            [
                ProductRecord(
                    sku=i,
                    title=t,
                    category="Electronics",
                    price=p,
                    description=d,
                    brand=b,
                    stock=1,
                )
                for i, t, d, p, b in _corpus()
            ],
        )
    dense = ProductSearch(embedder)
    dense.build(factory)
    with factory() as session:
        lexical = LexicalIndex((p.id, product_text(p)) for p in session.query(Product))
    search = HybridSearch(dense, lexical)
    for mode in ("dense", "lexical", "hybrid"):
        hits = search.search("Bose speaker system", k=5, mode=mode)  # type: ignore[arg-type]
        assert hits, mode
    flt = Filter(brands=("Sony",), in_stock=False)
    for mode in ("dense", "lexical", "hybrid"):
        hits = search.search("speaker system", k=10, flt=flt, mode=mode)  # type: ignore[arg-type]
        with factory() as session:
            brands = {session.get(Product, h.product_id).brand for h in hits}  # type: ignore[union-attr]
        assert brands <= {"Sony"}, mode
    with pytest.raises(ValueError, match="valid modes"):
        search.search("x", mode="fuzzy")  # type: ignore[arg-type]
