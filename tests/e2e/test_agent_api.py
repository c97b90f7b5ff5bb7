"""The assist panel's API against the real stack: Rasa server, action server, database and
the recommendation service the bot uses (the web app runs in-process via TestClient)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tailor.profiles.identity import sign_customer_token
from tailor.store import make_session_factory
from tailor.store.agents import AgentAction, create_agent, taken_over
from tailor.store.models import Customer, Event
from tailor.web.agent import COOKIE
from tailor.web.app import create_app
from tailor.web.security import CSRF_HEADER, csrf_token_for

from .conftest import E2E_TOKEN_SECRET, Deployment, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.slow]

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def client(deployment: Deployment) -> Iterator[TestClient]:
    previous = os.environ.get("TAILOR_RASA_TOKEN")
    os.environ["TAILOR_RASA_TOKEN"] = deployment.rasa_token
    factory = make_session_factory(deployment.settings.database_url)
    with factory.begin() as s:
        for name in ("alice-api", "bob-api"):
            create_agent(s, name, PASSWORD)
    try:
        with TestClient(create_app(deployment.settings)) as c:
            yield c
    finally:
        if previous is None:
            os.environ.pop("TAILOR_RASA_TOKEN", None)
        else:
            os.environ["TAILOR_RASA_TOKEN"] = previous


@pytest.fixture(scope="module")
def conversation(deployment: Deployment) -> tuple[str, Customer]:
    """A real conversation of a signed-in customer who asks for a person."""
    factory = make_session_factory(deployment.settings.database_url)
    with factory() as s:
        customer = s.scalars(select(Customer).order_by(Customer.id)).first()
        assert customer is not None
        s.expunge(customer)
    sender = f"web-agent-api-{uuid.uuid4().hex[:8]}"
    meta = {"customer_token": sign_customer_token(customer.external_id, E2E_TOKEN_SECRET, 600)}
    deployment.say(sender, "I need running shoes under $80", meta)
    deployment.say(sender, "can I talk to a person?", meta)

    def handoff_logged() -> None:  # logged just after the reply (tailor.runtime.after_reply)
        with factory() as s:
            kinds = set(s.scalars(select(Event.kind).where(Event.sender_id == sender)))
        assert {"message", "shown", "handoff"} <= kinds

    eventually(handoff_logged)
    return sender, customer


def login(c: TestClient, user: str = "alice-api") -> None:
    """Sign in; state-changing calls then carry the session's CSRF token, as the panel does."""
    c.cookies.clear()
    c.headers.pop(CSRF_HEADER, None)
    r = c.post("/api/agent/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    c.headers[CSRF_HEADER] = r.json()["csrf_token"]


def test_every_agent_route_needs_a_session(
    client: TestClient, conversation: tuple[str, Customer], deployment: Deployment
) -> None:
    sender, _ = conversation
    protected = [
        ("GET", "/api/agent/me", None),
        ("GET", "/api/agent/conversations", None),
        ("GET", f"/api/agent/conversations/{sender}", None),
        ("POST", f"/api/agent/conversations/{sender}/takeover", None),
        ("POST", f"/api/agent/conversations/{sender}/message", {"text": "hi"}),
        ("POST", f"/api/agent/conversations/{sender}/card", {"product_id": 1}),
        ("POST", f"/api/agent/conversations/{sender}/handback", None),
        ("POST", "/api/agent/logout", None),
    ]
    client.cookies.clear()
    for method, url, body in protected:
        assert client.request(method, url, json=body).status_code == 401, url
    client.cookies.set(COOKIE, "forged-token")
    for method, url, body in protected:
        assert client.request(method, url, json=body).status_code == 401, url
    assert not deployment.tracker(sender)["paused"]
    assert client.get("/agent").status_code == 200  # the page itself carries no data


def test_login_cookie_and_logout(client: TestClient) -> None:
    client.cookies.clear()
    client.headers.pop(CSRF_HEADER, None)
    bad = client.post("/api/agent/login", json={"username": "alice-api", "password": "nope nope!"})
    assert bad.status_code == 401 and COOKIE not in bad.cookies
    r = client.post("/api/agent/login", json={"username": "alice-api", "password": PASSWORD})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    token = client.cookies.get(COOKIE)
    csrf = csrf_token_for(str(token))
    assert r.json()["csrf_token"] == csrf
    assert client.get("/api/agent/me").json() == {
        "username": "alice-api",
        "role": "agent",
        "csrf_token": csrf,
    }
    assert client.post("/api/agent/logout").status_code == 403  # no CSRF token
    assert client.post("/api/agent/logout", headers={CSRF_HEADER: csrf}).status_code == 200
    client.cookies.set(COOKIE, str(token))  # replaying the old cookie does not work
    assert client.get("/api/agent/me").status_code == 401


def test_flagged_conversation_with_profile_sentiment_criteria_and_suggestions(
    client: TestClient, conversation: tuple[str, Customer], deployment: Deployment
) -> None:
    sender, customer = conversation
    login(client)
    listed = client.get("/api/agent/conversations").json()["conversations"]
    convos = {c["sender"]: c for c in listed}
    c = convos[sender]
    assert c["flagged"] and c["live"] and c["customer"] == customer.name
    d: dict[str, Any] = {}
    for _ in range(120):  # the recommender loads in a background thread on first use
        d = client.get(f"/api/agent/conversations/{sender}").json()
        if d["suggestions"]["status"] != "loading":
            break
        time.sleep(0.5)
    assert d["profile"]["name"] == customer.name and d["profile"]["segments"]
    factory = make_session_factory(deployment.settings.database_url)
    with factory() as s:
        stored = [
            e.value
            for e in s.scalars(
                select(Event)
                .where(Event.sender_id == sender, Event.kind == "message")
                .order_by(Event.id)
            )
        ]
    assert [p["value"] for p in d["sentiment"]] == pytest.approx(stored)
    assert d["criteria"]["fields"]["price_max"] == 80.0
    sug = d["suggestions"]
    assert sug["status"] == "ok" and sug["products"]
    assert all(p["price"] <= 80 and p["reason"] for p in sug["products"])


def test_takeover_message_card_handback_on_the_real_tracker(
    client: TestClient, conversation: tuple[str, Customer], deployment: Deployment
) -> None:
    sender, customer = conversation
    url = f"/api/agent/conversations/{sender}"
    # The shopper's page reads a signed-in customer's conversation with their token.
    shopper = {"X-Customer-Token": sign_customer_token(customer.external_id, E2E_TOKEN_SECRET, 600)}
    login(client)
    start = client.get("/api/updates", params={"sender": sender}, headers=shopper).json()
    assert client.post(f"{url}/message", json={"text": "hello"}).status_code == 409
    assert client.post(f"{url}/takeover").status_code == 200
    tr = deployment.tracker(sender)
    assert tr["paused"]
    assert "person has joined" in tr["events"][-1]["text"]
    # The bot is quiet while a person has the conversation.
    assert deployment.say(sender, "are you there?") == []

    assert client.post(f"{url}/message", json={"text": "  Hi, Alice here  "}).status_code == 200
    pid = client.get(url).json()["suggestions"]["products"][0]["id"]
    assert client.post(f"{url}/card", json={"product_id": pid}).status_code == 200
    assert client.post(f"{url}/card", json={"product_id": 10**9}).status_code == 404
    bots = [e for e in deployment.tracker(sender)["events"] if e["event"] == "bot"]
    assert bots[-2]["text"] == "Hi, Alice here"
    assert bots[-1]["data"]["custom"]["products"][0]["id"] == pid

    login(client, "bob-api")
    assert client.post(f"{url}/takeover").status_code == 409  # alice holds it
    login(client)
    upd = client.get(
        "/api/updates", params={"sender": sender, "after": start["next"]}, headers=shopper
    ).json()
    texts = [m.get("text") for m in upd["messages"]]
    assert "Hi, Alice here" in texts and upd["paused"]

    assert client.post(f"{url}/handback").status_code == 200
    assert not deployment.tracker(sender)["paused"]
    factory = make_session_factory(deployment.settings.database_url)
    with factory() as s:
        kinds = [
            a.kind
            for a in s.scalars(
                select(AgentAction).where(AgentAction.sender_id == sender).order_by(AgentAction.id)
            )
        ]
        assert kinds == ["takeover", "message", "card", "handback"]
        assert sender not in taken_over(s)
    # The bot answers again.
    reply = deployment.say(sender, "show me running shoes")
    assert any((m.get("custom") or {}).get("type") == "product_cards" for m in reply)
