#!/usr/bin/env python
"""Benchmark what issue 5 added to a turn: query understanding, hybrid vs dense search,
and the BM25 index's build vs load time, on the configured catalog (default ./var).

Usage: .venv/bin/python scripts/bench_search.py [--repeat 3]

Queries are the 320 shopping requests of tailor/evaluation/data/shopping_requests.tsv.
Dense is the baseline measured in the same run; ratios are hybrid / dense. Not part of the
test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _ms(samples: list[float]) -> str:
    qs = statistics.quantiles(samples, n=20)
    return f"p50 {statistics.median(samples) * 1000:6.2f} ms  p95 {qs[18] * 1000:6.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from sqlalchemy import select

    from tailor.config import Settings
    from tailor.evaluation.scope import load_shopping_requests
    from tailor.recommend.criteria import Criteria
    from tailor.recommend.service import Recommender
    from tailor.retrieval.lexical import LexicalIndex
    from tailor.retrieval.text import product_text
    from tailor.store.models import Product

    settings = Settings.load()
    rec = Recommender.from_settings(settings)
    queries = [r.text for r in load_shopping_requests()]
    assert rec.hybrid is not None
    rec.search.search("warm up", 1)
    rec.understanding.understand("warm up")

    understand: list[float] = []
    dense: list[float] = []
    hybrid: list[float] = []
    full_dense: list[float] = []
    full_hybrid: list[float] = []
    for _ in range(args.repeat):
        for q in queries:
            t = time.perf_counter()
            u = rec.understanding.understand(q)
            understand.append(time.perf_counter() - t)
            text = u.semantic or q
            t = time.perf_counter()
            rec.search.search(text, 40)
            dense.append(time.perf_counter() - t)
            t = time.perf_counter()
            rec.hybrid.search(text, 40)
            hybrid.append(time.perf_counter() - t)
    crit_queries = queries[:80]
    for mode, bucket in (("dense", full_dense), ("hybrid", full_hybrid)):
        rec.search_mode = mode  # type: ignore[assignment]
        for q in crit_queries:
            crit = Criteria(query=rec.understanding.understand(q).semantic or q)
            t = time.perf_counter()
            rec.recommend(crit, 4)
            bucket.append(time.perf_counter() - t)
    rec.search_mode = "hybrid"

    with rec.session_factory() as session:
        texts = [(p.id, product_text(p)) for p in session.scalars(select(Product))]
    t = time.perf_counter()
    index = LexicalIndex(texts)
    build = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        index.save(Path(tmp) / "lex")
        t = time.perf_counter()
        LexicalIndex.load(Path(tmp) / "lex")
        load = time.perf_counter() - t

    n = len(queries) * args.repeat
    print(f"catalog: {len(rec.search)} products; {n} searches of {len(queries)} requests")
    print(f"query understanding      {_ms(understand)}")
    print(f"dense search (k=40)      {_ms(dense)}")
    print(f"hybrid search (k=40)     {_ms(hybrid)}")
    ratio = statistics.median(hybrid) / statistics.median(dense)
    print(f"  hybrid / dense p50     {ratio:.2f}x")
    print(f"recommend(), dense       {_ms(full_dense)}")
    print(f"recommend(), hybrid      {_ms(full_hybrid)}")
    whole = statistics.median(full_hybrid) / statistics.median(full_dense)
    print(f"  hybrid / dense p50     {whole:.2f}x")
    print(f"BM25 build {build:.2f} s, load {load:.3f} s ({build / load:.0f}x faster to load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
