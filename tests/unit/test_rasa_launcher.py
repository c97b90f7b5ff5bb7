"""The Rasa launcher adds the token from the environment to Rasa's own arguments."""

from __future__ import annotations

import sys

import pytest

from tailor.runtime.rasa import RASA_PLUGINS
from tests.rasa_venv import run_in_rasa_venv

sys.path.insert(0, str(RASA_PLUGINS))
from tailor_rasa_run import rasa_argv


def test_token_is_appended_for_rasa_only() -> None:
    assert rasa_argv(["run", "--enable-api"], "abc123") == [
        "run",
        "--enable-api",
        "--auth-token",
        "abc123",
    ]
    assert rasa_argv(["run"], "") == ["run"]


def test_a_token_on_the_command_line_is_refused() -> None:
    with pytest.raises(SystemExit, match="TAILOR_RASA_TOKEN"):
        rasa_argv(["run", "--auth-token", "x"], "y")


#: Run in the Rasa venv: every response gets the same verdict (and the same error message)
#: from Rasa's own validation and from the validator the launcher builds once.
_SAME_VERDICTS = r"""
import json, sys
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

responses = json.loads(sys.argv[1])
action = RemoteAction("action_x", None)

def verdicts():
    out = []
    for r in responses:
        try:
            out.append(["ok", action._validate_action_result(r)])
        except ValidationError as e:
            out.append(["error", e.message])
    return out

before = verdicts()
from jsonschema import validators
from tailor_rasa_run import event_dispatching_check, validate_action_responses_once
spec = RemoteAction.action_response_format_spec()
cls = validators.validator_for(spec)
check = event_dispatching_check(spec, cls)
assert check is not None  # Rasa's schema has the shape the fast check needs
full = [cls(spec).is_valid(r) for r in responses]
fast = [check(r) for r in responses]
validate_action_responses_once()
validate_action_responses_once()  # idempotent
assert RemoteAction._validate_action_result.tailor_cached
print(json.dumps({"before": before, "after": verdicts(), "full": full, "fast": fast}))
"""


@pytest.mark.rasa
def test_cached_validation_gives_rasas_verdicts() -> None:
    import json

    card = {"type": "product_cards", "products": [{"id": 1, "title": "x", "price": 9.5}]}
    slot = {"event": "slot", "name": "shown", "value": [{"id": 1}]}
    user = {
        "event": "user",
        "text": "hi",
        "parse_data": {
            "intent": {"name": "greet", "confidence": 0.9},
            "entities": [{"entity": "colour", "value": "red", "start": 0, "end": 3}],
        },
    }
    responses = [
        {"events": [], "responses": [{"text": "ok"}]},
        {
            "events": [slot, {"event": "slot", "name": "seen", "value": None}],
            "responses": [{"text": "Here:", "buttons": [{"title": "a", "payload": "b"}]}],
        },
        {"events": [], "responses": [{"custom": card}]},
        {},
        {"events": [{"event": "no_such_event"}]},
        {"events": [{"event": "slot"}]},
        {"events": [{"event": "slot", "name": 5, "value": 1}]},
        {"events": [slot, {"event": "slot", "value": 1}]},
        {"events": [{"event": 5}]},
        {"events": [{"event": ["slot"]}]},
        {"events": [{"name": "x"}]},
        {"events": ["slot"]},
        {"events": [slot, {"event": "slot", "name": "x", "value": 1, "timestamp": "now"}]},
        {"events": "not a list"},
        {"events": None},
        {"responses": [{"text": 5}]},
        {"responses": ["text"]},
        [],
        {"events": [user, {"event": "action", "name": "action_listen"}]},
        {"events": [{**user, "parse_data": {"entities": [{"entity": "colour"}]}}]},
        {"events": [{"event": "action", "name": 3}]},
        {"events": [{"event": "active_loop", "name": None}, {"event": "restart"}]},
        {"events": [{"event": "entities", "entities": [{"entity": "brand", "value": "x"}]}]},
        {"events": [{"event": "entities"}]},
        {"events": [{"event": "bot", "text": "hey", "data": {"custom": card}}]},
        {"events": [{"event": "reset_slots"}, {"event": "followup", "name": "utter_x"}]},
    ]
    result = run_in_rasa_venv(_SAME_VERDICTS, json.dumps(responses))
    assert result["after"] == result["before"]
    # the per-event-name check agrees with the full schema on every response
    assert result["fast"] == result["full"]
    kinds = [v[0] for v in result["before"]]
    assert kinds.count("ok") >= 5 and kinds.count("error") >= 10  # both verdicts exercised


#: Run in the Rasa venv: every event type name resolves to the same class (or the same
#: ``None`` / default / error) before and after the launcher's table, and a stored
#: conversation loads into the same tracker.
_SAME_EVENT_CLASSES = r"""
import json
from rasa.shared.core.events import Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import all_subclasses

names = sorted({c.type_name for c in all_subclasses(Event)}) + ["topic", "no_such_event"]

def resolve():
    out = {}
    for name in names:
        try:
            out[name] = repr(Event.resolve_by_type(name))
        except ValueError as e:
            out[name] = "error: " + str(e)
    out["default"] = repr(Event.resolve_by_type("no_such_event", UserUttered))
    return out

events = [
    {"event": "action", "name": "action_listen", "timestamp": 1.0},
    {"event": "user", "text": "hi", "parse_data": {"intent": {"name": "greet"}}, "timestamp": 2.0},
    {"event": "slot", "name": "shown", "value": [{"id": 1}], "timestamp": 3.0},
    {"event": "bot", "text": "Hello", "data": {"custom": {"a": 1}}, "timestamp": 4.0},
]
tracker_before = DialogueStateTracker.from_dict("x", events).current_state()
before = resolve()
from tailor_rasa_run import resolve_events_by_type_once
resolve_events_by_type_once()
resolve_events_by_type_once()  # idempotent
assert Event.resolve_by_type.tailor_cached
after = resolve()
tracker_after = DialogueStateTracker.from_dict("x", events).current_state()
same = tracker_before == tracker_after
print(json.dumps({"before": before, "after": after, "same_tracker": same}))
"""


@pytest.mark.rasa
def test_event_class_table_resolves_as_rasa_does() -> None:
    result = run_in_rasa_venv(_SAME_EVENT_CLASSES)
    assert result["after"] == result["before"]
    assert result["same_tracker"]
    assert len(result["before"]) > 20  # every event class of Rasa was compared
    assert result["before"]["topic"] == "None"
    assert result["before"]["no_such_event"].startswith("error: Unknown event name")
    assert "UserUttered" in result["before"]["default"]
