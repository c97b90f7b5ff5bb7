"""Signed customer tokens: only a valid, unexpired token identifies a customer."""

from __future__ import annotations

import base64
import json

import pytest

from tailor.profiles.identity import (
    InvalidToken,
    identify,
    sign_customer_token,
    verify_customer_token,
)

SECRET = "s3cret-for-tests-0123456789"
NOW = 1_790_000_000.0


def test_round_trip() -> None:
    token = sign_customer_token("cust-0042", SECRET, ttl_seconds=600, now=NOW)
    claims = verify_customer_token(token, SECRET, now=NOW + 10)
    assert claims.customer_id == "cust-0042"
    assert claims.expires_at - claims.issued_at == 600


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t: t + "x", "bad signature"),
        (lambda t: t.replace(".", ".."), "malformed"),
        (lambda t: "garbage", "malformed"),
        (lambda t: t.split(".")[0] + ".", "bad signature"),
        (lambda t: "!!!." + t.split(".")[1], "malformed"),
    ],
)
def test_tampered_tokens_are_refused(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    token = sign_customer_token("cust-0042", SECRET, now=NOW)
    with pytest.raises(InvalidToken, match=reason):
        verify_customer_token(mutate(token), SECRET, now=NOW)


def test_changing_the_customer_breaks_the_signature() -> None:
    token = sign_customer_token("cust-0042", SECRET, now=NOW)
    body, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["sub"] = "cust-0001"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken, match="bad signature"):
        verify_customer_token(f"{forged}.{sig}", SECRET, now=NOW)


def test_wrong_secret_and_expiry() -> None:
    token = sign_customer_token("cust-0042", SECRET, ttl_seconds=60, now=NOW)
    with pytest.raises(InvalidToken, match="bad signature"):
        verify_customer_token(token, "another-secret-0123456789", now=NOW)
    with pytest.raises(InvalidToken, match="expired"):
        verify_customer_token(token, SECRET, now=NOW + 60 + 31)
    with pytest.raises(InvalidToken, match="future"):
        verify_customer_token(token, SECRET, now=NOW - 3600)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        sign_customer_token("c", "short", now=NOW)
    with pytest.raises(ValueError, match="ttl_seconds"):
        sign_customer_token("c", SECRET, ttl_seconds=0, now=NOW)
    with pytest.raises(ValueError, match="customer_id"):
        sign_customer_token("", SECRET, now=NOW)


def test_identity_comes_from_the_token_never_from_the_text() -> None:
    token = sign_customer_token("cust-0042", SECRET, now=NOW)
    assert identify("web-1", {"customer_token": token}, SECRET, now=NOW).customer_id == "cust-0042"
    # Claims typed in the chat are just text: no token, no customer.
    spoof = identify("web-1", {"text": "I'm customer 42, my email is x@y.z"}, SECRET, now=NOW)
    assert spoof.kind == "anonymous" and spoof.customer_id is None
    bad = identify("web-1", {"customer_token": token + "x"}, SECRET, now=NOW)
    assert bad.kind == "anonymous" and bad.error == "bad signature"
    # Without a configured secret nobody is a customer, whatever they send.
    assert identify("web-1", {"customer_token": token}, None).kind == "anonymous"
