"""Run a check script in the Rasa venv (Python 3.10) with Tailor's Rasa plugins importable."""

from __future__ import annotations

import json
import subprocess
from typing import Any


def run_in_rasa_venv(script: str, *args: str) -> Any:
    """Run ``script`` with the Rasa venv's Python and return the JSON of its last output line
    (the script's failure fails the calling test with its stderr)."""
    from tailor.config import Settings
    from tailor.runtime.rasa import RASA_PLUGINS, rasa_env

    python = Settings.load().rasa_venv / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", script, *args],
        capture_output=True,
        text=True,
        env=rasa_env({"PYTHONPATH": str(RASA_PLUGINS)}),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
