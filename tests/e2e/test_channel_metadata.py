"""Message metadata reaches the custom actions, through the real channels of bot/credentials.yml.

A throwaway bot (one intent, one rule, one custom action that echoes
``tracker.latest_message["metadata"]``; KeywordIntentClassifier + RulePolicy, so it trains
in seconds without TensorFlow) is trained and served by the real ``rasa`` of ``.venv-rasa``
with Tailor's own ``credentials.yml`` and ``tailor_channels.py``, started the way ``tailor
run`` starts it; the action runs on the real ``rasa_sdk`` of ``.venv``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tailor.config import PROJECT_ROOT, Settings
from tailor.runtime import processes as P
from tailor.runtime.processes import free_port
from tailor.runtime.rasa import train

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.slow]

CONFIG = """\
recipe: default.v1
assistant_id: metadata-echo
language: en
pipeline:
  - name: KeywordIntentClassifier
policies:
  - name: RulePolicy
"""
DOMAIN = """\
version: "3.1"
intents:
  - echo
actions:
  - action_echo_metadata
session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
"""
NLU = """\
version: "3.1"
nlu:
  - intent: echo
    examples: |
      - echo
      - echo my metadata
"""
RULES = """\
version: "3.1"
rules:
  - rule: echo the metadata
    steps:
      - intent: echo
      - action: action_echo_metadata
"""
ACTIONS = '''\
"""One action: answer with what the action server received about the latest message."""

from rasa_sdk import Action


class ActionEchoMetadata(Action):
    def name(self):
        return "action_echo_metadata"

    async def run(self, dispatcher, tracker, domain):
        seen = {
            "metadata": tracker.latest_message.get("metadata"),
            "input_channel": tracker.get_latest_input_channel(),
        }
        dispatcher.utter_message(json_message=seen)
        return []
'''
SOCKETIO_CLIENT = '''\
"""Send one message over socket.io the way a web chat widget does; print the bot's reply."""

import asyncio
import json
import sys

import socketio


async def main(url, session_id, custom_data):
    sio = socketio.AsyncClient()
    confirmed = asyncio.Event()
    replies = asyncio.Queue()
    sio.on("session_confirm", lambda _data: confirmed.set())

    async def on_bot(data):
        await replies.put(data)

    sio.on("bot_uttered", on_bot)
    # Long-polling: this engineio client's websocket upgrade needs a newer aiohttp than Rasa pins.
    await sio.connect(url, socketio_path="socket.io", transports=["polling"])
    await sio.emit("session_request", {"session_id": session_id})
    await asyncio.wait_for(confirmed.wait(), 30)
    await sio.emit(
        "user_uttered",
        {"message": "echo", "session_id": session_id, "customData": custom_data},
    )
    reply = await asyncio.wait_for(replies.get(), 90)
    print(json.dumps(reply))
    await sio.disconnect()


asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
'''

METADATA = {
    "customer_token": "eyJzdWIiOiJjdXN0LTAwMDEifQ.c2lnbmF0dXJl",
    "device": "mobile",
    "local_hour": 21,
    "tz": "Europe/Berlin",
}


@dataclass
class EchoBot:
    """The served throwaway bot."""

    settings: Settings
    home: Path

    def rest(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """One message through the REST webhook; the bot's messages."""
        resp = httpx.post(f"{self.settings.rasa_url}/webhooks/rest/webhook", json=body, timeout=90)
        resp.raise_for_status()
        return list(resp.json())


def _write_bot(home: Path) -> Path:
    bot = home / "bot"
    (bot / "data").mkdir(parents=True)
    (bot / "config.yml").write_text(CONFIG)
    (bot / "domain.yml").write_text(DOMAIN)
    (bot / "data" / "nlu.yml").write_text(NLU)
    (bot / "data" / "rules.yml").write_text(RULES)
    # Tailor's real channel configuration and channel module.
    for name in ("credentials.yml", "tailor_channels.py"):
        shutil.copyfile(PROJECT_ROOT / "bot" / name, bot / name)
    return bot


@pytest.fixture(scope="module")
def echo_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EchoBot]:
    home = tmp_path_factory.mktemp("metadata-echo")
    settings = Settings.load(
        env={},
        home=home,
        bot_dir=_write_bot(home),
        rasa_port=free_port(),
        action_port=free_port(),
    )
    model, _ = train(settings, echo=lambda _line: None)
    actions_dir = home / "actions"
    actions_dir.mkdir()
    (actions_dir / "echo_actions.py").write_text(ACTIONS)
    env = P.tailor_env(settings)
    env["PYTHONPATH"] = str(actions_dir)
    env["SANIC_HOST"] = settings.host
    actions = P.Service(
        name="echo action server",
        cmd=[
            sys.executable,
            "-m",
            "rasa_sdk",
            "--actions",
            "echo_actions",
            "--port",
            str(settings.action_port),
        ],
        log_path=home / "logs" / "actions.log",
        ready=lambda: httpx.get(f"http://{settings.host}:{settings.action_port}/health").is_success,
        env=env,
        cwd=actions_dir,
    )
    rasa = P.rasa_server(settings, model)
    services = [actions, rasa]
    try:
        for svc in services:
            svc.start()
        actions.wait_ready(120)
        rasa.wait_ready(300)
        yield EchoBot(settings=settings, home=home)
    finally:
        for svc in reversed(services):
            svc.stop()


def _echo(messages: list[dict[str, Any]]) -> dict[str, Any]:
    customs = [m["custom"] for m in messages if "custom" in m]
    assert len(customs) == 1, messages
    return dict(customs[0])


def test_rest_metadata_reaches_the_action(echo_bot: EchoBot) -> None:
    sender = f"meta-{uuid.uuid4().hex[:8]}"
    seen = _echo(echo_bot.rest({"sender": sender, "message": "echo", "metadata": METADATA}))
    assert seen == {"metadata": METADATA, "input_channel": "rest"}
    # Every message carries its own metadata (the page sends it each time).
    again = {**METADATA, "local_hour": 22}
    seen = _echo(echo_bot.rest({"sender": sender, "message": "echo", "metadata": again}))
    assert seen["metadata"] == again


def test_rest_channel_pins_its_name_and_drops_unusable_metadata(echo_bot: EchoBot) -> None:
    sender = f"meta-{uuid.uuid4().hex[:8]}"
    # A caller cannot record its message under another channel's name.
    body = {"sender": sender, "message": "echo", "metadata": {"a": 1}, "input_channel": "telegram"}
    assert _echo(echo_bot.rest(body)) == {"metadata": {"a": 1}, "input_channel": "rest"}
    for unusable in (["customer_token", "x"], "customer_token=x", {"blob": "x" * 20_000}):
        body = {"sender": sender, "message": "echo", "metadata": unusable}
        assert _echo(echo_bot.rest(body))["metadata"] == {}, unusable
    assert _echo(echo_bot.rest({"sender": sender, "message": "echo"}))["metadata"] == {}


def test_socketio_custom_data_reaches_the_action(echo_bot: EchoBot) -> None:
    script = echo_bot.home / "socketio_client.py"
    script.write_text(SOCKETIO_CLIENT)
    python = Path(echo_bot.settings.rasa_venv) / "bin" / "python"
    session_id = f"sio-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [str(python), str(script), echo_bot.settings.rasa_url, session_id, json.dumps(METADATA)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    # Custom JSON arrives as {"custom": ...}, as from the REST channel.
    assert reply == {"custom": {"metadata": METADATA, "input_channel": "socketio"}}
