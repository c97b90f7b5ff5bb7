#!/usr/bin/env python
"""Benchmark the vector index backends at catalog scale with exact metadata filters.

Usage: .venv/bin/python scripts/bench_index.py [--sizes 100000 1000000] [--dim 384]
       [--queries 200] [--flat-queries 20] [--hnsw-max 200000] [--distribution clustered]

Vectors are synthetic unit vectors, a Gaussian mixture on the sphere (``--distribution
clustered``, like real product embeddings: ~2 sqrt(N) clusters of uneven size, each point at
cosine ~0.7 from its centre) or uniform random (``uniform``, the unrealistic worst case for
IVF/HNSW). Each product gets a category (50, ~2 % each, 90 % of a cluster shares one), a brand
(10 per category, ~0.2 % each) and a log-normal price. Queries are perturbed data points; the
filters are those a shopper sets: none, the query product's category, a price range (~30 %),
its brand, category + price, and a random category (uncorrelated with the query: the hard
case for ANN). ``ivf`` is built as ProductSearch builds it at scale: partitioned by the
category facet (``facet="category"``, the category codes passed to ``add``);
``--unpartitioned`` adds ``ivf-plain``, the same index without the partition, and
``ivf-plain-e1`` (it with ``selectivity_exponent=1``: lists widened by 1 / selectivity, the
plan before the partition).

For each size x index x filter: build time, memory (RSS growth during the build and the
saved files), top-10 query latency p50/p95 single-threaded (``faiss.omp_set_num_threads(1)``,
through ``VectorIndex.search`` with the allowed ids as the engine passes them), recall@10
against an exact filtered scan, and the ratio to the flat (exact) index's p50 measured in the
same run. ``ivf`` is the default IVFIndex (selectivity-aware plan); ``ivf-lists`` forces the
inverted lists and ``ivf-exact`` the exact subset scan (``--flat-queries`` queries, like
flat), on the same trained index, to show where the plan's threshold sits; ``ivf-nprobeN`` is
the plan with another base ``nprobe``. The plan column says how many queries took the exact
scan and which ``nprobe`` the lists got. Builds use 2 threads. Prints a markdown table. Not
part of the test suite.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILTERS = ("none", "category", "price 30%", "brand", "category+price", "random category")
N_CATEGORIES = 50
BRANDS_PER_CATEGORY = 10


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc``)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Catalog:
    """Synthetic products: ids, vectors and the filterable columns."""

    ids: np.ndarray
    vectors: np.ndarray
    category: np.ndarray
    brand: np.ndarray
    price: np.ndarray
    cluster: np.ndarray


def make_catalog(n: int, dim: int, distribution: str, seed: int) -> Catalog:
    """Generate ``n`` products in chunks of 100k (memory-friendly)."""
    rng = np.random.default_rng(seed)
    n_clusters = max(20, int(2 * np.sqrt(n)))
    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = rng.lognormal(0.0, 1.0, n_clusters)
    weights /= weights.sum()
    cluster_category = rng.integers(0, N_CATEGORIES, n_clusters)
    vectors = np.empty((n, dim), dtype=np.float32)
    cluster = rng.choice(n_clusters, size=n, p=weights)
    step = 100_000
    for start in range(0, n, step):
        stop = min(n, start + step)
        if distribution == "uniform":
            block = rng.standard_normal((stop - start, dim), dtype=np.float32)
        else:
            noise = rng.standard_normal((stop - start, dim), dtype=np.float32)
            block = centres[cluster[start:stop]] + noise * np.float32(1.0 / np.sqrt(dim))
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        vectors[start:stop] = block
    category = np.where(
        rng.random(n) < 0.9, cluster_category[cluster], rng.integers(0, N_CATEGORIES, n)
    )
    brand = category * BRANDS_PER_CATEGORY + rng.integers(0, BRANDS_PER_CATEGORY, n)
    price = rng.lognormal(3.5, 0.8, n)
    # Product ids: increasing with gaps, as a database assigns them and the engine adds them.
    ids = np.cumsum(rng.integers(1, 4, n)).astype(np.int64)
    return Catalog(ids, vectors, category, brand, price, cluster)


def make_queries(cat: Catalog, nq: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Perturbed data points and the rows they came from."""
    rng = np.random.default_rng(seed + 1)
    src = rng.choice(cat.ids.size, size=nq, replace=False)
    dim = cat.vectors.shape[1]
    q = cat.vectors[src] + rng.standard_normal((nq, dim), dtype=np.float32) * np.float32(
        0.5 / np.sqrt(dim)
    )
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.ascontiguousarray(q, dtype=np.float32), src


