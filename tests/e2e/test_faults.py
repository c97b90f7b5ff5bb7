"""Faults with real processes: the action server stopped or hung, each service restarted in
the middle of a conversation, ``tailor run`` stopped with SIGTERM, and a short soak.

Nothing is mocked: the services are the real action server, Rasa server and web app of the
embedded profile on a copy of the e2e deployment's database, stopped, frozen (SIGSTOP) and
started again through :class:`tailor.runtime.processes.Service`.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tailor.config import PROJECT_ROOT, Settings
from tailor.evaluation.stack import eval_settings
from tailor.runtime import processes as P
from tailor.runtime.rasa import model_path

from .conftest import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.slow]

#: As ``FALLBACK_TEXT`` in bot/tailor_channels.py (Rasa venv; not importable here).
FALLBACK = "Sorry, I'm having trouble finding products right now — please try again in a moment."
#: Seconds the Rasa server of these tests waits for one action call (``TAILOR_ACTION_TIMEOUT``).
ACTION_TIMEOUT = 4.0


@dataclass
class FaultStack:
    """A private embedded stack whose services the tests stop and start."""

    settings: Settings
    actions: P.Service
    rasa: P.Service
    web: P.Service

    @property
    def token(self) -> str:
        return self.rasa.env["TAILOR_RASA_TOKEN"]

    def say(self, sender: str, text: str) -> list[dict[str, Any]]:
        """One message through Rasa's REST webhook."""
        resp = httpx.post(
            f"{self.settings.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            timeout=60,
        )
        resp.raise_for_status()
        return list(resp.json())

    def chat(self, sender: str, text: str) -> list[dict[str, Any]]:
        """One message through the web app's ``/api/chat`` (what the page sends)."""
        resp = httpx.post(
            f"http://{self.settings.host}:{self.settings.web_port}/api/chat",
            json={"sender": sender, "message": text},
            timeout=60,
        )
        resp.raise_for_status()
        return list(resp.json()["messages"])

    def tracker(self, sender: str) -> dict[str, Any]:
        resp = httpx.get(
            f"{self.settings.rasa_url}/conversations/{sender}/tracker",
            params={"token": self.token, "include_events": "ALL"},
            timeout=30,
        )
        resp.raise_for_status()
        return dict(resp.json())

    def restart(self, svc: P.Service) -> None:
        svc.stop()
        svc.start()
        svc.wait_ready(600 if svc is self.rasa else 180)
        if svc is self.actions:
            P.warm_up_actions(self.settings)


@pytest.fixture(scope="module")
def stack(built_settings: Settings) -> Iterator[FaultStack]:
    settings = eval_settings(built_settings, f"faults-{uuid.uuid4().hex[:6]}")
    actions = P.action_server(settings)
    rasa = P.rasa_server(settings, model_path(built_settings))
    rasa.env["TAILOR_ACTION_TIMEOUT"] = str(ACTION_TIMEOUT)
    web = P.web_server(settings, rasa.env["TAILOR_RASA_TOKEN"])
    made = FaultStack(settings, actions, rasa, web)
    services = [actions, rasa, web]
    try:
        for svc in services:
            svc.start()
        actions.wait_ready(180)
        rasa.wait_ready(600)
        web.wait_ready(60)
        P.warm_up_actions(settings)
        yield made
    finally:
        for svc in reversed(services):
            svc.stop()


