"""Secrets a run needs: the customer-token secret shared by the action server and the web app.

When ``TAILOR_CUSTOMER_TOKEN_SECRET`` is not set, one is generated on the first run and kept
in ``<home>/secrets/customer-token-secret`` (mode 0600), so tokens signed by the web app stay
valid across restarts and every service of the run verifies them with the same key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from tailor.config import Settings
from tailor.profiles.identity import MIN_SECRET_BYTES

#: Bytes of randomness in a generated secret (its text is about 4/3 as long).
GENERATED_SECRET_BYTES = 48


def secret_path(settings: Settings) -> Path:
    """Where the generated customer-token secret of a deployment is kept."""
    return Path(settings.home) / "secrets" / "customer-token-secret"


def ensure_customer_token_secret(settings: Settings) -> Settings:
    """Settings with a customer-token secret: the configured one, else the persisted one.

    A configured secret is returned unchanged. Otherwise the secret stored under ``home`` is
    read, or generated and stored (owner read/write only) when there is none yet. A stored
    secret shorter than the minimum is an error naming the file, not silently replaced.
    """
    if settings.customer_token_secret:
        return settings
    path = secret_path(settings)
    secret = _read_secret(path)
    if secret is None:
        secret = _create_secret(path)
    return settings.replace(customer_token_secret=secret)


def _read_secret(path: Path) -> str | None:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the customer token secret in {path} is shorter than {MIN_SECRET_BYTES} bytes; "
            "delete the file to have a new one generated (signed-in shoppers must sign in again)"
        )
    return secret


def _create_secret(path: Path) -> str:
    """Write a new secret (mode 0600) atomically; if another process won the race, use theirs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        path.parent.chmod(0o700)
    secret = secrets.token_urlsafe(GENERATED_SECRET_BYTES)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secret + "\n")
        try:
            os.link(tmp, path)  # publishes the complete file, or fails if one exists
        except FileExistsError:
            existing = _read_secret(path)
            if existing is None:  # pragma: no cover - deleted between the two calls
                raise
            return existing
    finally:
        tmp.unlink(missing_ok=True)
    return secret
