"""``guard_turns`` in ``bot/tailor_channels.py``, run in the Rasa venv (it imports Rasa).

The script below calls Rasa's real ``RemoteAction`` against a port nobody listens on (so the
call fails as with a stopped action server) inside turns handled through ``guard_turns`` with
Rasa's real ``CollectingOutputChannel``, the REST channel's output.
"""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from tailor.config import PROJECT_ROOT, Settings
from tailor.runtime.processes import free_port
from tailor.runtime.rasa import rasa_env

pytestmark = pytest.mark.rasa

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    import tailor_channels as tc
    from rasa.core.actions.action import RemoteAction
    import rasa.core.actions.action as rasa_action
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    dead = EndpointConfig(f"http://127.0.0.1:{sys.argv[1]}/webhook")

    errors = []

    async def bot(message):
        if "fail" in message.text:
            tracker = DialogueStateTracker(message.sender_id, slots=[])
            try:
                await RemoteAction("action_recommend", dead).run(
                    message.output_channel, None, tracker, Domain.empty()
                )
            except Exception as error:  # as Rasa's processor: log and carry on
                errors.append(str(error))
        if "reply" in message.text:
            await message.output_channel.send_response(message.sender_id, {"text": "hello"})
        if "raise" in message.text:
            raise RuntimeError("the tracker store is down")

    handle = tc.guard_turns(bot)

    async def turn(text):
        out = CollectingOutputChannel()
        try:
            await handle(UserMessage(text, out, sender_id=text or "empty"))
        except RuntimeError:
            pass
        return [m.get("text") for m in out.messages]

    async def main():
        names = ["fail", "reply", "fail reply", "ok", "raise", " ", ""]
        answers = await asyncio.gather(*(turn(n) for n in names))
        print(json.dumps({
            "answers": dict(zip(names, answers)),
            "timeout": rasa_action.DEFAULT_REQUEST_TIMEOUT,
            "fallback": tc.FALLBACK_TEXT,
            "blank": tc.BLANK_TEXT,
            "errors": errors,
        }))

    asyncio.run(main())
    """
)


def run_in_rasa(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    settings = Settings.load()
    python = f"{settings.rasa_venv}/bin/python"
    return subprocess.run(
        [python, "-c", SCRIPT, *args],
        cwd=PROJECT_ROOT / "bot",
        env=rasa_env(env),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_failed_turns_get_the_apology_and_only_they() -> None:
    proc = run_in_rasa(str(free_port()), env={"TAILOR_ACTION_TIMEOUT": "7.5"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    sorry = out["fallback"]
    assert sorry.startswith("Sorry, I'm having trouble finding products right now")
    assert out["timeout"] == 7.5
    assert len(out["errors"]) == 2
    assert all("Couldn't connect to the server" in e for e in out["errors"]), out["errors"]
    # run concurrently: each turn sees only its own failures
    assert out["answers"] == {
        "fail": [sorry],
        "reply": ["hello"],
        "fail reply": ["hello"],  # the shopper got an answer: no apology on top
        "ok": [],  # nothing failed: silence is the bot's choice (e.g. a human took over)
        "raise": [sorry],
        " ": [out["blank"]],  # no words: a question back, without running the bot
        "": [out["blank"]],
    }


def test_a_bad_action_timeout_is_named() -> None:
    proc = run_in_rasa(str(free_port()), env={"TAILOR_ACTION_TIMEOUT": "soon"})
    assert proc.returncode != 0
    assert "TAILOR_ACTION_TIMEOUT must be a number of seconds in (0, 3600], got 'soon'" in (
        proc.stderr
    )
