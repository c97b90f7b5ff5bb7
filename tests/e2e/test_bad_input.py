"""Bad input against the real stack: Rasa's REST webhook (the channel the widget, the web
app and integrations use) and the chat page in headless Chromium.

Every hostile request gets a clear reply or a 4xx, never a 5xx or a traceback, and Rasa
keeps answering normally afterwards. Markup a shopper types is shown as text and never runs.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import SHOTS, Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.slow]


def _sender() -> str:
    return f"bad-input-{uuid.uuid4().hex[:12]}"


def _webhook(deployment: Deployment) -> str:
    return f"{deployment.settings.rasa_url}/webhooks/rest/webhook"


def _post(deployment: Deployment, **kwargs: Any) -> httpx.Response:
    return httpx.post(_webhook(deployment), timeout=120, **kwargs)


def _assert_answered(resp: httpx.Response) -> list[dict[str, Any]]:
    """A 200 with a list of bot messages, or a 4xx; never a 5xx or a traceback."""
    assert resp.status_code < 500, (resp.status_code, resp.text[:500])
    assert "Traceback" not in resp.text
    if resp.status_code != 200:
        assert 400 <= resp.status_code < 500
        return []
    messages = resp.json()
    assert isinstance(messages, list)
    return list(messages)


def _assert_still_recommends(deployment: Deployment) -> None:
    replies = deployment.say(_sender(), "I need running shoes under $80")
    products = [
        p
        for r in replies
        for p in (
            (r.get("custom") or {}).get("products") or (r.get("custom") or {}).get("cards") or []
        )
    ]
    assert products, replies


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \t\n ",
        "\x00\x01\x07\x1b[31m hello \x7f\u202e",
        "<img src=x onerror=alert(1)><script>alert(1)</script>",
        "' OR 1=1; DROP TABLE products; --",
        "{{7*7}} ${7*7} {% raw %}",
        "👩‍👩‍👧🏃‍♀️ ランニングシューズ مرحبا שלום",
    ],
    ids=["empty", "whitespace", "control", "html", "sql", "tpl", "scripts"],
)
def test_any_text_gets_a_clear_reply(deployment: Deployment, text: str) -> None:
    messages = _assert_answered(_post(deployment, json={"sender": _sender(), "message": text}))
    for message in messages:
        # The bot never reflects markup back as something other than the shopper's text.
        assert "<script>" not in json.dumps(message.get("custom") or {})


def _assert_refused(resp: httpx.Response, reason: str) -> None:
    assert resp.status_code == 400, (resp.status_code, resp.text[:500])
    assert reason in resp.text and "Traceback" not in resp.text


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "JSON object"),
        (b"{", "parsing"),
        (b"not json", "parsing"),
        (b"[1, 2]", "JSON object"),
        (b"null", "JSON object"),
        (b'{"sender": "x", "message": "caf\xc3\x28"}', "parsing"),
    ],
    ids=["empty", "truncated", "text", "list", "null", "bad-utf8"],
)
def test_malformed_bodies_are_a_400_with_a_reason(
    deployment: Deployment, raw: bytes, reason: str
) -> None:
    resp = _post(deployment, content=raw, headers={"Content-Type": "application/json"})
    _assert_refused(resp, reason)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"sender": 123, "message": "hi"}, "'sender' must be"),
        ({"sender": None, "message": "hi"}, "'sender' must be"),
        ({"sender": ["a"], "message": "hi"}, "'sender' must be"),
        ({"message": "hi"}, "'sender' must be"),
        ({"sender": "  ", "message": "hi"}, "'sender' must be"),
        ({"sender": "s" * 10_000, "message": "hi"}, "'sender' must be"),
        ({"sender": "s", "message": 42}, "'message' must be a string"),
        ({"sender": "s", "message": ["hi"]}, "'message' must be a string"),
        ({"sender": "s", "message": {"text": "hi"}}, "'message' must be a string"),
        ({"sender": "s", "message": None}, "'message' must be a string"),
        ({"sender": "s", "message": "x" * 100_000}, "longer than 2000 characters"),
        ({"sender": "s", "message": "running shoes " * 7_000}, "longer than 2000 characters"),
    ],
)
def test_wrong_types_are_a_400_with_a_reason(
    deployment: Deployment, payload: dict[str, Any], reason: str
) -> None:
    if payload.get("sender") == "s":
        payload = {**payload, "sender": _sender()}
    _assert_refused(_post(deployment, json=payload), reason)


@pytest.mark.parametrize(
    "metadata", ["nope", ["a", 1], {"k": "v" * 200_000}, {"<script>": {"deep": [1, None]}}]
)
def test_unusable_metadata_is_ignored(deployment: Deployment, metadata: Any) -> None:
    payload = {"sender": _sender(), "message": "hello", "metadata": metadata}
    assert _assert_answered(_post(deployment, json=payload))


def test_rasa_keeps_working_after_bad_input(deployment: Deployment) -> None:
    for payload in ({"sender": _sender(), "message": 42}, {"sender": _sender(), "message": ""}):
        _post(deployment, json=payload)
    _post(deployment, content=b"{", headers={"Content-Type": "application/json"})
    _assert_still_recommends(deployment)


@pytest.mark.browser
def test_markup_typed_in_the_chat_is_text_and_never_runs(browser: Any, web_url: str) -> None:
    page = browser.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(web_url)
    page.wait_for_selector("#input")
    payload = '<img src=x onerror=alert(1)><script>alert("s")</script><b>bold</b>'
    page.fill("#input", payload)
    page.press("#input", "Enter")
    page.wait_for_function("document.querySelectorAll('.msg.user').length >= 1", timeout=30_000)
    # the greeting, then the answer to the markup
    page.wait_for_function("document.querySelectorAll('.msg.bot').length >= 2", timeout=60_000)
    user = page.locator(".msg.user").last
    assert user.inner_text().strip() == payload
    assert user.locator("img, script, b").count() == 0
    assert page.locator("#log img[src='x'], #log script").count() == 0
    page.screenshot(path=str(SHOTS / "bad-input-markup.png"), full_page=True)
    assert dialogs == []
    page.close()
