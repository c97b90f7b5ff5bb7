#!/usr/bin/env python
"""Benchmark embedding configurations: ingestion rate, query latency, top-10 agreement.

Usage: .venv/bin/python scripts/bench_embed.py [--n 2000] [--configs torch onnx onnx-int8
       onnx:64 onnx-int8:64] [--batch-sizes 16 32] [--abt-buy DIR] [--model PATH]

A configuration is ``BACKEND[:CAP]``: torch (sentence-transformers), onnx (ONNX Runtime,
fp32), onnx-int8 (dynamically quantised MatMul weights), torch-bf16 or openvino-bf16 (catalog
through OpenVINO in bfloat16, queries through ONNX Runtime fp32), and an optional token cap (word
pieces read per text; none = the model's 256). All are measured in the same run on the same
texts: the first ``--n`` products of the demo catalog (``tailor.demo.generate_products``, a
prefix of the 10,000-product catalog) through ``tailor.retrieval.product_text``.

Figures per configuration:

- products/s: wall-clock ingestion rate (``Embedder.encode``) per batch size; products per
  CPU-second of the process over the same runs (best batch size; robust when other jobs
  share the machine: on an idle machine the wall rate is about that times the cores kept
  busy); and the CPU rate of one core (single-threaded session, thread CPU time; ONNX
  Runtime configurations only);
- query p50: one shopper query at a time (``Embedder.encode_one``), wall clock; queries are
  embedded as the configuration embeds them (``Embedder.encode_queries``: ONNX Runtime fp32
  for a split backend), the catalog by ``Embedder.encode``;
- top-10 agreement (``tailor.retrieval.embed.top_k_agreement``): for 200 shopper queries
  built from the catalog's types, brands, colours, materials, uses and features, the mean
  share of the 10 products retrieved (dot product over the same catalog texts) that the
  reference also retrieves. (a) reference = ONNX fp32 on the same, possibly capped, texts:
  the quantisation effect; (b) reference = ONNX fp32 on the full texts: the end-to-end change;
  (c) as (b) with the configuration's catalog vectors but fp32 query vectors: what a split
  of the configuration's catalog vectors with ONNX fp32 queries would give;
- with ``--abt-buy``: Recall@1, Recall@10 and MRR of Buy names (queries) against Abt
  listings (documents) over the labelled pairs of ``matches_dev.csv``.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def catalog_texts(n: int, seed: int = 42) -> list[str]:
    """Embedding texts of the first ``n`` demo-catalog products."""
    from tailor.demo.generator import generate_products
    from tailor.retrieval.text import product_text

    return [product_text(p) for p in generate_products(n, seed)]


def shopper_queries(n: int = 200, seed: int = 0) -> list[str]:
    """``n`` distinct shopper queries from the catalog's taxonomy: "navy stroller",
    "Suunto smartwatch", "rattan planter", "waterproof headlamp for running in the dark",
    "sweater that resists pilling"."""
    from tailor.demo.taxonomy import leaf_brands, leaves

    rng = random.Random(seed)
    types = leaves()
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        leaf = rng.choice(types)
        noun = leaf.singular.lower()
        kind = rng.randrange(5)
        if kind == 0 and leaf.colours:
            query = f"{rng.choice(leaf.colours)} {noun}"
        elif kind == 1:
            query = f"{rng.choice(leaf_brands(leaf))} {noun}"
        elif kind == 2 and leaf.materials:
            query = f"{rng.choice(leaf.materials)} {noun}"
        elif kind == 3:
            query = f"{rng.choice(leaf.adjectives).lower()} {noun} {rng.choice(leaf.uses)}"
        else:
            query = f"{noun} that {rng.choice(leaf.features)}"
        if query not in seen:
            seen.add(query)
            out.append(query)
    return out


def abt_buy(path: str) -> tuple[list[str], list[str], list[int]]:
    """Abt listings (documents), Buy names (queries) and each query's matching document."""

    def rows(name: str) -> list[dict[str, str]]:
        with open(f"{path}/{name}", encoding="latin-1", newline="") as fh:
            return list(csv.DictReader(fh))

    abt = rows("Abt.csv")
    buy = {r["id"]: r["name"] for r in rows("Buy.csv")}
    position = {r["id"]: i for i, r in enumerate(abt)}
    docs = [f"{r['name']}. {r.get('description') or ''}"[:600] for r in abt]
    queries, gold = [], []
    for pair in rows("matches_dev.csv"):
        if pair["idBuy"] in buy and pair["idAbt"] in position:
            queries.append(buy[pair["idBuy"]])
            gold.append(position[pair["idAbt"]])
    return docs, queries, gold


def retrieval_quality(docs: Any, queries: Any, gold: list[int]) -> tuple[float, float, float]:
    """Recall@1, Recall@10 and MRR of ``queries`` against ``docs``."""
    import numpy as np

    scores = queries @ docs.T
    ranks = (scores > scores[np.arange(len(gold)), gold][:, None]).sum(axis=1) + 1
    return float(np.mean(ranks <= 1)), float(np.mean(ranks <= 10)), float(np.mean(1.0 / ranks))


