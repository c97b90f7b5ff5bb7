#!/usr/bin/env python
"""Benchmark the Embedder: products/s for several batch sizes and single-query latency.

Usage: .venv/bin/python scripts/bench_embed.py [--n 2000] [--batch-sizes 32 64 128]
       [--queries 50] [--model PATH]

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


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    from tailor.config import default_embedding_model
    from tailor.retrieval import Embedder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="texts per batch-size run")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--queries", type=int, default=50, help="single queries for latency")
    parser.add_argument("--model", default=default_embedding_model())
    args = parser.parse_args(argv)

    texts = make_texts(args.n)
    words = statistics.mean(len(t.split()) for t in texts)
    t0 = time.perf_counter()
    warm = Embedder(args.model)
    warm.encode_one("warm up")
    load_s = time.perf_counter() - t0
    print(f"model: {warm.name} (dim {warm.dim}), load {load_s:.1f} s, cpus {os.cpu_count()}")
    print(f"texts: {len(texts)}, mean {words:.0f} words\n")

    print(f"{'batch size':>10} | {'seconds':>8} | {'products/s':>10}")
    print(f"{'-' * 10}-+-{'-' * 8}-+-{'-' * 10}")
    for bs in args.batch_sizes:
        warm.batch_size = bs  # same loaded weights, another batch size
        warm.encode(texts[:bs])  # warm the kernels for this shape
        start = time.perf_counter()
        warm.encode(texts)
        secs = time.perf_counter() - start
        print(f"{bs:>10} | {secs:>8.2f} | {len(texts) / secs:>10.1f}")

    queries = [
        f"{rng_word} {noun}"
        for rng_word, noun in zip(
            ADJECTIVES * 10, [n for ns in NOUNS.values() for n in ns] * 10, strict=False
        )
    ][: args.queries]
    latencies = []
    for q in queries:
        start = time.perf_counter()
        warm.encode_one(q)
        latencies.append((time.perf_counter() - start) * 1000)
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    print(
        f"\nsingle query latency over {len(latencies)} queries: p50 {p50:.1f} ms, p95 {p95:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
