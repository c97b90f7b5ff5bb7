"""Round trip of recommendation turns through the REST channel, and the servers' memory.

Starts the real action server and Rasa server on the catalog in TAILOR_HOME (default ./var:
run `make run` once first so the 10,000-product catalog, index and model exist), sends
N sequential turns (a recommendation and its refinements, restarted every few turns) and
prints p50/p95 latency and the RSS of both servers (summed over their process trees).

    .venv/bin/python scripts/bench_turns.py [--turns 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

from tailor.config import Settings
from tailor.runtime import processes as P
from tailor.runtime.rasa import model_path

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


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
            )
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            todo.extend(int(c) for c in children)
        except (OSError, StopIteration):
            continue
    return total / 1024


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=50)
    args = parser.parse_args()
    settings = Settings.load(rasa_port=5105, action_port=5155)
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
        latencies: list[float] = []
        with httpx.Client(timeout=60) as client:
            sender = f"bench-{uuid.uuid4().hex[:8]}"
            for i in range(args.turns):
                if i % len(SCRIPT) == 0:
                    sender = f"bench-{uuid.uuid4().hex[:8]}"
                msg = SCRIPT[i % len(SCRIPT)]
                t = time.perf_counter()
                resp = client.post(url, json={"sender": sender, "message": msg})
                latencies.append((time.perf_counter() - t) * 1000)
                resp.raise_for_status()
        latencies.sort()
        p50 = statistics.median(latencies)
        p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
        assert actions.proc is not None and rasa.proc is not None
        print(
            f"action server ready in {t_actions:.1f} s; Rasa server ready in {t_rasa:.1f} s; "
            f"recommender warm-up {t_warm:.1f} s"
        )
        print(
            f"{len(latencies)} sequential turns: p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
            f"min {latencies[0]:.0f} ms, max {latencies[-1]:.0f} ms"
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
