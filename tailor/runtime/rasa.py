"""The Rasa side, driven over process and HTTP boundaries (Rasa runs in its own 3.10 venv).

A trained model is cached under a name derived from a fingerprint of everything that
shapes it (config, domain, training data incl. generated lookups, Rasa version), so a
second run reuses it and any change retrains.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tailor.config import Settings

RASA_VERSION = "3.6.21"
PYTHON_FOR_RASA = "3.10"


class RasaNotInstalled(RuntimeError):
    """The Rasa venv is missing; the message says how to create it."""


def rasa_executable(settings: Settings) -> Path:
    """Path of the ``rasa`` command in the Rasa venv, or a clear error."""
    exe = Path(settings.rasa_venv) / "bin" / "rasa"
    if not exe.exists():
        raise RasaNotInstalled(
            f"Rasa {RASA_VERSION} is not installed at {settings.rasa_venv}. Run `make install` "
            f"(it needs a Python {PYTHON_FOR_RASA} interpreter: `pyenv install {PYTHON_FOR_RASA}` "
            "if `pyenv versions` lists none)."
        )
    return exe


def rasa_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for Rasa processes: telemetry off, quiet TensorFlow, our settings passed on
    (except the customer-token secret, which Rasa never needs)."""
    env = dict(os.environ)
    env.update(
        {
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONWARNINGS": "ignore",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        }
    )
    env.update(extra or {})
    # Rasa only passes the customer token on; the action server and the web app verify it.
    env.pop("TAILOR_CUSTOMER_TOKEN_SECRET", None)
    return env


def bot_pythonpath(settings: Settings) -> dict[str, str]:
    """``PYTHONPATH`` with the bot folder first, so Rasa imports our channels (``credentials.yml``
    names ``tailor_channels.TailorRestInput``) whatever folder it is started from."""
    parts = [str(Path(settings.bot_dir).resolve())]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return {"PYTHONPATH": os.pathsep.join(parts)}


def training_inputs(bot_dir: Path) -> list[Path]:
    """Every file that shapes the trained model, in a stable order."""
    files = [bot_dir / "config.yml", bot_dir / "domain.yml"]
    data = bot_dir / "data"
    files += sorted(
        p for p in data.rglob("*") if p.is_file() and p.suffix in {".yml", ".yaml", ".txt"}
    )
    return [p for p in files if p.exists()]


def model_fingerprint(bot_dir: Path) -> str:
    """SHA-256 over the Rasa version and the relative paths and bytes of the training inputs."""
    h = hashlib.sha256(f"rasa=={RASA_VERSION}\n".encode())
    for path in training_inputs(bot_dir):
        h.update(str(path.relative_to(bot_dir)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def model_path(settings: Settings, fingerprint: str | None = None) -> Path:
    """Where the model for the current (or given) fingerprint lives."""
    fp = fingerprint or model_fingerprint(Path(settings.bot_dir))
    return Path(str(settings.models_dir)) / f"tailor-{fp[:20]}.tar.gz"


def train(
    settings: Settings,
    force: bool = False,
    echo: Callable[[str], None] | None = None,
) -> tuple[Path, bool]:
    """Train unless a model with the current fingerprint exists; returns (path, trained?)."""
    say = echo or (lambda line: print(line, file=sys.stderr))
    bot_dir = Path(settings.bot_dir)
    target = model_path(settings)
    if target.exists() and not force:
        return target, False
    exe = rasa_executable(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(exe),
        "train",
        "--config",
        "config.yml",
        "--domain",
        "domain.yml",
        "--data",
        "data",
        "--out",
        str(target.parent),
        "--fixed-model-name",
        target.name.removesuffix(".tar.gz"),
    ]
    started = time.monotonic()
    say(f"Training the Rasa model (inputs changed; fingerprint {target.name})…")
    proc = subprocess.Popen(
        cmd,
        cwd=bot_dir,
        env=rasa_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None  # guaranteed by stdout=PIPE
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        tail = [*tail[-40:], line]
        if any(
            key in line
            for key in ("Epochs", "Training", "Processed", "Your Rasa model", "Finished")
        ):
            say(f"  rasa: {line[:160]}")
    code = proc.wait()
    if code != 0 or not target.exists():
        raise RuntimeError(
            f"rasa train failed (exit {code}). Last lines:\n" + "\n".join(tail[-25:])
        )
    say(f"Trained in {time.monotonic() - started:.0f} s → {target}")
    _prune_models(target)
    return target, True


def _prune_models(keep: Path, keep_count: int = 3) -> None:
    """Keep the newest few cached models so the cache does not grow without bound."""
    models = sorted(
        keep.parent.glob("tailor-*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for old in models[keep_count:]:
        if old != keep:
            old.unlink(missing_ok=True)


def write_endpoints(settings: Settings, path: Path) -> Path:
    """The endpoints file for this run: our action server and a SQLite tracker store."""
    tracker_db = Path(settings.home) / "rasa_tracker.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `tailor run`; edit settings, not this file.\n"
        "action_endpoint:\n"
        f'  url: "{settings.action_url}"\n'
        "tracker_store:\n"
        "  type: SQL\n"
        "  dialect: sqlite\n"
        f'  db: "{tracker_db}"\n',
        encoding="utf-8",
    )
    return path


def copy_credentials(settings: Settings, path: Path) -> Path:
    """The channel credentials (REST with metadata, socket.io) used for this run.

    The REST channel is ``tailor_channels.TailorRestInput`` from the bot folder; the Rasa
    service gets that folder on its ``PYTHONPATH`` (:func:`bot_pythonpath`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(settings.bot_dir) / "credentials.yml", path)
    return path
