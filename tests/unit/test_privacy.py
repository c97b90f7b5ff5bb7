"""Redaction of personal data, log redaction, the readable data summary, small privacy types."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from tailor.config import Settings
from tailor.privacy import (
    DataExport,
    ForgetReport,
    RedactingFilter,
    Subject,
    TrackerStore,
    install_log_redaction,
    luhn_valid,
    redact,
    summary_text,
    tracker_store_url,
)
from tailor.privacy.consent import scrub_payload
from tailor.privacy.redaction import redact_value

POSITIVE = [
    ("write to anna.smith+shop@example.co.uk please", "write to [email] please"),
    ("ANNA@EXAMPLE.COM", "[email]"),
    ("my card is 4111 1111 1111 1111", "my card is [card]"),
    ("5500-0000-0000-0004 expires soon", "[card] expires soon"),
    ("amex 378282246310005", "amex [card]"),
    ("call +44 20 7946 0958 after six", "call [phone] after six"),
    ("+4915112345678", "[phone]"),
    ("+1 (555) 123-4567", "[phone]"),
    ("ring (555) 123-4567", "ring [phone]"),
    ("text 555-123-4567", "text [phone]"),
    ("555.123.4567", "[phone]"),
    ("mobile 07700 900123", "mobile [phone]"),
    ("030 1234 5678", "[phone]"),
    ("email a@b.io or phone 0612345678", "email [email] or phone [phone]"),
]
NEGATIVE = [
    "running shoes under $80",
    "between 100 and 200 dollars",
    "size 10.5",
    "Sony WH-1000XM4 headphones",
    "delivered on 2026-11-25",
    "order 4111 1111 1111 1112",  # 16 digits that fail the Luhn check
    "EAN 4006381333931",
    "compare the first two",
    "@nike on twitter",
    "a 4k TV for 1,299",
    "flight at 10:30",
    "version 3.6.21",
    "1000 2000 3000",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVE)
def test_personal_data_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", NEGATIVE)
def test_shopping_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112") and not luhn_valid("79927398710")
    assert not luhn_valid("4111-1111") and not luhn_valid("")


def test_redact_value_walks_json() -> None:
    value = {"text": "mail x@y.com", "n": 3, "items": ["call 555-123-4567", None]}
    assert redact_value(value) == {"text": "mail [email]", "n": 3, "items": ["call [phone]", None]}


def _capture(logger: logging.Logger) -> io.StringIO:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return out


def test_log_filter_redacts_messages_arguments_and_tracebacks() -> None:
    logger = logging.getLogger("tailor.test.redaction")
    out = _capture(logger)
    logger.info("message from %s: %r", "anna@example.com", "card 4111111111111111")
    try:
        raise ValueError("bad phone +44 20 7946 0958")
    except ValueError:
        logger.exception("failed for %s", "bob@example.org")
    text = out.getvalue()
    assert "[email]" in text and "[card]" in text and "[phone]" in text
    assert "@example" not in text and "4111111111111111" not in text and "7946" not in text
    assert "Traceback" in text and "ValueError" in text


def test_installed_redaction_covers_every_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    from tailor.privacy import redaction

    monkeypatch.setattr(redaction, "_installed", False)
    before = logging.getLogRecordFactory()
    try:
        install_log_redaction()
        install_log_redaction()  # idempotent: wrapped once
        logger = logging.getLogger("some.framework")
        out = io.StringIO()
        handler = logging.StreamHandler(out)  # no filter of ours on it
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.info("user %s paid with %s", "eve@example.net", "5500 0000 0000 0004")
        assert out.getvalue().strip() == "user [email] paid with [card]"
    finally:
        logging.setLogRecordFactory(before)


def _export(**changes: object) -> DataExport:
    data = DataExport(
        identity="anonymous",
        generated_at="2026-11-25T00:00:00+00:00",
        conversations=["web-abc-123"],
        customer=None,
        consent={"personalisation": True, "recorded": True},
        profiles=[
            {
                "conversation": "web-abc-123",
                "personalisation": True,
                "preferences": [{"kind": "value", "value": "sustainability", "positive": True}],
                "created_at": None,
                "updated_at": None,
            }
        ],
        segments={},
        channel_links=[],
        events=[
            {
                "kind": "message",
                "conversation": "web-abc-123",
                "product_id": None,
                "value": None,
                "payload": {},
                "at": None,
            },
            {
                "kind": "message",
                "conversation": "web-abc-123",
                "product_id": None,
                "value": None,
                "payload": {},
                "at": None,
            },
            {
                "kind": "click",
                "conversation": "web-abc-123",
                "product_id": 4,
                "value": None,
                "payload": {},
                "at": None,
            },
        ],
        agent_actions=[],
        analytics_events=[],
        transcripts={"web-abc-123": [{"from": "user", "text": "hi", "timestamp": 1.0}]},
    )
    data.update(changes)  # type: ignore[typeddict-item]
    return data


def test_summary_of_an_anonymous_visitor() -> None:
    text = summary_text(_export())
    assert "not signed in" in text
    assert "2 messages" in text and "1 click on a product" in text
    assert "sustainability" in text and "Personalised suggestions are on" in text
    assert "/api/privacy/export" in text and "forget me" in text


def test_summary_of_a_customer_who_opted_out() -> None:
    customer = {
        "name": "Ada Lovelace",
        "email": "ada@example.org",
        "age_band": "35-44",
        "gender": None,
        "region": "London",
        "country": "GB",
    }
    text = summary_text(
        _export(
            identity="customer",
            customer=customer,
            consent={"personalisation": False, "recorded": True},
            segments={"rfm": "loyal", "geographic": "temperate"},
            channel_links=[{"channel": "telegram", "user_id": "1", "linked_at": None}],
            events=[],
        )
    )
    assert text.startswith("You're signed in as Ada Lovelace (ada@example.org)")
    assert "age band 35-44" in text and "London, GB" in text
    assert "rfm: loyal" in text and "telegram" in text
    assert "no activity" in text and "turned personalised suggestions off" in text


def test_forget_report_and_subject() -> None:
    report = ForgetReport(conversations=["a-123456"], deleted={"events": 3, "profiles": 0})
    assert report.total == 3
    assert "events" in report.render() and "profiles" not in report.render()
    assert "nothing was stored" in ForgetReport(["a-123456"], {"events": 0}).render()
    assert Subject("a-123456", 4).identified and not Subject("a-123456").identified
    with pytest.raises(ValueError, match="conversation id, a customer id"):
        Subject(None)


def test_scrub_payload_drops_words_and_device() -> None:
    payload = {"intent": "greet", "text": "hi", "device": "mobile", "sentiment": "neutral"}
    assert scrub_payload(payload) == {"intent": "greet", "sentiment": "neutral"}


def test_tracker_store_location(tmp_path: Path) -> None:
    embedded = Settings.load(env={}, home=tmp_path)
    assert tracker_store_url(embedded) == f"sqlite:///{tmp_path / 'rasa_tracker.db'}"
    production = Settings.load(
        env={},
        home=tmp_path,
        profile="production",
        postgres_url="postgresql+psycopg://u:p@db:5432/shop",
    )
    assert tracker_store_url(production).endswith("@db:5432/shop_tracker")
    store = TrackerStore.from_settings(embedded)
    assert store.count(["x-123456"]) == 0 and store.delete(["x-123456"]) == 0
    assert store.transcript("x-123456") == [] and store.delete_before(1e12) == 0
    assert store.delete_after_save("x-123456", timeout=0.3, poll=0.1) == 0
    assert not (tmp_path / "rasa_tracker.db").exists()  # reading never creates the file
