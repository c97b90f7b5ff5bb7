"""Offline evaluation of personalisation on the demo histories (leave the last purchase out).

    .venv/bin/python scripts/eval_personalisation.py [--products 10000 --customers 500]
        [--home var/eval-personalisation] [--out docs/personalisation-results.md]

Builds the demo catalog, customers and events into ``--home`` (a ``TAILOR_HOME``-style
folder: ``tailor.db`` and ``index/``) unless it already holds a catalog, opens (or builds)
the FAISS index, then ranks every held-out purchase with every method (see
``tailor.recommend.evaluation``) and prints markdown tables: the request filtered to the
held-out product's leaf, then the leaf name alone without a filter.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tailor.config import PROJECT_ROOT, Settings


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Build or reuse the demo, evaluate, print (and optionally write) the report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=PROJECT_ROOT / "var" / "eval-personalisation")
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=200, help="top-N retrieved per request")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--no-unfiltered", action="store_true", help="skip the unfiltered table")
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)

    from tailor.demo import load_demo
    from tailor.recommend.evaluation import evaluate, load_eval_data, prepare, render_markdown
    from tailor.retrieval import ProductSearch
    from tailor.store import make_session_factory
    from tailor.store.catalog import count_products

    started = time.perf_counter()
    settings = Settings.load(home=args.home)
    settings.home.mkdir(parents=True, exist_ok=True)
    factory = make_session_factory(settings.database_url)
    with factory() as session:
        existing = count_products(session)
    if existing == 0:
        _log(f"Building the demo ({args.products} products, {args.customers} customers)…")
        _log(str(load_demo(factory, args.products, args.customers, args.seed, progress=True)))
    else:
        _log(f"Reusing the catalog in {settings.database_url} ({existing} products).")
    t0 = time.perf_counter()
    search = ProductSearch.open_configured(settings, factory, progress=True)
    seconds = time.perf_counter() - t0
    _log(f"Index: {search.last_open_report} ({len(search)} products, {seconds:.1f} s).")

    data = load_eval_data(factory)
    prep = prepare(data, seed=args.seed)
    _log(
        f"{len(data.customers)} customers, {len(data.events)} events; "
        f"{len(prep.split.cases)} held-out purchases; training view: "
        f"{len(prep.split.training)} events (segments fitted in {prep.seconds:.1f} s)."
    )
    variants = [True] if args.no_unfiltered else [True, False]
    sections: list[str] = []
    timings: list[str] = []
    for filtered in variants:
        report = evaluate(
            prep,
            search,
            filtered=filtered,
            k=args.k,
            n_candidates=args.candidates,
            ablations=not args.no_ablations,
            n_boot=args.bootstrap,
            seed=args.seed,
            progress=True,
        )
        title = "Filtered to the leaf" if filtered else "Leaf name only, no filter"
        sections.append(f"### {title}\n\n{render_markdown(report)}")
        timings.append(f"{title.lower()}: {report.seconds:.0f} s")
    total = time.perf_counter() - started
    header = (
        f"Demo: {len(data.products)} products, {len(data.customers)} customers, seed "
        f"{args.seed}. Run time {total:.0f} s in all (ranking: {'; '.join(timings)})."
    )
    text = header + "\n\n" + "\n\n".join(sections) + "\n"
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        _log(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
