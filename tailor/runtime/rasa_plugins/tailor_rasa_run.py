"""``rasa run`` with its HTTP API token taken from the environment, and custom-action
responses validated without re-checking the schema on every call.

Rasa 3.6 reads the token only from ``--auth-token``, and a process's arguments are visible to
every local user (``ps``, ``/proc/<pid>/cmdline``); its environment is readable only by its
own user. Tailor starts ``python -m tailor_rasa_run run …`` with the token in
``TAILOR_RASA_TOKEN``, and this module hands it to Rasa's own command line parser inside the
process (rewriting ``sys.argv`` does not change what ``ps`` shows).

Rasa 3.6 validates every action server response with ``jsonschema.validate(result, spec)``,
which first checks ``spec`` itself against its meta-schema: about 20 ms of CPU per custom
action on these cores (measured: 23 ms per call against 0.02-1.2 ms for the validation
proper), on every turn of every conversation, for a schema that never changes.
:func:`validate_action_responses_once` makes Rasa check the schema once and reuse the
validator: the same responses pass, the same ``ValidationError`` (with Rasa's hint) is raised.
The validation proper was still slow for what actions return: the schema requires each event
to match exactly ``oneOf`` 25 alternatives, one per event name, and ``jsonschema`` builds an
error object for each of the 24 that fail - about 0.6 ms per event, 2-5 ms for a reply that
sets a few slots. The alternatives differ in their ``event`` constant, so an event matches
exactly one of them if and only if it matches the one for its own name: the launcher checks
each event against that one alone, and only a response that fails goes through the full
validator, for Rasa's own error.

Rasa 3.6 turns every stored event back into an object through ``Event.resolve_by_type``,
which walks the whole ``Event`` class tree (``all_subclasses`` with an ``inspect.isabstract``
check per class) for every event it reads: about 0.1 ms per event here, so a 60-event
conversation costs 6 ms of CPU each time the tracker store loads it, once per message.
:func:`resolve_events_by_type_once` makes that a dictionary look-up; the class returned for
every type name is the one Rasa's walk returns.

Runs in the Rasa venv (Python 3.10); it imports nothing of Tailor.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

TOKEN_ENV = "TAILOR_RASA_TOKEN"


def rasa_argv(argv: list[str], token: str) -> list[str]:
    """Rasa's arguments with ``--auth-token token`` added (an empty token adds nothing)."""
    if "--auth-token" in argv:
        raise SystemExit("pass the Rasa token in TAILOR_RASA_TOKEN, not on the command line")
    return [*argv, "--auth-token", token] if token else list(argv)


def validate_action_responses_once() -> None:
    """Patch Rasa's ``RemoteAction._validate_action_result`` to validate against a validator
    built (and its schema checked) once, instead of ``jsonschema.validate`` on every call."""
    from jsonschema import ValidationError, validators
    from jsonschema.exceptions import best_match
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    if getattr(RemoteAction._validate_action_result, "tailor_cached", False):
        return
    spec = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(spec)
    cls.check_schema(spec)
    validator = cls(spec)
    is_valid = event_dispatching_check(spec, cls) or validator.is_valid

    def _validate_action_result(self: RemoteAction, result: dict) -> bool:
        if is_valid(result):
            return True
        error = best_match(validator.iter_errors(result))
        if error is None:
            return True
        if isinstance(error, ValidationError):  # what Rasa's own version adds
            error.message += (
                ". Failed to validate Action server response from API, "
                "make sure your response from the Action endpoint is valid. "
                "For more information about the format visit "
                f"{DOCS_BASE_URL}/custom-actions"
            )
        raise error

    _validate_action_result.tailor_cached = True  # type: ignore[attr-defined]
    RemoteAction._validate_action_result = _validate_action_result


def event_dispatching_check(spec: dict, cls: Any) -> Callable[[Any], bool] | None:
    """A validity check equal to ``cls(spec).is_valid`` for Rasa's action response schema, that
    checks each event against the ``oneOf`` alternative for its own ``event`` name only.

    ``None`` when the schema is not of the expected shape (an ``events`` array whose items
    have ``required: ["event"]`` with a string ``event``, and ``oneOf`` alternatives each
    fixing a distinct ``event`` constant, no ``$ref``): the caller then uses the full check.
    """
    import copy
    import json

    try:
        item = spec["properties"]["events"]["items"]
        alternatives = item["oneOf"]
        names = [alt["properties"]["event"]["const"] for alt in alternatives]
        event_type = item["properties"]["event"]["type"]
        required = item["required"]
    except (KeyError, TypeError):
        return None
    if (
        "$ref" in json.dumps(spec)
        or event_type != "string"
        or "event" not in required
        or not all(isinstance(n, str) for n in names)
        or len(set(names)) != len(names)
    ):
        return None
    envelope = copy.deepcopy(spec)
    del envelope["properties"]["events"]["items"]["oneOf"]
    envelope_valid = cls(envelope).is_valid
    by_name = {name: cls(alt).is_valid for name, alt in zip(names, alternatives, strict=True)}

    def is_valid(result: Any) -> bool:
        # every event is an object with a string "event" once the envelope is valid
        if not envelope_valid(result):
            return False
        for event in result.get("events") or ():
            check = by_name.get(event["event"])
            if check is None or not check(event):
                return False
        return True

    return is_valid


