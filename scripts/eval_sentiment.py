"""Print the accuracy table of a sentiment model (default: the shipped adapter).

    .venv/bin/python scripts/eval_sentiment.py [--model DIR]

SST-2 dev and UCI are scored binary (positive when p(positive) > p(negative)); the shopping
held-out part is scored 3-class (arg-max), and binary on its non-neutral rows.
"""

from __future__ import annotations

import argparse
import sys
import time

from tailor.sentiment import SentimentModel, default_model_path, evaluate
from tailor.sentiment.data import (
    load_shopping,
    load_sst2,
    load_uci,
    shared_data_dir,
    split_shopping,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--data", default=str(shared_data_dir() / "sentiment"))
    args = parser.parse_args(argv)
    model = SentimentModel.load(args.model)
    _, heldout = split_shopping(load_shopping())
    sets: dict[str, tuple[list, bool]] = {}
    try:
        sets["SST-2 dev"] = (load_sst2(args.data, "dev"), True)
    except FileNotFoundError:
        print(f"(SST-2 dev not found under {args.data})", file=sys.stderr)
    try:
        for name in ("amazon_cells", "yelp", "imdb"):
            sets[f"UCI {name}"] = (load_uci(f"{args.data}/uci/{name}_labelled.txt"), True)
        sets["UCI all"] = (load_uci(args.data), True)
    except FileNotFoundError:
        print(f"(UCI sentences not found under {args.data})", file=sys.stderr)
    sets["shopping held-out (3-class)"] = (heldout, False)
    sets["shopping held-out (pos/neg rows)"] = ([r for r in heldout if r[1] != "neutral"], True)
    print(f"model: {args.model}")
    print(f"{'data set':34} {'rows':>6} {'accuracy':>9} {'seconds':>8}")
    for name, (rows, binary) in sets.items():
        start = time.perf_counter()
        acc = evaluate(model, rows, binary=binary)
        print(f"{name:34} {len(rows):6d} {acc:9.4f} {time.perf_counter() - start:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