def filter_masks(cat: Catalog, src: np.ndarray, seed: int) -> dict[str, list[np.ndarray | None]]:
    """Per filter, per query: the mask of allowed rows (``None``: no filter)."""
    rng = np.random.default_rng(seed + 2)
    order = np.sort(cat.price)
    out: dict[str, list[np.ndarray | None]] = {f: [] for f in FILTERS}
    for j, row in enumerate(src):
        lo_q = rng.uniform(0.0, 0.7)
        lo, hi = order[int(lo_q * (order.size - 1))], order[int((lo_q + 0.3) * (order.size - 1))]
        price = (cat.price >= lo) & (cat.price <= hi)
        category = cat.category == cat.category[row]
        out["none"].append(None)
        out["category"].append(category)
        out["price 30%"].append(price)
        out["brand"].append(cat.brand == cat.brand[row])
        out["category+price"].append(category & price)
        out["random category"].append(cat.category == (cat.category[row] + 1 + j) % N_CATEGORIES)
    return out


def exact_truth(
    cat: Catalog, queries: np.ndarray, masks: list[np.ndarray | None], scores: np.ndarray, k: int
) -> list[np.ndarray]:
    """Top-``k`` ids of the exact filtered scan, per query."""
    truth = []
    for j, mask in enumerate(masks):
        rows = np.arange(cat.ids.size) if mask is None else np.flatnonzero(mask)
        s = scores[j, rows]
        kk = min(k, rows.size)
        top = np.argpartition(-s, kk - 1)[:kk] if kk < rows.size else np.arange(rows.size)
        truth.append(cat.ids[rows[top]])
    return truth


@dataclass
class Row:
    """One line of the results table."""

    size: int
    index: str
    flt: str
    allowed: int
    build_s: float
    rss_mb: float
    disk_mb: float
    p50: float
    p95: float
    recall: float
    note: str = ""


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def bench_size(args: argparse.Namespace, n: int) -> list[Row]:
    """Everything for one catalog size."""
    import faiss

    from tailor.retrieval.index import IVFIndex, VectorIndex, create_index

    _log(f"N={n:,}: generating {args.distribution} vectors ({args.dim}-d)")
    cat = make_catalog(n, args.dim, args.distribution, args.seed)
    queries, src = make_queries(cat, args.queries, args.seed)
    masks = filter_masks(cat, src, args.seed)
    _log("exact scores for the ground truth")
    faiss.omp_set_num_threads(2)
    scores = np.empty((queries.shape[0], n), dtype=np.float32)
    for start in range(0, n, 200_000):
        scores[:, start : start + 200_000] = queries @ cat.vectors[start : start + 200_000].T
    truth = {f: exact_truth(cat, queries, masks[f], scores, args.k) for f in FILTERS}
    del scores
    allowed_ids = {
        f: [None if m is None else np.sort(cat.ids[m]) for m in masks[f]] for f in FILTERS
    }

    # name -> (backend, options); "ivf" is partitioned by category as the engine builds it.
    builds: dict[str, tuple[str, dict[str, object]]] = {
        "flat": ("flat", {}),
        "ivf": ("ivf", {"facet": "category"}),
    }
    if args.unpartitioned:
        builds["ivf-plain"] = ("ivf", {"facet": None})
    if n <= args.hnsw_max:
        builds["hnsw"] = ("hnsw", {})
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench_index_") as tmp:
        for kind, (backend, options) in builds.items():
            faiss.omp_set_num_threads(2)
            _log(f"N={n:,}: building {kind}")
            rss0, t0 = _rss_bytes(), time.perf_counter()
            index = create_index(backend, args.dim, **options)
            # The facet codes, as ProductSearch passes its metadata column (ignored unless
            # the index is partitioned).
            index.add(cat.ids, cat.vectors, facets=cat.category)
            build = time.perf_counter() - t0
            rss = (_rss_bytes() - rss0) / 2**20
            index.save(Path(tmp) / kind)
            disk = _dir_mb(Path(tmp) / kind)
            _log(f"N={n:,}: {kind} built in {build:.1f} s, +{rss:.0f} MB RSS, {disk:.0f} MB saved")
            faiss.omp_set_num_threads(1)
            variants: list[tuple[str, Callable[[VectorIndex], None]]] = [(kind, lambda ix: None)]
            if isinstance(index, IVFIndex) and kind == "ivf-plain":

                def linear(ix: VectorIndex) -> None:
                    assert isinstance(ix, IVFIndex)
                    ix.selectivity_exponent = 1.0

                variants.append(("ivf-plain-e1", linear))
            if isinstance(index, IVFIndex) and kind == "ivf":
                default_threshold = index.exact_threshold

                def lists_only(ix: VectorIndex) -> None:
                    assert isinstance(ix, IVFIndex)
                    ix.exact_threshold = 0

                def exact_only(ix: VectorIndex) -> None:
                    assert isinstance(ix, IVFIndex)
                    ix.exact_threshold = 1 << 62

                default_nprobe = index.nprobe

                def nprobe(value: int, base: int = default_threshold) -> Callable[..., None]:
                    def with_nprobe(ix: VectorIndex) -> None:
                        assert isinstance(ix, IVFIndex)
                        ix.exact_threshold, ix.nprobe = base, value

                    return with_nprobe

                variants += [
                    ("ivf-lists", lists_only),
                    ("ivf-exact", exact_only),
                    *((f"ivf-nprobe{v}", nprobe(v)) for v in (8, 32) if v != default_nprobe),
                ]
            for name, setup in variants:
                setup(index)
                for flt in FILTERS:
                    if name == "ivf-exact" and flt == "none":
                        continue  # the same as flat
                    slow = kind == "flat" or name == "ivf-exact"
                    nq = args.flat_queries if slow else queries.shape[0]
                    rows.append(
                        _measure(
                            index,
                            name,
                            flt,
                            n,
                            queries[:nq],
                            allowed_ids[flt],
                            truth[flt],
                            args.k,
                            build,
                            rss,
                            disk,
                        )
                    )
                    r = rows[-1]
                    _log(
                        f"  {name:10s} {flt:16s} p50 {r.p50:8.2f} ms  recall {r.recall:.3f}"
                        f"  {r.note}"
                    )
            if isinstance(index, IVFIndex) and kind == "ivf":
                index.exact_threshold, index.nprobe = default_threshold, default_nprobe
            del index
    return rows