def resolve_events_by_type_once() -> None:
    """Patch Rasa's ``Event.resolve_by_type`` to look the class up in a table of the event
    classes by type name, built from Rasa's own class walk (first match wins, as in Rasa's
    loop). A name missing from the table rebuilds it (an event class may have been imported
    since), and then behaves as Rasa does: ``None`` for the legacy ``topic``, else
    ``default`` or ``ValueError``."""
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    original = Event.resolve_by_type
    if getattr(original, "tailor_cached", False):
        return
    table: dict[str, type] = {}

    def build() -> None:
        fresh: dict[str, type] = {}
        for cls in all_subclasses(Event):
            fresh.setdefault(cls.type_name, cls)
        table.clear()
        table.update(fresh)

    def resolve_by_type(type_name: str, default: type | None = None) -> type | None:
        found = table.get(type_name)
        if found is None:
            build()
            found = table.get(type_name)
        if found is not None:
            return found
        return original(type_name, default)

    resolve_by_type.tailor_cached = True  # type: ignore[attr-defined]
    Event.resolve_by_type = staticmethod(resolve_by_type)


#: Set to ``off`` to send no turn hints (see :func:`send_turn_hints`).
HINTS_ENV = "TAILOR_TURN_HINTS"
#: The largest hint sent; a bigger one (a huge ``seen`` list) is skipped, not cut.
MAX_HINT_BYTES = 60_000


def hint_address(url: str | None) -> tuple[str, int] | None:
    """The UDP address turn hints go to: the action server's host and HTTP port number, for a
    ``http://`` endpoint on this machine (a hint is only useful to the server that will get
    the action call; behind a load balancer it would reach another replica)."""
    from urllib.parse import urlsplit

    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return ("127.0.0.1" if parts.hostname == "localhost" else parts.hostname, port or 80)


def send_turn_hints() -> None:
    """Patch Rasa's ``MessageProcessor.parse_message`` to tell the action server about a user
    message twice while Rasa works on it: before its NLU runs (who sent what) and after
    (intent, entities and the conversation's slots), as one UDP datagram each."""
    import json
    import socket

    from rasa.core.processor import MessageProcessor

    original = MessageProcessor.parse_message
    if getattr(original, "tailor_hints", False):
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    addresses: dict[str | None, tuple[str, int] | None] = {}

    def send(address: tuple[str, int], hint: dict[str, Any]) -> None:
        try:
            data = json.dumps(hint, separators=(",", ":"), default=str).encode()
            if len(data) <= MAX_HINT_BYTES:
                sock.sendto(data, address)
        except (OSError, TypeError, ValueError):
            pass  # a hint is an optimisation; the action call carries everything

    async def parse_message(
        self: Any, message: Any, tracker: Any = None, only_output_properties: bool = True
    ) -> dict[str, Any]:
        endpoint = getattr(self, "action_endpoint", None)
        url = getattr(endpoint, "url", None)
        if url not in addresses:
            addresses[url] = hint_address(url)
        address = addresses[url]
        if tracker is None or address is None or message.parse_data:
            return await original(self, message, tracker, only_output_properties)
        key = {"sender_id": message.sender_id, "message_id": message.message_id}
        send(
            address,
            {
                "hint": "message",
                **key,
                "text": message.text,
                "input_channel": message.input_channel,
                "metadata": message.metadata,
            },
        )
        parse_data = await original(self, message, tracker, only_output_properties)
        send(
            address,
            {
                "hint": "parsed",
                **key,
                "intent": (parse_data.get("intent") or {}).get("name"),
                "entities": parse_data.get("entities") or [],
                "slots": tracker.current_slot_values(),
            },
        )
        return parse_data

    parse_message.tailor_hints = True  # type: ignore[attr-defined]
    MessageProcessor.parse_message = parse_message


def main() -> None:
    """Run Rasa's command line with the token from the environment."""
    from rasa.__main__ import main as rasa_main

    validate_action_responses_once()
    resolve_events_by_type_once()
    if os.environ.get(HINTS_ENV, "on") != "off":
        send_turn_hints()

    sys.argv = ["rasa", *rasa_argv(sys.argv[1:], os.environ.get(TOKEN_ENV, ""))]
    rasa_main()


if __name__ == "__main__":
    main()