def process_cpu() -> float:
    """User + system CPU seconds of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def parse_config(text: str) -> tuple[str, int | None]:
    """``"onnx-int8:64"`` → ``("onnx-int8", 64)``; ``"onnx"`` → ``("onnx", None)``."""
    backend, _, cap = text.partition(":")
    return backend, int(cap) if cap else None


def cpu_rate(onnx_file: Any, model: str, cap: int | None, texts: list[str], bs: int) -> float:
    """Products/s of one core: a single-threaded session, timed in thread CPU time."""
    from tailor.retrieval.onnx import OnnxEncoder

    enc = OnnxEncoder(onnx_file, model, threads=1, max_tokens=cap, workers=1)
    enc.encode(texts[:32], bs)
    best = float("inf")
    for _ in range(2):
        start = time.thread_time()
        enc.encode(texts, bs)
        best = min(best, time.thread_time() - start)
    return len(texts) / best


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the markdown table."""
    from tailor.config import default_embedding_model
    from tailor.retrieval import Embedder
    from tailor.retrieval.embed import top_k_agreement

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="catalog texts embedded per run")
    parser.add_argument(
        "--configs", nargs="+", default=["torch", "onnx", "onnx-int8", "onnx:64", "onnx-int8:64"]
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--queries", type=int, default=200, help="shopper queries (agreement)")
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--cpu-texts", type=int, default=500, help="texts for the per-core rate")
    parser.add_argument("--model", default=default_embedding_model())
    parser.add_argument("--abt-buy", help="Abt-Buy folder: R@1, R@10, MRR on real listings")
    args = parser.parse_args(argv)

    texts = catalog_texts(args.n)
    queries = shopper_queries(args.queries)
    real = abt_buy(args.abt_buy) if args.abt_buy else None
    words = statistics.mean(len(t.split()) for t in texts)
    export_dir = tempfile.mkdtemp(prefix="tailor-onnx-")
    print(
        f"cpus {os.cpu_count()}; {len(texts)} catalog texts of {words:.0f} words on average; "
        f"{len(queries)} shopper queries; load average {os.getloadavg()[0]:.1f}\n",
        flush=True,
    )

    fp32: dict[int | None, dict[str, tuple[Any, Any]]] = {}  # ONNX fp32 vectors per cap

    def vectors(emb: Embedder) -> dict[str, tuple[Any, Any]]:
        out = {"catalog": (emb.encode(texts), emb.encode_queries(queries))}
        if real is not None:
            out["abt-buy"] = (emb.encode(real[0]), emb.encode_queries(real[1]))
        return out

    def reference(cap: int | None) -> dict[str, tuple[Any, Any]]:
        if cap not in fp32:
            fp32[cap] = vectors(Embedder(args.model, 16, "cpu", "onnx", export_dir, max_tokens=cap))
        return fp32[cap]

    rows: list[dict[str, Any]] = []
    for config in args.configs:
        backend, cap = parse_config(config)
        t0 = time.perf_counter()
        emb = Embedder(args.model, backend=backend, cache_dir=export_dir, max_tokens=cap)
        emb.encode_one("warm up")
        emb.encode(["warm up"])  # a split backend loads its bulk engine here
        load_s = time.perf_counter() - t0
        rates, cpu_rates = {}, {}
        for bs in args.batch_sizes:
            emb.batch_size = bs
            emb.encode(texts[: 2 * bs])
            start, cpu0 = time.perf_counter(), process_cpu()
            emb.encode(texts)
            rates[bs] = len(texts) / (time.perf_counter() - start)
            cpu_rates[bs] = len(texts) / max(process_cpu() - cpu0, 1e-9)
        emb.batch_size = max(cpu_rates, key=cpu_rates.__getitem__)
        core = None
        if emb.onnx_file is not None and emb.backend.startswith("onnx"):
            core = cpu_rate(emb.onnx_file, args.model, cap, texts[: args.cpu_texts], emb.batch_size)
        latencies = []
        for q in queries[: args.latency_queries]:
            start = time.perf_counter()
            emb.encode_one(q)
            latencies.append((time.perf_counter() - start) * 1000)
        got = vectors(emb)
        same, full = reference(cap), reference(None)
        row = {
            "config": config,
            "name": emb.name,
            "load": load_s,
            "rates": rates,
            "cpu_rate": cpu_rates[emb.batch_size],
            "bs": emb.batch_size,
            "core": core,
            "p50": statistics.median(latencies),
            "a": top_k_agreement(*same["catalog"], *got["catalog"]),
            "b": top_k_agreement(*full["catalog"], *got["catalog"]),
            "c": top_k_agreement(*full["catalog"], got["catalog"][0], full["catalog"][1]),
        }
        if real is not None:
            row["abt"] = retrieval_quality(*got["abt-buy"], real[2])
            row["abt_b"] = top_k_agreement(*full["abt-buy"], *got["abt-buy"])
        rows.append(row)
        print(f"measured {config} ({emb.name})", file=sys.stderr, flush=True)

    base = rows[0]
    sizes = " / ".join(str(bs) for bs in args.batch_sizes)
    abt_head = " | Abt-Buy R@1 / R@10 / MRR | Abt-Buy agreement (b)" if real else ""
    print(
        f"| configuration | products/s (batch {sizes}) | × {base['config']} "
        f"| products per CPU-s (batch) | products/s, one core (CPU time) | query p50 ms "
        f"| load s | top-10 agreement (a) same texts | (b) full texts | (c) fp32 queries"
        f"{abt_head} |"
    )
    print(
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        + (" --- | ---: |" if real else "")
    )
    for r in rows:
        rate_text = " / ".join(f"{r['rates'][bs]:.0f}" for bs in args.batch_sizes)
        ratio = max(r["rates"].values()) / max(base["rates"].values())
        core_text = f"{r['core']:.0f}" if r["core"] else "–"
        abt = ""
        if real is not None:
            r1, r10, mrr = r["abt"]
            abt = f" | {r1:.3f} / {r10:.3f} / {mrr:.3f} | {r['abt_b']:.3f}"
        print(
            f"| {r['config']} | {rate_text} | {ratio:.2f} | {r['cpu_rate']:.0f} ({r['bs']}) | "
            f"{core_text} | {r['p50']:.1f} | {r['load']:.1f} | {r['a']:.3f} | {r['b']:.3f} | "
            f"{r['c']:.3f}{abt} |"
        )
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
