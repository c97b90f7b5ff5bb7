"""Round trip of recommendation turns through the REST channel, and the servers' memory.

Starts the real action server and Rasa server on the catalog in TAILOR_HOME (default ./var:
run `make run` once first so the 10,000-product catalog, index and model exist), sends
N sequential turns (a recommendation and its refinements, restarted every few turns) and
prints p50/p95 latency and the RSS of both servers (summed over their process trees).
The same turns are sent twice, interleaved: as an anonymous visitor and as an identified
demo customer (signed token in the message metadata), so the cost of personalisation
(profile, history, segment prior, session signals) is a ratio measured in the same run.

    .venv/bin/python scripts/bench_turns.py [--turns 50] [--customer cust-0001] [--long 100]

``--long N`` then sends N turns in one conversation and compares the first and the last
pass of the script: how latency grows with the length of a conversation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

import httpx

from tailor.config import Settings
from tailor.profiles.identity import sign_customer_token
from tailor.runtime import processes as P
from tailor.runtime.processes import tree_rss_mb
from tailor.runtime.rasa import model_path
from tailor.runtime.secrets import ensure_customer_token_secret

SCRIPT = [
    "I need running shoes under $80",
    "show me cheaper ones",
    "any in blue?",
    "show me more",
    "I don't like Nike",
    "I'm looking for a warm winter jacket",
    "something from a different brand",
    "show me wireless headphones under $150",
    "more like the first one",
    "start over",
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--customer", default="cust-0001", help="demo customer to act as")
    parser.add_argument(
        "--long",
        type=int,
        default=50,
        help="turns of one long conversation (growth of latency with its length; 0: skip)",
    )
    args = parser.parse_args()
    settings = ensure_customer_token_secret(Settings.load(rasa_port=5105, action_port=5155))
    model = model_path(settings)
    if not model.exists():
        print(
            f"No trained model at {model}; run `make run` (or `tailor train`) first.",
            file=sys.stderr,
        )
        return 2
    actions, rasa = P.action_server(settings), P.rasa_server(settings, model)
    try:
        actions.start()
        rasa.start()
        t_actions = actions.wait_ready(180)
        t_rasa = rasa.wait_ready(600)
        t0 = time.monotonic()
        P.warm_up_actions(settings)
        t_warm = time.monotonic() - t0
        url = f"{settings.rasa_url}/webhooks/rest/webhook"
        token = sign_customer_token(args.customer, settings.customer_token_secret, 3600)
        modes = {"anonymous": None, "identified": {"customer_token": token}}
        latencies: dict[str, list[float]] = {m: [] for m in modes}
        with httpx.Client(timeout=60) as client:
            senders = dict.fromkeys(modes, "")
            for i in range(args.turns):
                for mode, meta in modes.items():
                    if i % len(SCRIPT) == 0:
                        senders[mode] = f"bench-{mode}-{uuid.uuid4().hex[:8]}"
                    body: dict[str, object] = {
                        "sender": senders[mode],
                        "message": SCRIPT[i % len(SCRIPT)],
                    }
                    if meta:
                        body["metadata"] = meta
                    t = time.perf_counter()
                    resp = client.post(url, json=body)
                    latencies[mode].append((time.perf_counter() - t) * 1000)
                    resp.raise_for_status()
            # one long conversation: the script over and over, never a new sender, so the
            # tracker Rasa sends to the action server keeps growing
            long_ms: list[float] = []
            sender = f"bench-long-{uuid.uuid4().hex[:8]}"
            for i in range(args.long):
                t = time.perf_counter()
                resp = client.post(url, json={"sender": sender, "message": SCRIPT[i % len(SCRIPT)]})
                long_ms.append((time.perf_counter() - t) * 1000)
                resp.raise_for_status()
        stats = {}
        for mode, values in latencies.items():
            values.sort()
            p95 = values[max(0, round(0.95 * len(values)) - 1)]
            stats[mode] = (statistics.median(values), p95, values[0], values[-1])
        assert actions.proc is not None and rasa.proc is not None
        print(
            f"action server ready in {t_actions:.1f} s; Rasa server ready in {t_rasa:.1f} s; "
            f"recommender warm-up {t_warm:.1f} s"
        )
        for mode, (p50, p95, lo, hi) in stats.items():
            print(
                f"{args.turns} sequential turns, {mode}: p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
                f"min {lo:.0f} ms, max {hi:.0f} ms"
            )
        ratio = stats["identified"][0] / stats["anonymous"][0]
        print(f"identified / anonymous p50: {ratio:.2f}x")
        if len(long_ms) >= 2 * len(SCRIPT):
            n = len(SCRIPT)
            cycles = len(long_ms) // n
            first, last = long_ms[:n], long_ms[(cycles - 1) * n : cycles * n]
            growth = statistics.median(last) / statistics.median(first)
            print(
                f"one conversation of {len(long_ms)} turns: first pass of the {n}-message "
                f"script p50 {statistics.median(first):.0f} ms, pass {cycles} p50 "
                f"{statistics.median(last):.0f} ms ({growth:.2f}x); "
                f"turn 1 {long_ms[0]:.0f} ms, turn {cycles * n} {long_ms[cycles * n - 1]:.0f} ms"
            )
        print(
            f"RSS: Rasa server {tree_rss_mb(rasa.proc.pid):.0f} MiB, "
            f"action server {tree_rss_mb(actions.proc.pid):.0f} MiB"
        )
    finally:
        rasa.stop()
        actions.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
