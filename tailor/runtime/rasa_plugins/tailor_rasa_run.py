"""``rasa run`` with its HTTP API token taken from the environment.

Rasa 3.6 reads the token only from ``--auth-token``, and a process's arguments are visible to
every local user (``ps``, ``/proc/<pid>/cmdline``); its environment is readable only by its
own user. Tailor starts ``python -m tailor_rasa_run run …`` with the token in
``TAILOR_RASA_TOKEN``, and this module hands it to Rasa's own command line parser inside the
process (rewriting ``sys.argv`` does not change what ``ps`` shows).

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


def main() -> None:
    """Run Rasa's command line with the token from the environment."""
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *rasa_argv(sys.argv[1:], os.environ.get(TOKEN_ENV, ""))]
    rasa_main()


if __name__ == "__main__":
    main()