def cards(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The product cards among the bot's messages."""
    for m in messages:
        custom = m.get("custom")
        if isinstance(custom, dict) and custom.get("type") == "product_cards":
            return list(custom.get("products") or custom.get("cards") or [])
    return []


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [str(m["text"]) for m in messages if m.get("text")]


def user_texts(tracker: dict[str, Any]) -> list[str]:
    return [str(e.get("text")) for e in tracker["events"] if e.get("event") == "user"]


def answered(messages: list[dict[str, Any]]) -> bool:
    """A real answer: some message, and not the apology."""
    return bool(messages) and FALLBACK not in texts(messages)


def test_action_server_down_gets_an_apology_and_the_conversation_resumes(
    stack: FaultStack,
) -> None:
    sender = f"faults-down-{uuid.uuid4().hex[:8]}"
    first = stack.say(sender, "I need running shoes under $80")
    assert answered(first) and cards(first), first
    slots_before = stack.tracker(sender)["slots"]
    assert slots_before["product_type"]

    stack.actions.stop()
    t0 = time.monotonic()
    down = stack.say(sender, "any in blue?")
    assert time.monotonic() - t0 < ACTION_TIMEOUT + 5
    assert texts(down) == [FALLBACK]

    # The failed turn is complete in the tracker: the message is kept, the bot listens again,
    # and what the shopper asked for before is still there.
    tracker = stack.tracker(sender)
    assert user_texts(tracker) == ["I need running shoes under $80", "any in blue?"]
    assert tracker["events"][-1]["event"] == "action"
    assert tracker["events"][-1]["name"] == "action_listen"
    assert tracker["slots"]["product_type"] == slots_before["product_type"]

    stack.actions.start()
    stack.actions.wait_ready(180)
    P.warm_up_actions(stack.settings)
    back = stack.say(sender, "show me cheaper ones")
    assert answered(back) and cards(back), back
    tracker = stack.tracker(sender)
    assert user_texts(tracker)[-1] == "show me cheaper ones"
    assert tracker["slots"]["product_type"] == slots_before["product_type"]


def test_a_hung_action_server_is_bounded_by_the_action_timeout(stack: FaultStack) -> None:
    sender = f"faults-hung-{uuid.uuid4().hex[:8]}"
    assert answered(stack.say(sender, "I'm looking for a warm winter jacket"))
    stack.actions.pause()  # accepts connections (kernel backlog) but never answers
    try:
        t0 = time.monotonic()
        hung = stack.say(sender, "something from a different brand")
        took = time.monotonic() - t0
    finally:
        stack.actions.resume()
    assert texts(hung) == [FALLBACK]
    assert ACTION_TIMEOUT - 0.5 <= took < 2 * ACTION_TIMEOUT + 5, took
    # The frozen server answers the stale call when it resumes; the next turn is normal.
    later = stack.say(sender, "show me more")
    assert answered(later), later
    assert stack.tracker(sender)["events"][-1]["name"] == "action_listen"


def test_every_service_restarts_mid_conversation_without_losing_anything(
    stack: FaultStack,
) -> None:
    from sqlalchemy import func, select

    from tailor.store import make_session_factory
    from tailor.store.models import Event

    sender = f"faults-restart-{uuid.uuid4().hex[:8]}"
    said = ["recommend wireless headphones under $150", "noise cancelling"]
    for text in said:
        assert answered(stack.chat(sender, text))
    for svc, text in (
        (stack.web, "more like the first one"),
        (stack.rasa, "those are too expensive"),
        (stack.actions, "details on number 2"),
    ):
        stack.restart(svc)
        reply = stack.chat(sender, text)
        assert answered(reply), (svc.name, reply)
        said.append(text)

    # Counted in the three places a message is kept: the tracker store (via Rasa), the
    # history the page reloads (via the web app) and Tailor's event log.
    assert user_texts(stack.tracker(sender)) == said
    history = httpx.get(
        f"http://{stack.settings.host}:{stack.settings.web_port}/api/history",
        params={"sender": sender},
        timeout=30,
    ).json()["messages"]
    assert [m["text"] for m in history if m["from"] == "user"] == said
    factory = make_session_factory(stack.settings.database_url)

    def all_logged() -> None:
        with factory() as session:
            logged = session.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.kind == "message", Event.sender_id == sender)
            )
        assert logged == len(said)

    eventually(all_logged)


def test_a_locked_database_gets_an_answer_and_the_bot_recovers(stack: FaultStack) -> None:
    """The shop database is locked by another writer (SQLite ``BEGIN EXCLUSIVE``)."""
    sender = f"faults-db-{uuid.uuid4().hex[:8]}"
    db_path = stack.settings.database_url.removeprefix("sqlite:///")
    lock = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        t0 = time.monotonic()
        locked = stack.say(sender, "a yoga mat")
        took = time.monotonic() - t0
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert locked, "the shopper got no answer while the database was locked"
    assert took < 2 * ACTION_TIMEOUT + 5, took
    after = stack.say(sender, "thick and non slip")
    assert answered(after), after
    assert stack.tracker(sender)["events"][-1]["name"] == "action_listen"


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) no longer runs.
    status = Path(f"/proc/{pid}/status").read_text()
    return "\nState:\tZ" not in status


