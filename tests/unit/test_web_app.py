"""The web app's own logic: input validation and history reconstruction.

Conversations through the page against the real servers are in tests/e2e.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tailor.config import Settings
from tailor.web.app import create_app, history_from_tracker


def client() -> TestClient:
    # Port 9 (discard) has no Rasa: the app must answer clearly, not crash.
    return TestClient(create_app(Settings.load(rasa_url="http://127.0.0.1:9")))


def test_page_and_health() -> None:
    c = client()
    page = c.get("/")
    assert page.status_code == 200 and "chat.js" in page.text
    assert c.get("/static/chat.js").status_code == 200
    assert c.get("/api/health").json() == {"ok": True, "rasa": False}


def test_bad_input_is_rejected_with_a_reason() -> None:
    c = client()
    r = c.post("/api/chat", json={"sender": "x", "message": "hi"})
    assert r.status_code == 422 and "sender" in r.text
    r = c.post("/api/chat", json={"sender": "web-123456", "message": "   "})
    assert r.status_code == 422 and "blank" in r.text
    r = c.post("/api/chat", json={"sender": "web-123456", "message": "x" * 2001})
    assert r.status_code == 422
    r = c.get("/api/history", params={"sender": "../../etc"})
    assert r.status_code == 422


def test_unreachable_assistant_is_a_503_not_a_crash() -> None:
    r = client().post("/api/chat", json={"sender": "web-123456", "message": "hello"})
    assert r.status_code == 503
    assert "not reachable" in r.json()["detail"]


def test_history_keeps_text_buttons_and_cards_in_order() -> None:
    tracker = {
        "events": [
            {"event": "session_started"},
            {"event": "user", "text": "I need running shoes"},
            {
                "event": "bot",
                "text": "Here are 4 picks",
                "data": {"buttons": [{"title": "Cheaper", "payload": "cheaper"}]},
            },
            {
                "event": "bot",
                "text": None,
                "data": {"custom": {"type": "product_cards", "products": []}},
            },
            {"event": "user", "text": "/greet"},
            {"event": "slot", "name": "colour", "value": "blue"},
        ]
    }
    assert history_from_tracker(tracker) == [
        {"from": "user", "text": "I need running shoes"},
        {
            "from": "bot",
            "text": "Here are 4 picks",
            "buttons": [{"title": "Cheaper", "payload": "cheaper"}],
        },
        {"from": "bot", "custom": {"type": "product_cards", "products": []}},
    ]
