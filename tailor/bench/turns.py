"""Turn-latency measurement: scripted conversations, a concurrent REST driver and statistics.

Pure parts (scripts, percentiles, summaries) are separate from the driver so they can be
unit-tested; the driver talks to a real Rasa server's REST channel with ``httpx``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

#: Scripted conversations: a request, its refinements, details, a reaction, a comparison, a
#: new request. Every shopper move the bot handles appears; all are on the demo catalog.
SCRIPTS: tuple[tuple[str, ...], ...] = (
    (
        "I need running shoes under $80",
        "show me cheaper ones",
        "any in blue?",
        "tell me more about the first one",
        "I don't like Nike",
        "show me more",
        "compare the first and the second",
        "thanks, that's helpful",
    ),
    (
        "I'm looking for a warm winter jacket",
        "something from a different brand",
        "not black",
        "show me more",
        "more like the second one",
        "what about waterproof hiking boots?",
        "under 120 please",
        "start over",
    ),
    (
        "recommend wireless headphones under $150",
        "noise cancelling",
        "more like the first one",
        "those are too expensive",
        "details on number 2",
        "I want a coffee machine",
        "from De'Longhi",
        "great, thank you",
    ),
    (
        "hi",
        "a yoga mat",
        "thick and non slip",
        "show me more",
        "compare 1 and 3",
        "I hate the colour of these",
        "a fitness tracker",
        "bye",
    ),
    (
        "gift ideas for a 6 year old who loves lego",
        "cheaper",
        "something else",
        "tell me about the third",
        "a duvet cover set in king size",
        "cotton",
        "not grey",
        "what's the weather like?",
    ),
    (
        "leather dress shoes size 10",
        "brown",
        "show me more",
        "the second one looks nice",
        "a power bank",
        "cheaper ones",
        "from Anker",
        "that's all, thanks",
    ),
)


def conversations(count: int, scripts: Sequence[Sequence[str]] = SCRIPTS) -> list[list[str]]:
    """``count`` conversations cycling through ``scripts`` (the same list for every bot)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return [list(scripts[i % len(scripts)]) for i in range(count)]


def first_sights(
    seen: Iterable[str], levels: Sequence[Sequence[Sequence[str]]]
) -> list[frozenset[tuple[int, int]]]:
    """Which messages of each level (``(conversation, index)``; levels in the order they
    run, conversations in their order) are the first time the bots get their text, after
    the texts ``seen`` before measuring. The bots keep per-text caches, so such a turn pays
    the text's models where a repeat does not; the scripts repeat, and the first level to
    run holds all of them."""
    known = set(seen)
    out = []
    for convs in levels:
        first = set()
        for number, messages in enumerate(convs):
            for index, text in enumerate(messages):
                if text not in known:
                    known.add(text)
                    first.add((number, index))
        out.append(frozenset(first))
    return out


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``p`` % of values <= it."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"p must be within [0, 100], got {p}")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


#: What the Rasa channels answer when an action failed or timed out (``FALLBACK_TEXT`` in
#: ``bot/tailor_channels.py``, a module of the Rasa venv; a test keeps the two equal).
FALLBACK_TEXT = (
    "Sorry, I'm having trouble finding products right now — please try again in a moment."
)


def answer_error(body: Any) -> str:
    """Why a REST answer is a failed turn ("" when it is not): no messages, or the fallback
    message the channel sends when an action failed."""
    if not body:
        return "empty answer"
    if isinstance(body, list) and any(
        isinstance(m, dict) and m.get("text") == FALLBACK_TEXT for m in body
    ):
        return "fallback answer"
    return ""


@dataclass
class Turn:
    """One message sent and how it went."""

    conversation: int
    index: int
    latency_ms: float
    ok: bool
    error: str = ""
    replies: int = 0