def _measure(
    index: object,
    name: str,
    flt: str,
    n: int,
    queries: np.ndarray,
    allowed: list[np.ndarray | None],
    truth: list[np.ndarray],
    k: int,
    build: float,
    rss: float,
    disk: float,
) -> Row:
    from tailor.retrieval.index import IVFIndex, VectorIndex

    assert isinstance(index, VectorIndex)
    times: list[float] = []
    hits = total = 0
    plans: set[str] = set()
    nprobes: list[int] = []
    index.search(queries[:1], k, allowed[0])  # warm-up
    for j in range(queries.shape[0]):
        t = time.perf_counter()
        ok = allowed[j]
        _, found = index.search(queries[j : j + 1], k, ok)
        times.append(time.perf_counter() - t)
        want = truth[j]
        hits += len(set(want.tolist()) & set(found[0][found[0] >= 0].tolist()))
        total += want.size
        if ok is not None:
            assert np.isin(found[0][found[0] >= 0], ok).all(), "filter violated"
        if isinstance(index, IVFIndex):
            count = n if ok is None else int(ok.size)
            plans.add("exact" if index.plan(count) == "exact" else "ivf")
            if index.plan(count) != "exact":
                nprobes.append(index.last_nprobe)
    sizes = [n if a is None else int(a.size) for a in allowed]
    times_ms = sorted(t * 1000 for t in times)
    return Row(
        size=n,
        index=name,
        flt=flt,
        allowed=int(statistics.median(sizes)),
        build_s=build,
        rss_mb=rss,
        disk_mb=disk,
        p50=statistics.median(times_ms),
        p95=times_ms[min(len(times_ms) - 1, int(0.95 * len(times_ms)))],
        recall=hits / max(total, 1),
        note=_plan_note(plans, nprobes, len(times)),
    )


def _plan_note(plans: set[str], nprobes: list[int], nq: int) -> str:
    """Which plans the IVF index took, and the nprobe range through the lists."""
    parts = []
    if "exact" in plans:
        parts.append(f"exact {nq - len(nprobes)}/{nq}")
    if nprobes:
        lo, mid, hi = min(nprobes), int(statistics.median(nprobes)), max(nprobes)
        parts.append(f"lists {len(nprobes)}/{nq}, nprobe {lo}-{hi} (median {mid})")
    return "; ".join(parts)


def table(rows: list[Row]) -> str:
    """The markdown table, with each p50 relative to the flat index's for the same filter."""
    flat = {(r.size, r.flt): r.p50 for r in rows if r.index == "flat"}
    out = [
        "| N | index | filter | allowed (median) | build s | RSS +MB | saved MB | p50 ms | "
        "p95 ms | recall@10 | p50 vs flat | plan |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        base = flat.get((r.size, r.flt)) or flat.get((r.size, "none"))
        ratio = f"{r.p50 / base:.3f}" if base else "-"
        out.append(
            f"| {r.size:,} | {r.index} | {r.flt} | {r.allowed:,} | {r.build_s:.1f} | "
            f"{r.rss_mb:.0f} | {r.disk_mb:.0f} | {r.p50:.2f} | {r.p95:.2f} | {r.recall:.3f} | "
            f"{ratio} | {r.note} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--flat-queries", type=int, default=20, help="queries for flat (slow)")
    parser.add_argument("--hnsw-max", type=int, default=200_000, help="largest N to build HNSW")
    parser.add_argument("--distribution", choices=["clustered", "uniform"], default="clustered")
    parser.add_argument(
        "--unpartitioned",
        action="store_true",
        help="also build an IVF without the category partition (ivf-plain) for comparison",
    )
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", stream=sys.stderr)

    import faiss

    all_rows: list[Row] = []
    for n in args.sizes:
        all_rows += bench_size(args, n)
        print(table([r for r in all_rows if r.size == n]), flush=True)
        print(flush=True)
    print(f"## All sizes ({args.distribution}, {args.dim}-d, faiss {faiss.__version__})\n")
    print(table(all_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
