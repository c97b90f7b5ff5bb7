#!/usr/bin/env python
"""Benchmark the Embedder backends: products/s per batch size, query latency, agreement.

Usage: .venv/bin/python scripts/bench_embed.py [--n 2000] [--batch-sizes 16 32 64 128]
       [--queries 100] [--backends torch onnx onnx-int8] [--abt-buy DIR] [--model PATH]

Each backend (torch = sentence-transformers; onnx = ONNX Runtime, fp32; onnx-int8 =
quantised weights) is measured in the same run: load, products/s per batch size, single
query latency, and top-10 agreement with the first backend (synthetic texts, and real
Abt-Buy listings with ``--abt-buy``).

Texts are generated product texts (``tailor.retrieval.product_text`` over synthetic products),
so lengths resemble the real catalog. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ADJECTIVES = [
    "lightweight",
    "waterproof",
    "classic",
    "slim",
    "cosy",
    "breathable",
    "rugged",
    "elegant",
    "organic",
    "recycled",
    "padded",
    "stretch",
]
NOUNS = {
    "Shoes > Running": ["running shoe", "trail runner", "racing flat"],
    "Shoes > Boots": ["hiking boot", "chelsea boot", "snow boot"],
    "Clothing > Jackets": ["rain jacket", "puffer jacket", "denim jacket"],
    "Clothing > Dresses": ["maxi dress", "slip dress", "shirt dress"],
    "Home > Kitchen": ["frying pan", "dutch oven", "chef knife"],
}
COLOURS = ["black", "white", "navy", "red", "olive", "beige"]
MATERIALS = ["cotton", "leather", "mesh", "wool", "steel", "linen"]
SENTENCES = [
    "Designed for everyday comfort and built to last.",
    "A versatile piece that pairs with almost anything in your wardrobe.",
    "Made with responsibly sourced materials and finished by hand.",
    "Easy to care for: machine washable at thirty degrees.",
    "Tested in the field by our team over hundreds of kilometres.",
    "The updated fit gives more room without adding weight.",
]


def make_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` product texts of realistic length."""
    from tailor.retrieval import product_text

    rng = random.Random(seed)
    texts = []
    for i in range(n):
        category = rng.choice(list(NOUNS))
        title = f"{rng.choice(ADJECTIVES).title()} {rng.choice(NOUNS[category]).title()} {i}"
        p = SimpleNamespace(
            title=title,
            brand=f"Brand{rng.randint(1, 40)}",
            category=category,
            colour=rng.choice(COLOURS),
            material=rng.choice(MATERIALS),
            tags=rng.sample(ADJECTIVES, 3),
            description=" ".join(rng.choices(SENTENCES, k=rng.randint(2, 8))),
        )
        texts.append(product_text(p))
    return texts


def _abt_buy(path: str) -> tuple[list[str], list[str]]:
    """Abt listings as documents and Buy names as queries (real product text)."""
    import csv

    def rows(name: str) -> list[dict[str, str]]:
        with open(f"{path}/{name}", encoding="latin-1", newline="") as fh:
            return list(csv.DictReader(fh))

    docs = [f"{r['name']}. {r.get('description') or ''}"[:600] for r in rows("Abt.csv")]
    queries = [r["name"] for r in rows("Buy.csv")][:300]
    return docs, queries


def _agreement(ref: tuple[Any, Any], got: tuple[Any, Any], k: int = 10) -> float:
    """Mean share of the reference top-k kept, over the queries."""
    import numpy as np

    (rd, rq), (gd, gq) = ref, got
    shares = []
    for i in range(len(rq)):
        a = set(np.argsort(-(rd @ rq[i]))[:k].tolist())
        b = set(np.argsort(-(gd @ gq[i]))[:k].tolist())
        shares.append(len(a & b) / k)
    return float(np.mean(shares))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print tables."""
    import tempfile

    from tailor.config import default_embedding_model
    from tailor.retrieval import Embedder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="texts per batch-size run")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--queries", type=int, default=100, help="single queries for latency")
    parser.add_argument("--model", default=default_embedding_model())
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--abt-buy", help="Abt-Buy folder: top-10 agreement on real listings")
    args = parser.parse_args(argv)

    texts = make_texts(args.n)
    words = statistics.mean(len(t.split()) for t in texts)
    queries = [
        f"{rng_word} {noun}"
        for rng_word, noun in zip(
            ADJECTIVES * 10, [n for ns in NOUNS.values() for n in ns] * 10, strict=False
        )
    ][: args.queries]
    real = _abt_buy(args.abt_buy) if args.abt_buy else None
    print(f"cpus {os.cpu_count()}; texts: {len(texts)}, mean {words:.0f} words\n")
    export_dir = tempfile.mkdtemp(prefix="tailor-onnx-")
    results: dict[str, dict[str, Any]] = {}
    reference: dict[str, tuple[Any, Any]] = {}
    for backend in args.backends:
        t0 = time.perf_counter()
        emb = Embedder(args.model, backend=backend, cache_dir=export_dir)
        emb.encode_one("warm up")
        load_s = time.perf_counter() - t0
        rates = {}
        for bs in args.batch_sizes:
            emb.batch_size = bs
            emb.encode(texts[:bs])
            start = time.perf_counter()
            emb.encode(texts)
            rates[bs] = len(texts) / (time.perf_counter() - start)
        latencies = []
        for q in queries:
            start = time.perf_counter()
            emb.encode_one(q)
            latencies.append((time.perf_counter() - start) * 1000)
        latencies.sort()
        emb.batch_size = max(rates, key=rates.__getitem__)
        synth = (emb.encode(texts), emb.encode(queries))
        pair = {"synthetic": synth}
        if real is not None:
            pair["abt-buy"] = (emb.encode(real[0]), emb.encode(real[1]))
        if not reference:
            reference = pair
        results[backend] = {
            "load": load_s,
            "rates": rates,
            "p50": statistics.median(latencies),
            "p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
            "agree": {name: _agreement(reference[name], v) for name, v in pair.items()},
        }

    base = results[args.backends[0]]
    header = " | ".join(f"bs {bs}" for bs in args.batch_sizes)
    print(
        f"| backend | load s | query p50 ms | p95 ms | products/s ({header}) | top-10 agreement |"
    )
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for backend, r in results.items():
        rates = " / ".join(f"{r['rates'][bs]:.0f}" for bs in args.batch_sizes)
        agree = ", ".join(f"{k} {v:.3f}" for k, v in r["agree"].items())
        print(
            f"| {backend} | {r['load']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | {rates} | {agree} |"
        )
    print()
    for backend, r in results.items():
        best = max(r["rates"].values())
        print(
            f"{backend}: query p50 {base['p50'] / r['p50']:.1f}x faster than {args.backends[0]}, "
            f"ingestion {best / max(base['rates'].values()):.1f}x ({best:.0f} products/s best)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