@dataclass
class RunResult:
    """All turns of one run (one bot, one concurrency) and its wall time."""

    bot: str
    concurrency: int
    turns: list[Turn] = field(default_factory=list)
    wall_s: float = 0.0
    #: CPU seconds each server process used during the run (``"Rasa server"``, ...).
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Turns that failed (HTTP error, timeout, connection error, empty or fallback
        answer)."""
        return sum(not t.ok for t in self.turns)

    def latencies(self) -> list[float]:
        """Latencies (ms) of the successful turns."""
        return [t.latency_ms for t in self.turns if t.ok]

    def cpu_ms_per_turn(self) -> dict[str, float]:
        """CPU milliseconds per turn of each server process (empty if not measured)."""
        n = len(self.turns)
        return {k: 1000 * v / n for k, v in self.cpu_s.items()} if n else {}

    def summary(self) -> dict[str, float]:
        """p50 / p95 / p99 / mean (ms), throughput (turns/s), turns and errors."""
        values = self.latencies()
        out: dict[str, float] = {
            "turns": float(len(self.turns)),
            "errors": float(self.errors),
            "throughput": len(self.turns) / self.wall_s if self.wall_s > 0 else 0.0,
        }
        if values:
            out.update(
                p50=percentile(values, 50),
                p95=percentile(values, 95),
                p99=percentile(values, 99),
                mean=sum(values) / len(values),
            )
        return out


#: Most rounds one level is split into (see :func:`rounds`).
MAX_ROUNDS = 6
#: Fewest rounds a level is split into: with one round, the two bots run one after the
#: other and drift of the machine between them decides the ratio (measured here: at 8
#: shoppers the p50 ratio of one round was 1.07 in one run and 1.40 in the next).
MIN_ROUNDS = 4


def level_size(concurrency: int, min_conversations: int, min_rounds: int = MIN_ROUNDS) -> int:
    """How many conversations a level at ``concurrency`` runs: at least
    ``min_conversations``, and enough for ``min_rounds`` rounds of at least twice
    ``concurrency`` conversations each (see :func:`rounds`)."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    return max(min_conversations, min_rounds * 2 * concurrency)


def rounds(
    convs: Sequence[Sequence[str]], concurrency: int, max_rounds: int = MAX_ROUNDS
) -> list[tuple[list[Sequence[str]], tuple[str, str]]]:
    """Split one level's conversations into rounds, each run on both bots in turn, the order
    alternating (floor-full, full-floor, ...) so that the machine's drift over the level hits
    both bots alike. A round keeps at least twice ``concurrency`` conversations (so every
    shopper has a second conversation to move on to); at most ``max_rounds`` rounds. Returns
    ``(conversations, order of the bots)`` per round; together the rounds hold every
    conversation once, in the original order."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    n = max(1, min(max_rounds, len(convs) // (2 * concurrency)))
    bounds = [round(i * len(convs) / n) for i in range(n + 1)]
    orders = (("floor", "full"), ("full", "floor"))
    return [(list(convs[bounds[i] : bounds[i + 1]]), orders[i % 2]) for i in range(n)]


def merge_runs(runs: Sequence[RunResult]) -> RunResult:
    """One bot's rounds at one concurrency as one run: every turn, the wall times summed."""
    if not runs:
        raise ValueError("no runs to merge")
    bots = {(r.bot, r.concurrency) for r in runs}
    if len(bots) != 1:
        raise ValueError(f"runs of different bots or concurrencies: {sorted(bots)}")
    merged = RunResult(runs[0].bot, runs[0].concurrency)
    offset = 0
    for run in runs:
        # conversation numbers stay distinct across rounds
        merged.turns.extend(
            dataclasses.replace(t, conversation=t.conversation + offset) for t in run.turns
        )
        offset += 1 + max((t.conversation for t in run.turns), default=-1)
        merged.wall_s += run.wall_s
        for process, seconds in run.cpu_s.items():
            merged.cpu_s[process] = merged.cpu_s.get(process, 0.0) + seconds
    return merged


