"""``tailor bench soak``: many conversations through the whole stack for a bounded time.

A private stack (action server, Rasa server, web app) over a copy of the embedded database, on
free localhost ports, is driven through the web app's ``/api/chat`` — the path the page uses —
by ``shoppers`` concurrent shoppers, each running the scripted conversations of
:mod:`tailor.bench.turns` one after another (a new conversation id each time) until the time is
up. It measures:

* errors: HTTP errors, timeouts, empty answers and the bot's apology for a failed action
  (``FALLBACK_TEXT`` of ``bot/tailor_channels.py``) — the target is zero;
* persistence: messages answered against the ``user`` events of those conversations in Rasa's
  tracker store and the ``message`` events in Tailor's event log — every one must be stored;
* memory: the resident memory of each service (with its children) sampled every few seconds;
  the least-squares slope and the mean of the first and last tenth of the run show whether it
  levels off or keeps growing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tailor.bench.turns import SCRIPTS, Turn, percentile
from tailor.config import Settings
from tailor.runtime.processes import Service, tree_rss_mb

Echo = Callable[[str], None]

#: The bot's answer when an action failed (``FALLBACK_TEXT`` in ``bot/tailor_channels.py``,
#: which runs in the Rasa venv and cannot be imported here). A soak counts it as an error.
FALLBACK_PREFIX = "Sorry, I'm having trouble finding products right now"
#: Share of the run at each end whose RSS samples are compared.
WINDOW_SHARE = 0.1


@dataclass
class MemoryTrend:
    """RSS of one service over the run."""

    first_mb: float
    last_mb: float
    peak_mb: float
    slope_mb_per_min: float

    @property
    def growth_mb(self) -> float:
        """Mean RSS of the last window minus that of the first."""
        return self.last_mb - self.first_mb


def memory_trend(
    samples: Sequence[tuple[float, float]], share: float = WINDOW_SHARE
) -> MemoryTrend:
    """Trend of ``(seconds, MiB)`` samples: least-squares slope (MiB/min) and the mean of the
    first and last ``share`` of the samples (at least one each)."""
    if len(samples) < 2:
        raise ValueError(f"need at least 2 memory samples, got {len(samples)}")
    if not 0 < share <= 0.5:
        raise ValueError(f"share must be within (0, 0.5], got {share}")
    n = len(samples)
    k = max(1, int(n * share))
    ts = [t for t, _ in samples]
    ms = [m for _, m in samples]
    t_mean, m_mean = sum(ts) / n, sum(ms) / n
    var = sum((t - t_mean) ** 2 for t in ts)
    slope = sum((t - t_mean) * (m - m_mean) for t, m in samples) / var if var > 0 else 0.0
    return MemoryTrend(
        first_mb=sum(ms[:k]) / k,
        last_mb=sum(ms[-k:]) / k,
        peak_mb=max(ms),
        slope_mb_per_min=slope * 60,
    )


def answer_error(status: int, body: Any) -> str:
    """Why an answer of ``/api/chat`` is a failure ("" when it is a good answer)."""
    if status != 200:
        return f"HTTP {status}"
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        return "empty answer"
    if any(
        str(m.get("text", "")).startswith(FALLBACK_PREFIX) for m in messages if isinstance(m, dict)
    ):
        return "fallback answer"
    return ""


@dataclass
class SoakResult:
    """What one soak measured."""

    minutes: float
    shoppers: int
    run_id: str
    turns: list[Turn] = field(default_factory=list)
    conversations: int = 0
    memory: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    tracker_user_events: int = 0
    logged_message_events: int = 0
    started: str = ""
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        """Messages sent."""
        return len(self.turns)

    @property
    def answered(self) -> int:
        """Messages answered properly."""
        return sum(t.ok for t in self.turns)

    @property
    def errors(self) -> int:
        """Messages not answered properly."""
        return self.sent - self.answered

    def trends(self) -> dict[str, MemoryTrend]:
        """Memory trend per service."""
        return {name: memory_trend(s) for name, s in self.memory.items() if len(s) >= 2}

    def verdicts(self) -> list[str]:
        """Errors, persistence and memory, each met or missed."""
        lines = [
            f"errors: {self.errors} of {self.sent} messages — "
            + ("met" if self.errors == 0 and self.sent else "MISSED"),
            f"persisted: {self.tracker_user_events} user events in the tracker store and "
            f"{self.logged_message_events} message events in the event log for {self.sent} "
            "messages sent — "
            + (
                "met"
                if self.tracker_user_events == self.logged_message_events == self.sent
                else "MISSED"
            ),
        ]
        for name, trend in self.trends().items():
            lines.append(
                f"memory of the {name}: {trend.first_mb:.0f} → {trend.last_mb:.0f} MiB "
                f"(first and last tenth), slope {trend.slope_mb_per_min:+.2f} MiB/min, "
                f"peak {trend.peak_mb:.0f} MiB"
            )
        return lines


async def _soak(
    web_url: str,
    services: dict[str, Service],
    result: SoakResult,
    seconds: float,
    sample_every: float,
    timeout: float,
) -> None:
    deadline = time.monotonic() + seconds
    t0 = time.monotonic()
    next_conversation = 0

    async def shopper(client: httpx.AsyncClient) -> None:
        nonlocal next_conversation
        while time.monotonic() < deadline:
            number = next_conversation
            next_conversation += 1
            result.conversations += 1
            sender = f"soak-{result.run_id}-{number}"
            for index, text in enumerate(SCRIPTS[number % len(SCRIPTS)]):
                if time.monotonic() >= deadline:
                    return
                t_send = time.perf_counter()
                try:
                    resp = await client.post("/api/chat", json={"sender": sender, "message": text})
                    body = resp.json() if resp.status_code == 200 else None
                    error = answer_error(resp.status_code, body)
                except (httpx.HTTPError, ValueError) as exc:
                    error = type(exc).__name__
                ms = (time.perf_counter() - t_send) * 1000
                result.turns.append(Turn(number, index, ms, not error, error))

    async def sampler() -> None:
        while True:
            now = time.monotonic() - t0
            for name, svc in services.items():
                if svc.proc is not None and svc.alive():
                    result.memory.setdefault(name, []).append((now, tree_rss_mb(svc.proc.pid)))
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(min(sample_every, max(0.0, deadline - time.monotonic())))

    limits = httpx.Limits(max_connections=result.shoppers)
    async with httpx.AsyncClient(base_url=web_url, timeout=timeout, limits=limits) as client:
        await asyncio.gather(sampler(), *(shopper(client) for _ in range(result.shoppers)))


def count_persisted(settings: Settings, run_id: str) -> tuple[int, int]:
    """``user`` events in the tracker store and ``message`` events in the event log, of the
    conversations of soak ``run_id``."""
    from sqlalchemy import func, select

    from tailor.store import make_session_factory
    from tailor.store.models import Event

    pattern = f"soak-{run_id}-%"
    tracker_db = Path(settings.home) / "rasa_tracker.db"
    with sqlite3.connect(tracker_db) as db:
        (tracker,) = db.execute(
            "SELECT count(*) FROM events WHERE type_name = 'user' AND sender_id LIKE ?",
            (pattern,),
        ).fetchone()
    factory = make_session_factory(settings.database_url)
    with factory() as session:
        logged = session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.kind == "message", Event.sender_id.like(pattern))
        )
    return int(tracker), int(logged or 0)


def run_soak(
    settings: Settings,
    model: Path,
    minutes: float = 10.0,
    shoppers: int = 8,
    sample_every: float = 5.0,
    echo: Echo = print,
) -> SoakResult:
    """Start a private stack, drive it for ``minutes`` with ``shoppers`` concurrent shoppers,
    then count what was stored; see the module docstring."""
    from tailor.evaluation.stack import eval_settings
    from tailor.runtime import processes as P

    if minutes <= 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")
    if shoppers < 1:
        raise ValueError(f"shoppers must be >= 1, got {shoppers}")
    result = SoakResult(
        minutes=minutes,
        shoppers=shoppers,
        run_id=uuid.uuid4().hex[:8],
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    t_start = time.monotonic()
    s = eval_settings(settings, "soak")
    actions = P.action_server(s)
    rasa = P.rasa_server(s, model)
    web = P.web_server(s, rasa.env["TAILOR_RASA_TOKEN"])
    # Every shopper comes from 127.0.0.1: the per-IP limits of /api/chat would stop the soak.
    web.env["TAILOR_RATE_LIMITS"] = "false"
    services = {"action server": actions, "Rasa server": rasa, "web app": web}
    try:
        echo("Starting the action server, the Rasa server and the web app …")
        for svc in services.values():
            svc.start()
        for svc in services.values():
            svc.wait_ready(600 if svc is rasa else 180, echo=echo)
        P.warm_up_actions(s)
        web_url = f"http://{s.host}:{s.web_port}"
        echo(f"Soaking for {minutes:g} min with {shoppers} shoppers through {web_url}/api/chat …")
        asyncio.run(_soak(web_url, services, result, minutes * 60, sample_every, timeout=60.0))
        for name, svc in services.items():
            if not svc.alive():
                raise P.ServiceError(f"the {name} stopped during the soak:\n{svc.tail()}")
    finally:
        for svc in reversed(list(services.values())):
            svc.stop()
    result.tracker_user_events, result.logged_message_events = count_persisted(s, result.run_id)
    result.seconds = time.monotonic() - t_start
    return result


def report_lines(result: SoakResult, command: str, machine: str) -> list[str]:
    """The soak section of ``docs/reliability.md``."""
    ok = [t.latency_ms for t in result.turns if t.ok]
    kinds: dict[str, int] = {}
    for t in result.turns:
        if not t.ok:
            kinds[t.error] = kinds.get(t.error, 0) + 1
    lines = [
        f"Written by `{command}` on {result.started} ({result.seconds / 60:.1f} min in all).",
        f"Machine: {machine}.",
        "",
        f"{result.shoppers} concurrent shoppers for {result.minutes:g} min through the web "
        f"app's `/api/chat`: {result.sent} messages in {result.conversations} conversations "
        f"({result.sent / (result.minutes * 60):.1f} messages/s).",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| messages sent | {result.sent} |",
        f"| answered | {result.answered} |",
        f"| errors | {result.errors}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(kinds.items()))})" if kinds else "")
        + " |",
    ]
    if ok:
        lines += [
            f"| latency p50 / p95 / p99 | {percentile(ok, 50):.0f} / {percentile(ok, 95):.0f} / "
            f"{percentile(ok, 99):.0f} ms |",
        ]
    lines += [
        f"| `user` events in the tracker store | {result.tracker_user_events} |",
        f"| `message` events in the event log | {result.logged_message_events} |",
        "",
        "| service | RSS first tenth | RSS last tenth | growth | slope | peak |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, trend in result.trends().items():
        lines.append(
            f"| {name} | {trend.first_mb:.0f} MiB | {trend.last_mb:.0f} MiB | "
            f"{trend.growth_mb:+.0f} MiB | {trend.slope_mb_per_min:+.2f} MiB/min | "
            f"{trend.peak_mb:.0f} MiB |"
        )
    lines += ["", *[f"- {line}" for line in result.verdicts()]]
    return lines


SOAK_BEGIN = "<!-- soak:begin (written by `tailor bench soak`) -->"
SOAK_END = "<!-- soak:end -->"


def write_report(path: Path, lines: Sequence[str]) -> Path:
    """Put ``lines`` between the soak markers of ``path`` (appended when it has none)."""
    block = "\n".join([SOAK_BEGIN, *lines, SOAK_END])
    text = path.read_text(encoding="utf-8") if path.exists() else "# Reliability\n\n"
    if SOAK_BEGIN in text and SOAK_END in text:
        head, rest = text.split(SOAK_BEGIN, 1)
        _, tail = rest.split(SOAK_END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
