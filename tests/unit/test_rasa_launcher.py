"""The Rasa launcher adds the token from the environment to Rasa's own arguments."""

from __future__ import annotations

import sys

import pytest

from tailor.runtime.rasa import RASA_PLUGINS

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
