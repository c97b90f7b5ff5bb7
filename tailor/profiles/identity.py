"""Who is talking: signed customer tokens from the store's site.

The store's backend signs ``{"sub": <customer external id>, "iat": ..., "exp": ...}`` with a
shared secret (HMAC-SHA256) and hands the token to the widget, which sends it with every
message. Only a valid, unexpired token identifies a customer; anything the shopper *types*
("I'm customer 42", an e-mail address) never does.

Token format: ``base64url(payload_json) + "." + base64url(hmac_sha256(secret, payload_b64))``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: The secret must carry at least this many bytes; a short secret is rejected at use.
MIN_SECRET_BYTES = 16
#: Tokens valid for longer than this are refused when signing (they would outlive sessions).
MAX_TTL_SECONDS = 7 * 24 * 3600
#: Allowed clock difference between the store's servers and ours.
LEEWAY_SECONDS = 30


class InvalidToken(ValueError):
    """A customer token that must not be trusted; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid customer token: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    customer_id: str
    issued_at: int
    expires_at: int


@dataclass(frozen=True)
class Identity:
    """The identity behind one message: a verified customer, or an anonymous visitor."""

    kind: Literal["customer", "anonymous"]
    sender_id: str
    customer_id: str | None = None
    error: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    pad = "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text + pad)


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the customer token secret must be at least {MIN_SECRET_BYTES} bytes "
            f"(got {len(key)}); set TAILOR_CUSTOMER_TOKEN_SECRET to a long random value"
        )
    return key


def sign_customer_token(
    customer_id: str,
    secret: str | bytes,
    ttl_seconds: int = 3600,
    now: float | None = None,
) -> str:
    """A token naming ``customer_id`` that expires after ``ttl_seconds`` (what the store signs)."""
    if not customer_id or not isinstance(customer_id, str):
        raise ValueError("customer_id must be a non-empty string")
    if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}, got {ttl_seconds}")
    issued = int(time.time() if now is None else now)
    payload = json.dumps(
        {"sub": customer_id, "iat": issued, "exp": issued + int(ttl_seconds)},
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    body = _b64(payload)
    sig = hmac.new(_key(secret), body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(sig)}"


def verify_customer_token(token: str, secret: str | bytes, now: float | None = None) -> TokenClaims:
    """The claims of a valid token; :class:`InvalidToken` for anything else."""
    key = _key(secret)
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 4096:
        raise InvalidToken("malformed")
    body, sig_text = token.split(".")
    try:
        sig = _unb64(sig_text)
        payload: Any = json.loads(_unb64(body))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidToken("malformed") from exc
    expected = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(sig, expected):
        raise InvalidToken("bad signature")
    if not isinstance(payload, dict):
        raise InvalidToken("malformed")
    sub, iat, exp = payload.get("sub"), payload.get("iat"), payload.get("exp")
    if not isinstance(sub, str) or not sub or not isinstance(iat, int) or not isinstance(exp, int):
        raise InvalidToken("missing claims")
    t = time.time() if now is None else now
    if exp + LEEWAY_SECONDS < t:
        raise InvalidToken("expired")
    if iat - LEEWAY_SECONDS > t:
        raise InvalidToken("issued in the future")
    return TokenClaims(customer_id=sub, issued_at=iat, expires_at=exp)


def identify(
    sender_id: str,
    metadata: Mapping[str, Any] | None,
    secret: str | bytes | None,
    now: float | None = None,
) -> Identity:
    """The identity of a message from its channel metadata (never from its text).

    ``metadata["customer_token"]`` is the only way to be a customer; without a configured
    secret nobody is. An invalid token yields an anonymous identity with ``error`` set.
    """
    token = (metadata or {}).get("customer_token")
    if not token or not secret:
        return Identity(kind="anonymous", sender_id=sender_id)
    try:
        claims = verify_customer_token(str(token), secret, now=now)
    except InvalidToken as exc:
        return Identity(kind="anonymous", sender_id=sender_id, error=exc.reason)
    return Identity(kind="customer", sender_id=sender_id, customer_id=claims.customer_id)
