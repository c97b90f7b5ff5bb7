"""Turn hints: the datagram format, the registry of work started from them, the transport
over a real UDP socket, and the Rasa launcher's side (in the Rasa venv, Rasa's own classes)."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import pytest

from tailor.runtime import hints
from tailor.runtime.hints import Pending, parse
from tailor.runtime.rasa import RASA_PLUGINS
from tests.rasa_venv import run_in_rasa_venv

sys.path.insert(0, str(RASA_PLUGINS))
from tailor_rasa_run import hint_address


def test_parse_accepts_only_keyed_hints() -> None:
    good = {"hint": "message", "sender_id": "a", "message_id": "m1", "text": "hi"}
    assert parse(json.dumps(good).encode()) == good
    for bad in (
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({"sender_id": "a", "message_id": "m"}).encode(),
        json.dumps({"hint": "message", "sender_id": 3, "message_id": "m"}).encode(),
        json.dumps({"hint": "message", "sender_id": "a"}).encode(),
    ):
        assert parse(bad) is None


def test_pending_keeps_the_newest_within_size_and_age() -> None:
    now = [0.0]
    dropped: list[str] = []
    pending: Pending[str] = Pending(size=3, ttl=10.0, on_drop=dropped.append, clock=lambda: now[0])
    reference: dict[tuple[str, str], tuple[float, str]] = {}
    for i in range(8):  # against a brute-force model: newest 3, none older than 10 s
        now[0] = i * 4.0
        key = ("s", str(i))
        pending.put(key, f"v{i}")
        reference[key] = (now[0], f"v{i}")
        alive = sorted(reference.items(), key=lambda kv: kv[1][0])[-3:]
        alive = [(k, v) for k, v in alive if now[0] - v[0] <= 10.0]
        assert len(pending) == len(alive)
        for k, (_, v) in alive:
            assert pending.get(k) == v
    assert dropped == [f"v{i}" for i in range(5)]
    assert pending.take(("s", "7")) == "v7"
    assert pending.take(("s", "7")) is None  # taken once; taking does not count as a drop
    pending.discard(("s", "6"))
    assert dropped[-1] == "v6"
    pending.put(("s", "5"), "again")  # replacing drops the old one
    assert dropped[-1] == "v5"


def test_a_failing_drop_or_handler_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def boom(_: object) -> None:
        raise RuntimeError("boom")

    pending: Pending[int] = Pending(size=1, on_drop=boom)
    pending.put(("a", "1"), 1)
    pending.put(("a", "2"), 2)  # drops 1: the failure is logged
    assert pending.get(("a", "2")) == 2
    seen: list[dict[str, object]] = []
    hints.on_hint(boom)
    hints.on_hint(seen.append)
    try:
        hints.dispatch({"hint": "x", "sender_id": "a", "message_id": "m"})
    finally:
        hints._handlers.remove(boom)
        hints._handlers.remove(seen.append)
    assert seen == [{"hint": "x", "sender_id": "a", "message_id": "m"}]
    assert "boom" in caplog.text


def test_hints_arrive_over_udp_and_garbage_is_ignored() -> None:
    async def main() -> list[dict[str, object]]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        got: list[dict[str, object]] = []
        hints.on_hint(got.append)
        transport = await hints.listen(port)
        try:
            before = hints.STATS["received"]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
                out.sendto(b"garbage", ("127.0.0.1", port))
                for i in range(3):
                    hint = {"hint": "message", "sender_id": "s", "message_id": str(i)}
                    out.sendto(json.dumps(hint).encode(), ("127.0.0.1", port))
            for _ in range(200):
                if len(got) == 3:
                    break
                await asyncio.sleep(0.01)
            assert hints.STATS["received"] - before == 3
            return got
        finally:
            transport.close()
            hints._handlers.remove(got.append)

    got = asyncio.run(main())
    assert [h["message_id"] for h in got] == ["0", "1", "2"]


def test_hints_go_only_to_a_local_plain_http_action_server() -> None:
    assert hint_address("http://localhost:5055/webhook") == ("127.0.0.1", 5055)
    assert hint_address("http://127.0.0.1:6000/webhook") == ("127.0.0.1", 6000)
    assert hint_address("http://127.0.0.1/webhook") == ("127.0.0.1", 80)
    assert hint_address("https://127.0.0.1:5055/webhook") is None
    assert hint_address("http://actions.internal:5055/webhook") is None  # a load balancer
    assert hint_address("http://localhost:99999/webhook") is None
    assert hint_address(None) is None


#: Run in the Rasa venv: Rasa's parse_message, patched, sends two hints around the original
#: (here a stand-in for the NLU graph, so no model is needed) with Rasa's own message, tracker
#: and endpoint objects; nothing for the HTTP API's parse (no tracker) or a remote endpoint.
_SENDS_HINTS = r"""
import asyncio, json, socket
from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

