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

Runs in the Rasa venv (Python 3.10); it imports nothing of Tailor.
"""

from __future__ import annotations

import os
import sys

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

    def _validate_action_result(self: RemoteAction, result: dict) -> bool:
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


def main() -> None:
    """Run Rasa's command line with the token from the environment."""
    from rasa.__main__ import main as rasa_main

    validate_action_responses_once()

    sys.argv = ["rasa", *rasa_argv(sys.argv[1:], os.environ.get(TOKEN_ENV, ""))]
    rasa_main()


if __name__ == "__main__":
    main()