async def drive(
    rasa_url: str,
    convs: Sequence[Sequence[str]],
    concurrency: int,
    bot: str,
    timeout: float = 60.0,
    tag: str = "",
) -> RunResult:
    """Send ``convs`` through the REST channel of ``rasa_url`` with ``concurrency`` shoppers.

    Each worker takes the next conversation and sends its messages one after another (a
    shopper waits for the answer before typing again); ``concurrency`` workers run at once.
    Every conversation gets a new sender id, so runs never share a tracker.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    url = f"{rasa_url.rstrip('/')}/webhooks/rest/webhook"
    result = RunResult(bot=bot, concurrency=concurrency)
    queue: asyncio.Queue[tuple[int, Sequence[str]]] = asyncio.Queue()
    for item in enumerate(convs):
        queue.put_nowait(item)
    run_id = tag or uuid.uuid4().hex[:8]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                number, messages = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            sender = f"bench-{bot}-{run_id}-{number}"
            for index, text in enumerate(messages):
                t0 = time.perf_counter()
                try:
                    resp = await client.post(url, json={"sender": sender, "message": text})
                    ms = (time.perf_counter() - t0) * 1000
                    if resp.status_code == 200:
                        body = resp.json()
                        # Rasa's REST channel answers 200 with no messages when handling
                        # the message failed: every message of these scripts gets an answer
                        # and the fallback message when an action failed or timed out
                        error = answer_error(body)
                        ok = not error
                        result.turns.append(Turn(number, index, ms, ok, error, len(body)))
                    else:
                        result.turns.append(
                            Turn(number, index, ms, False, f"HTTP {resp.status_code}")
                        )
                except (httpx.HTTPError, ValueError) as exc:
                    ms = (time.perf_counter() - t0) * 1000
                    result.turns.append(Turn(number, index, ms, False, type(exc).__name__))

    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        result.wall_s = time.perf_counter() - t0
    return result


@dataclass
class LongRun:
    """Latencies (ms) of the long conversations, by turn, and of the new conversations sent
    beside their last full pass of the script (same messages, same moments)."""

    long: list[list[float]]
    beside: list[list[float]]


def last_pass_start(turns: int, window: int) -> int:
    """The first turn (0-based) of the last full pass of a ``window``-message script in a
    conversation of ``turns`` turns."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if turns < 2 * window:
        raise ValueError(f"need at least {2 * window} turns per conversation, got {turns}")
    return (turns // window - 1) * window


async def drive_long(
    rasa_url: str,
    script: Sequence[str],
    turns: int,
    parallel: int,
    bot: str,
    timeout: float = 60.0,
) -> LongRun:
    """``parallel`` long conversations of ``turns`` turns each (``script`` repeated), sent in
    lock-step (turn i of every conversation before turn i+1 of any). During their last full
    pass of the script, ``parallel`` new conversations send the same messages beside them,
    the order alternating turn by turn: the same message at turn 1 and at turn ~50, at the
    same moment, so the machine's drift over the run does not enter the ratio."""
    url = f"{rasa_url.rstrip('/')}/webhooks/rest/webhook"
    run_id = uuid.uuid4().hex[:8]
    senders = [f"bench-long-{bot}-{run_id}-{i}" for i in range(parallel)]
    fresh = [f"bench-beside-{bot}-{run_id}-{i}" for i in range(parallel)]
    start = last_pass_start(turns, len(script))
    out = LongRun([[] for _ in senders], [[] for _ in fresh])
    async with httpx.AsyncClient(timeout=timeout) as client:

        async def send(sender: str, text: str) -> float:
            t0 = time.perf_counter()
            resp = await client.post(url, json={"sender": sender, "message": text})
            ms = (time.perf_counter() - t0) * 1000
            resp.raise_for_status()
            return ms

        for turn in range(turns):
            text = script[turn % len(script)]
            beside = start <= turn < start + len(script)
            for i, sender in enumerate(senders):
                if beside and turn % 2:
                    out.beside[i].append(await send(fresh[i], text))
                out.long[i].append(await send(sender, text))
                if beside and not turn % 2:
                    out.beside[i].append(await send(fresh[i], text))
    return out


def growth(per_conversation: Sequence[Sequence[float]], window: int) -> tuple[float, float]:
    """Median latency of the first ``window`` turns and of the last full ``window`` turns,
    pooled over conversations. With ``window`` the script's length, both windows send the
    same messages (at different moments: see :func:`growth_beside`)."""
    turns = min(len(c) for c in per_conversation)
    last_start = last_pass_start(turns, window)
    first = [v for c in per_conversation for v in c[:window]]
    last = [v for c in per_conversation for v in c[last_start : last_start + window]]
    return percentile(first, 50), percentile(last, 50)


def growth_beside(run: LongRun, window: int) -> tuple[float, float]:
    """Median latency of new conversations' first ``window`` turns and of the long
    conversations' last full ``window`` turns, sent side by side (:func:`drive_long`): the
    cost of the conversation's length alone, without the machine's drift between the start
    and the end of the run."""
    if not run.beside or any(len(c) < window for c in run.beside):
        raise ValueError(f"need {window} turns of every conversation sent beside the last pass")
    _, last = growth(run.long, window)
    return percentile([v for c in run.beside for v in c[:window]], 50), last