parse_data = {"text": "cheaper", "intent": {"name": "refine", "confidence": 0.9},
              "entities": [{"entity": "refinement", "value": "cheaper", "start": 0, "end": 7}]}
async def fake_parse(self, message, tracker=None, only_output_properties=True):
    return dict(parse_data)
MessageProcessor.parse_message = fake_parse

from tailor_rasa_run import send_turn_hints
send_turn_hints()
send_turn_hints()  # idempotent

listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
listener.bind(("127.0.0.1", 0))
listener.settimeout(5)
port = listener.getsockname()[1]
domain = Domain.from_yaml('''
version: "3.1"
slots:
  price_max:
    type: float
    mappings: [{type: custom}]
''')
tracker = DialogueStateTracker.from_events("shopper-1", [SlotSet("price_max", 80.0)], domain.slots)

class Processor:  # the attributes the patch reads from a MessageProcessor
    action_endpoint = EndpointConfig(url=f"http://localhost:{port}/webhook")

async def main():
    msg = UserMessage(
        "cheaper", sender_id="shopper-1", input_channel="rest", metadata={"device": "mobile"}
    )
    out = await MessageProcessor.parse_message(Processor(), msg, tracker)
    assert out == parse_data
    first = json.loads(listener.recv(65536))
    second = json.loads(listener.recv(65536))
    assert first["message_id"] == second["message_id"] == msg.message_id
    await MessageProcessor.parse_message(Processor(), msg, None)  # the HTTP API's parse
    remote = Processor()
    remote.action_endpoint = EndpointConfig(url="http://actions.example:5055/webhook")
    await MessageProcessor.parse_message(remote, msg, tracker)
    listener.settimeout(0.3)
    try:
        extra = listener.recv(65536)
    except socket.timeout:
        extra = None
    return first, second, extra

first, second, extra = asyncio.run(main())
print(json.dumps({"first": first, "second": second, "extra": extra is not None}))
"""


@pytest.mark.rasa
def test_the_rasa_launcher_sends_a_hint_before_and_after_the_nlu() -> None:
    out = run_in_rasa_venv(_SENDS_HINTS)
    first, second = out["first"], out["second"]
    assert first["hint"] == "message"
    assert first["sender_id"] == "shopper-1"
    assert first["text"] == "cheaper"
    assert first["input_channel"] == "rest"
    assert first["metadata"] == {"device": "mobile"}
    assert second["hint"] == "parsed"
    assert second["intent"] == "refine"
    assert second["entities"][0]["value"] == "cheaper"
    assert second["slots"]["price_max"] == 80.0
    assert out["extra"] is False  # neither the HTTP API's parse nor a remote endpoint


def test_the_setting_is_checked_and_the_production_profile_never_hints(tmp_path: Path) -> None:
    from tailor.config import Settings
    from tailor.runtime import processes as P

    with pytest.raises(ValueError, match="TAILOR_TURN_HINTS"):
        Settings.load(home=tmp_path, turn_hints="maybe")
    embedded = Settings.load(home=tmp_path)
    assert P.turn_hints(embedded) == "on"
    assert P.turn_hints(embedded.replace(turn_hints="off")) == "off"
    assert P.turn_hints(embedded.replace(profile="production")) == "off"
    assert P.tailor_env(embedded)["TAILOR_TURN_HINTS"] == "on"


def test_a_claimed_key_refuses_late_work() -> None:
    dropped: list[str] = []
    pending: Pending[str] = Pending(size=2, on_drop=dropped.append)
    assert pending.put(("s", "1"), "early")
    pending.claim(("s", "1"))  # the action started: what is kept stays takeable
    assert pending.get(("s", "1")) == "early"
    assert not pending.put(("s", "1"), "late")  # a hint after that starts nothing
    assert dropped == ["late"]
    assert pending.take(("s", "1")) == "early"
    for i in range(2, 12):  # claims are remembered for size x 4 keys, then forgotten
        pending.claim(("s", str(i)))
    assert pending.claimed(("s", "11"))
    assert not pending.claimed(("s", "1"))
