"""The Rasa side, driven over process and HTTP boundaries (Rasa runs in its own 3.10 venv).

A trained model is cached under a name derived from a fingerprint of everything that
shapes it (config, domain, training data incl. generated lookups, Rasa version), so a
second run reuses it and any change retrains.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tailor.config import Settings

RASA_VERSION = "3.6.21"
PYTHON_FOR_RASA = "3.10"
#: Rendering of product cards per messaging platform, loaded by path in the Rasa server.
CHANNEL_RENDERING = Path(__file__).resolve().parent.parent / "recommend" / "channels.py"
CHANNEL_RENDERING_ENV = "TAILOR_CHANNEL_RENDERING"


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


#: Our modules for the Rasa servers (tracker and lock stores); they import only Rasa.
RASA_PLUGINS = Path(__file__).resolve().parent / "rasa_plugins"


def bot_pythonpath(settings: Settings) -> dict[str, str]:
    """``PYTHONPATH`` with the bot folder first, so Rasa imports our channels (``credentials.yml``
    names ``tailor_channels.TailorRestInput``) whatever folder it is started from; and the path
    of the product-card rendering for messaging platforms, which those channels load by path
    (the Rasa venv does not have the ``tailor`` package)."""
    parts = [str(Path(settings.bot_dir).resolve()), str(RASA_PLUGINS)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return {"PYTHONPATH": os.pathsep.join(parts), CHANNEL_RENDERING_ENV: str(CHANNEL_RENDERING)}


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
    """The endpoints file for this run: our action server and a SQLite tracker store that
    keeps sessions short (:mod:`tailor_tracker_store`)."""
    tracker_db = Path(settings.home) / "rasa_tracker.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `tailor run`; edit settings, not this file.\n"
        "action_endpoint:\n"
        f'  url: "{settings.action_url}"\n'
        "tracker_store:\n"
        "  # SQLTrackerStore that starts a new session (slots carried over) past this many\n"
        "  # events, so a long conversation stays fast (tailor/runtime/rasa_plugins)\n"
        "  type: tailor_tracker_store.CompactingSQLTrackerStore\n"
        "  dialect: sqlite\n"
        f'  db: "{tracker_db}"\n'
        f"  max_session_events: {settings.tracker_max_session_events}\n",
        encoding="utf-8",
    )
    return path


@dataclass(frozen=True)
class Platform:
    """A messaging platform whose Rasa channel is enabled when its variables are set."""

    name: str
    #: The channel class in ``bot/tailor_channels.py`` (named as ``credentials.yml`` wants it).
    channel: str
    #: ``TAILOR_*`` variable -> credentials key; all must be set to enable the platform.
    required: dict[str, str]
    #: Optional ``TAILOR_*`` variable -> credentials key.
    optional: dict[str, str] = field(default_factory=dict)
    #: At least one of these variables must be set too (e.g. an SMS or a WhatsApp number).
    one_of: tuple[str, ...] = ()

    def configured(self, env: Mapping[str, str]) -> bool:
        """True when any of the platform's variables is set (so it is meant to be enabled)."""
        names = [*self.required, *self.one_of]
        return any(env.get(name, "").strip() for name in names)

    def missing(self, env: Mapping[str, str]) -> list[str]:
        """The variables still needed to enable the platform."""
        needed = [name for name in self.required if not env.get(name, "").strip()]
        if self.one_of and not any(env.get(name, "").strip() for name in self.one_of):
            needed.append(" or ".join(self.one_of))
        return needed

    def credentials(self, env: Mapping[str, str]) -> dict[str, str]:
        """The channel's section of ``credentials.yml``."""
        keys = {**self.required, **self.optional}
        return {key: env[name].strip() for name, key in keys.items() if env.get(name, "").strip()}


#: The messaging platforms, in the order their sections are written.
PLATFORMS: tuple[Platform, ...] = (
    Platform(
        name="telegram",
        channel="tailor_channels.TailorTelegramInput",
        required={
            "TAILOR_TELEGRAM_TOKEN": "access_token",
            "TAILOR_TELEGRAM_WEBHOOK_URL": "webhook_url",
        },
        optional={
            "TAILOR_TELEGRAM_SECRET_TOKEN": "secret_token",
            "TAILOR_TELEGRAM_API_URL": "api_url",
        },
    ),
    Platform(
        name="slack",
        channel="tailor_channels.TailorSlackInput",
        required={
            "TAILOR_SLACK_TOKEN": "slack_token",
            "TAILOR_SLACK_SIGNING_SECRET": "slack_signing_secret",
        },
        optional={
            "TAILOR_SLACK_CHANNEL": "slack_channel",
            "TAILOR_SLACK_API_URL": "api_url",
        },
    ),
    Platform(
        name="facebook",
        channel="tailor_channels.TailorFacebookInput",
        required={
            "TAILOR_FACEBOOK_VERIFY_TOKEN": "verify",
            "TAILOR_FACEBOOK_APP_SECRET": "secret",
            "TAILOR_FACEBOOK_PAGE_ACCESS_TOKEN": "page-access-token",
        },
        optional={"TAILOR_FACEBOOK_API_URL": "api_url"},
    ),
    Platform(
        name="twilio",
        channel="tailor_channels.TailorTwilioInput",
        required={
            "TAILOR_TWILIO_ACCOUNT_SID": "account_sid",
            "TAILOR_TWILIO_AUTH_TOKEN": "auth_token",
        },
        optional={
            "TAILOR_TWILIO_NUMBER": "twilio_number",
            "TAILOR_TWILIO_WHATSAPP_NUMBER": "whatsapp_number",
            "TAILOR_TWILIO_WEBHOOK_URL": "webhook_url",
            "TAILOR_TWILIO_API_URL": "api_url",
        },
        one_of=("TAILOR_TWILIO_NUMBER", "TAILOR_TWILIO_WHATSAPP_NUMBER"),
    ),
)


class PlatformMisconfigured(ValueError):
    """Some but not all of a platform's variables are set; the message names the missing."""


def platform_credentials(env: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """``credentials.yml`` sections of the platforms configured in ``env`` (default: the
    process environment). A platform none of whose variables is set stays off; one with only
    some of them set is an error naming the missing ones."""
    env = os.environ if env is None else env
    sections: dict[str, dict[str, str]] = {}
    for platform in PLATFORMS:
        if not platform.configured(env):
            continue
        missing = platform.missing(env)
        if missing:
            raise PlatformMisconfigured(
                f"{platform.name} is partly configured: set {', '.join(missing)} as well "
                f"(or unset its TAILOR_{platform.name.upper()}_* variables to leave it off)."
            )
        sections[platform.channel] = platform.credentials(env)
    return sections


def copy_credentials(settings: Settings, path: Path, env: Mapping[str, str] | None = None) -> Path:
    """The channel credentials used for this run: ``bot/credentials.yml`` (REST with
    metadata, socket.io) plus a section per messaging platform configured in ``env``
    (:func:`platform_credentials`). The file holds secrets, so only its owner may read it.

    The channels are classes of ``bot/tailor_channels.py``; the Rasa service gets that folder
    on its ``PYTHONPATH`` (:func:`bot_pythonpath`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (Path(settings.bot_dir) / "credentials.yml").read_text(encoding="utf-8")
    sections = platform_credentials(env)
    if sections:
        # JSON is YAML: one flow mapping per channel, every value a quoted string.
        lines = [
            "",
            "# Messaging platforms enabled by TAILOR_* variables (tailor/runtime/rasa.py).",
            *(f"{channel}: {json.dumps(values)}" for channel, values in sections.items()),
        ]
        text = text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")
    return path