def test_sigterm_then_ctrl_c_stops_tailor_run_and_every_service(built_settings: Settings) -> None:
    s = eval_settings(built_settings, f"sigterm-{uuid.uuid4().hex[:6]}")
    env = {
        **os.environ,
        "TAILOR_HOME": str(s.home),
        "TAILOR_DATABASE_URL": s.database_url,
        "TAILOR_BOT_DIR": str(s.bot_dir),
        "TAILOR_MODELS_DIR": str(s.models_dir),
        "TAILOR_INDEX_DIR": str(s.index_dir),
        "TAILOR_DEMO_PRODUCTS": str(s.demo_products),
        "TAILOR_CUSTOMER_TOKEN_SECRET": s.customer_token_secret,
        "TAILOR_RASA_PORT": str(s.rasa_port),
        "TAILOR_ACTION_PORT": str(s.action_port),
        "TAILOR_WEB_PORT": str(s.web_port),
        "PYTHONUNBUFFERED": "1",
    }
    log = Path(s.home) / "tailor-run.log"
    with open(log, "wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "tailor.cli", "run"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 900
            while "Tailor is running" not in log.read_text(errors="replace"):
                assert run.poll() is None, log.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, "tailor run was not ready in 15 min"
                time.sleep(1)
            services = _children(run.pid)
            assert len(services) == 3, services
            if os.environ.get("TAILOR_TURN_HINTS", "on") == "on":  # it says what it set up
                assert "TAILOR_TURN_HINTS=off" in log.read_text(errors="replace")
            everything = [p for pid in services for p in [pid, *_children(pid)]]
            assert httpx.get(f"http://{s.host}:{s.web_port}/api/health", timeout=5).json()["ok"]

            run.send_signal(signal.SIGTERM)
            # An impatient second Ctrl-C while the services stop must not cut the stop short
            # (the services have their own process groups: they would be left running)
            while "Stopping" not in log.read_text(errors="replace") and run.poll() is None:
                time.sleep(0.02)
            if run.poll() is None:
                run.send_signal(signal.SIGINT)
            assert run.wait(timeout=120) == 0, log.read_text(errors="replace")[-3000:]
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    assert "Received SIGTERM." in log.read_text(errors="replace")
    assert [p for p in everything if _exists(p)] == []
    for port in (s.rasa_port, s.action_port, s.web_port):
        assert not P.port_in_use(s.host, port), port


def test_a_short_soak_has_no_errors_and_stores_every_message(built_settings: Settings) -> None:
    from tailor.bench.soak import run_soak

    result = run_soak(
        built_settings,
        model_path(built_settings),
        minutes=0.75,
        shoppers=3,
        sample_every=2.0,
        echo=lambda _line: None,
    )
    assert result.sent >= 20
    assert result.errors == 0, [t.error for t in result.turns if not t.ok]
    assert result.tracker_user_events == result.logged_message_events == result.sent
    trends = result.trends()
    assert set(trends) == {"action server", "Rasa server", "web app"}
    assert all(len(samples) >= 10 for samples in result.memory.values())
    assert all(t.peak_mb > 50 for t in trends.values())


def test_a_corrupt_index_is_rebuilt_and_one_that_cannot_be_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tailor.cli import main
    from tailor.demo import load_demo
    from tailor.store import make_session_factory

    db = tmp_path / "shop.db"
    load_demo(make_session_factory(f"sqlite:///{db}"), 40, 5, 42, progress=False)
    index = tmp_path / "index"
    monkeypatch.setenv("TAILOR_HOME", str(tmp_path))
    monkeypatch.setenv("TAILOR_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("TAILOR_INDEX_DIR", str(index))
    # the e2e deployment's model cache: its ONNX export of the embedding model is reused
    monkeypatch.setenv("TAILOR_MODELS_DIR", str(PROJECT_ROOT / "var" / "test-cache" / "models"))
    assert main(["index"]) == 0
    assert main(["index"]) == 0
    assert "Index: loaded (40 products" in capsys.readouterr().err
    damaged = [f for f in index.rglob("*") if f.is_file() and f.name != "manifest.json"]
    assert damaged
    for f in damaged:
        f.write_bytes(b"not an index")
    assert main(["index"]) == 0
    assert "Index: built 40 (40 products" in capsys.readouterr().err

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("TAILOR_INDEX_DIR", str(blocker / "index"))
    assert main(["index"]) == 2
    err = capsys.readouterr().err
    assert f"The index at {blocker / 'index'} is missing or corrupt" in err
    assert "then run `tailor index --rebuild`" in err
