"""Product cards per messaging platform, and the platform sections of the run's credentials."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from tailor.config import PROJECT_ROOT, Settings
from tailor.recommend.channels import (
    MESSENGER_MAX_ELEMENTS,
    SMS_MAX_CHARS,
    details_request,
    messenger_elements,
    messenger_message,
    number_choice,
    product_cards,
    slack_blocks,
    slack_message,
    sms_text,
    telegram_message,
)
from tailor.runtime.rasa import (
    PlatformMisconfigured,
    bot_pythonpath,
    copy_credentials,
    platform_credentials,
)


def card(n: int, **changes: Any) -> dict[str, Any]:
    """A card as ``Suggestion.to_card`` makes it."""
    base: dict[str, Any] = {
        "id": n,
        "sku": f"SKU-{n}",
        "title": f"Trail Runner {n}",
        "brand": "Nike",
        "price": 59.99 + n,
        "currency": "USD",
        "price_text": f"${59.99 + n:.2f}",
        "rating": 4.5,
        "review_count": 12,
        "reason": "matches running shoes under $80",
        "image_url": None,
        "in_stock": True,
    }
    return {**base, **changes}


def cards_payload(count: int = 4, **changes: Any) -> dict[str, Any]:
    return {
        "type": "product_cards",
        "criteria": "running shoes under $80",
        "total_matches": 40,
        "products": [card(i, **changes) for i in range(1, count + 1)],
    }


def test_only_product_cards_payloads_are_rendered() -> None:
    assert product_cards({"type": "product_details", "product": card(1)}) is None
    assert product_cards({"type": "product_cards", "products": "nope"}) is None
    assert product_cards(["not", "a", "payload"]) is None
    for render in (telegram_message, slack_message, messenger_message, sms_text):
        assert render({"type": "comparison", "products": [card(1)]}) is None
        assert render({"type": "product_cards", "products": []}) is None


def test_telegram_inline_keyboard_has_a_details_button_per_product() -> None:
    message = telegram_message(cards_payload(3))
    assert message is not None
    lines = message["text"].splitlines()
    assert lines[0] == (
        "1. Trail Runner 1 by Nike — $60.99 · 4.5★ (12). matches running shoes under $80"
    )
    assert len(lines) == 3
    keyboard = message["reply_markup"]["inline_keyboard"]
    assert [row[0]["callback_data"] for row in keyboard] == [
        "tell me more about number 1",
        "tell me more about number 2",
        "tell me more about number 3",
    ]
    assert all(len(row) == 1 for row in keyboard)
    assert keyboard[1][0]["text"] == "2. Trail Runner 2 — $61.99"
    # Telegram limits: callback data ≤ 64 bytes, text ≤ 4096 characters.
    long = telegram_message(cards_payload(10, title="x" * 900, reason="y" * 900))
    assert long is not None
    assert len(long["text"]) <= 4096
    assert all(
        len(r[0]["callback_data"].encode()) <= 64 for r in long["reply_markup"]["inline_keyboard"]
    )
    json.dumps(message)  # the Bot API takes it as JSON


def test_slack_blocks_section_per_product_and_details_buttons() -> None:
    payload = cards_payload(2)
    payload["products"][0]["image_url"] = "https://cdn.example/1.jpg"
    payload["products"][1]["image_url"] = "/static/2.jpg"  # not https: Slack would reject it
    payload["products"][1]["title"] = "Shoe <b> & co"
    blocks = slack_blocks(payload)
    assert blocks is not None
    assert [b["type"] for b in blocks] == ["section", "section", "actions"]
    first, second, actions = blocks
    assert first["text"]["type"] == "mrkdwn"
    assert first["text"]["text"].startswith("*1. Trail Runner 1 by Nike*\n$60.99 · 4.5★ (12)")
    assert first["accessory"] == {
        "type": "image",
        "image_url": "https://cdn.example/1.jpg",
        "alt_text": "Trail Runner 1",
    }
    assert "accessory" not in second
    assert "Shoe &lt;b&gt; &amp; co" in second["text"]["text"]
    assert [e["value"] for e in actions["elements"]] == [details_request(1), details_request(2)]
    assert {e["type"] for e in actions["elements"]} == {"button"}
    message = slack_message(payload)
    assert message is not None
    assert message["blocks"] == blocks
    assert message["text"].startswith("1. Trail Runner 1; 2. Shoe")


def test_messenger_generic_template_limits() -> None:
    elements = messenger_elements(cards_payload(12, image_url="https://cdn.example/x.jpg"))
    assert elements is not None
    assert len(elements) == MESSENGER_MAX_ELEMENTS
    for i, element in enumerate(elements, 1):
        assert element["title"].startswith(f"{i}. ")
        assert len(element["title"]) <= 80
        assert len(element["subtitle"]) <= 80
        assert element["image_url"] == "https://cdn.example/x.jpg"
        assert 1 <= len(element["buttons"]) <= 3
        assert element["buttons"][0] == {
            "type": "postback",
            "title": "Tell me more",
            "payload": f"tell me more about number {i}",
        }
    message = messenger_message(cards_payload(1, title="T" * 200, reason="R" * 200))
    assert message is not None
    template = message["attachment"]["payload"]
    assert message["attachment"]["type"] == "template"
    assert template["template_type"] == "generic"
    (only,) = template["elements"]
    assert len(only["title"]) == 80 and only["title"].endswith("…")
    assert "image_url" not in only


def test_sms_numbered_text_says_how_to_pick() -> None:
    text = sms_text(cards_payload(4))
    assert text is not None
    lines = text.splitlines()
    assert lines[0].startswith("1. Trail Runner 1 by Nike — $60.99 · 4.5★ (12)")
    assert [line[:2] for line in lines[:4]] == ["1.", "2.", "3.", "4."]
    assert lines[-1] == "Reply 1-4 for details."
    assert "\n\n" not in text  # Rasa's Twilio output sends each paragraph as its own SMS
    assert sms_text(cards_payload(1)).endswith("Reply 1 for details.")  # type: ignore[union-attr]
    long = sms_text(cards_payload(10, reason="z" * 1000))
    assert long is not None
    assert len(long) <= SMS_MAX_CHARS
    assert long.endswith("Reply 1-10 for details.")


def test_rating_and_brand_are_optional() -> None:
    text = sms_text(cards_payload(1, rating=None, brand=None, reason=""))
    assert text == "1. Trail Runner 1 — $60.99\nReply 1 for details."


@pytest.mark.parametrize(
    ("text", "shown", "expected"),
    [
        ("2", 4, "tell me more about number 2"),
        (" #3 ", 4, "tell me more about number 3"),
        ("4.", 4, "tell me more about number 4"),
        ("Number 1", 4, "tell me more about number 1"),
        ("5", 4, None),  # not in the last list
        ("0", 4, None),
        ("2", 0, None),  # no list shown yet
        ("50", 80, None),  # a budget, not a pick
        ("2 please", 4, None),
        ("under 2", 4, None),
        ("", 4, None),
    ],
)
def test_number_choice(text: str, shown: int, expected: str | None) -> None:
    assert number_choice(text, shown) == expected


ALL_PLATFORMS = {
    "TAILOR_TELEGRAM_TOKEN": "123:abc",
    "TAILOR_TELEGRAM_WEBHOOK_URL": "https://bot.example/webhooks/telegram/webhook",
    "TAILOR_TELEGRAM_API_URL": "http://127.0.0.1:9/telegram",
    "TAILOR_SLACK_TOKEN": "xoxb-1",
    "TAILOR_SLACK_SIGNING_SECRET": "shh",
    "TAILOR_FACEBOOK_VERIFY_TOKEN": "v",
    "TAILOR_FACEBOOK_APP_SECRET": "s",
    "TAILOR_FACEBOOK_PAGE_ACCESS_TOKEN": "p",
    "TAILOR_TWILIO_ACCOUNT_SID": "AC1",
    "TAILOR_TWILIO_AUTH_TOKEN": "t",
    "TAILOR_TWILIO_WHATSAPP_NUMBER": "whatsapp:+14155238886",
}


def test_no_platform_without_credentials() -> None:
    assert platform_credentials({}) == {}
    assert platform_credentials({"TAILOR_TELEGRAM_API_URL": "http://x", "OTHER": "1"}) == {}


def test_platform_sections_from_environment() -> None:
    sections = platform_credentials(ALL_PLATFORMS)
    assert sections == {
        "tailor_channels.TailorTelegramInput": {
            "access_token": "123:abc",
            "webhook_url": "https://bot.example/webhooks/telegram/webhook",
            "api_url": "http://127.0.0.1:9/telegram",
        },
        "tailor_channels.TailorSlackInput": {
            "slack_token": "xoxb-1",
            "slack_signing_secret": "shh",
        },
        "tailor_channels.TailorFacebookInput": {
            "verify": "v",
            "secret": "s",
            "page-access-token": "p",
        },
        "tailor_channels.TailorTwilioInput": {
            "account_sid": "AC1",
            "auth_token": "t",
            "whatsapp_number": "whatsapp:+14155238886",
        },
    }


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"TAILOR_SLACK_TOKEN": "xoxb"}, "TAILOR_SLACK_SIGNING_SECRET"),
        ({"TAILOR_TELEGRAM_TOKEN": "1:a"}, "TAILOR_TELEGRAM_WEBHOOK_URL"),
        (
            {"TAILOR_TWILIO_ACCOUNT_SID": "AC", "TAILOR_TWILIO_AUTH_TOKEN": "t"},
            "TAILOR_TWILIO_NUMBER or TAILOR_TWILIO_WHATSAPP_NUMBER",
        ),
    ],
)
def test_partly_configured_platform_names_what_is_missing(
    env: dict[str, str], missing: str
) -> None:
    with pytest.raises(PlatformMisconfigured, match=missing):
        platform_credentials(env)


def test_run_credentials_keep_the_web_channels_and_add_platforms(tmp_path: Path) -> None:
    settings = Settings.load(env={}, home=tmp_path)
    path = copy_credentials(settings, tmp_path / "run" / "credentials.yml", ALL_PLATFORMS)
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    base = yaml.safe_load((PROJECT_ROOT / "bot" / "credentials.yml").read_text(encoding="utf-8"))
    assert {k: loaded[k] for k in base} == base
    assert loaded["tailor_channels.TailorSlackInput"]["slack_signing_secret"] == "shh"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds secrets
    # Without platform variables the run gets exactly the checked-in channels.
    plain = copy_credentials(settings, tmp_path / "plain.yml", {})
    assert yaml.safe_load(plain.read_text(encoding="utf-8")) == base


def test_rasa_finds_the_rendering_module() -> None:
    env = bot_pythonpath(Settings.load(env={}))
    path = Path(env["TAILOR_CHANNEL_RENDERING"])
    assert path.is_file()
    assert path == PROJECT_ROOT / "tailor" / "recommend" / "channels.py"
