"""The web app's own logic: validation, metadata forwarding, events, consent, demo sign-in.

Real SQLite databases (the seeded demo generator, segments fitted), real token signing, and
for the chat proxy a real HTTP server standing in for Rasa's webhook that records the JSON it
receives. Conversations through the page against the real servers are in tests/e2e.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tailor.config import Settings
from tailor.profiles.identity import sign_customer_token
from tailor.runtime.processes import tailor_env
from tailor.runtime.rasa import RASA_PLUGINS, bot_pythonpath, rasa_env
from tailor.runtime.secrets import ensure_customer_token_secret, secret_path
from tailor.store import make_session_factory
from tailor.store.models import Customer, CustomerSegment, Event, Product, Profile
from tailor.web.app import create_app, history_from_tracker

SECRET = "unit-test-customer-token-secret-0123456789"
SENDER = "web-unit-000001"
NO_RASA = "http://127.0.0.1:9"  # port 9 (discard): nobody answers


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo store (products, customers, purchase history, fitted segments)."""
    from tailor.demo import load_demo
    from tailor.profiles.segments import assign_rule_segments, fit_behavioural

    path = tmp_path_factory.mktemp("template") / "tailor.db"
    factory = make_session_factory(f"sqlite:///{path}")
    load_demo(factory, 120, 40, seed=7)
    fit_behavioural(factory)
    assign_rule_segments(factory)
    factory.kw["bind"].dispose()  # checkpoints the WAL into the file
    return path


@pytest.fixture
def db_url(template_db: Path, tmp_path: Path) -> str:
    """A private copy of the demo store for one test."""
    target = tmp_path / "tailor.db"
    shutil.copyfile(template_db, target)
    return f"sqlite:///{target}"


def make_client(db_url: str = "", rasa_url: str = NO_RASA, **overrides: Any) -> TestClient:
    settings = Settings.load(
        env={},
        home=Path(db_url.removeprefix("sqlite:///")).parent if db_url else None,
        database_url=db_url or None,
        rasa_url=rasa_url,
        customer_token_secret=overrides.pop("customer_token_secret", SECRET),
        **overrides,
    )
    return TestClient(create_app(settings))


def rows(db_url: str, model: Any, *where: Any) -> list[Any]:
    factory = make_session_factory(db_url)
    with factory() as session:
        found = list(session.scalars(select(model).where(*where)))
    factory.kw["bind"].dispose()
    return found


def one_customer(db_url: str, segment: str | None = None) -> Customer:
    factory = make_session_factory(db_url)
    with factory() as session:
        stmt = select(Customer).order_by(Customer.id)
        if segment is not None:
            stmt = stmt.join(CustomerSegment, CustomerSegment.customer_id == Customer.id).where(
                CustomerSegment.kind == "rfm", CustomerSegment.segment == segment
            )
        customer = session.scalars(stmt.limit(1)).one()
    factory.kw["bind"].dispose()
    return customer


def first_product(db_url: str) -> Product:
    return rows(db_url, Product)[0]


# ---- page, health, history --------------------------------------------------------------


def test_page_and_health() -> None:
    c = make_client()
    page = c.get("/")
    assert page.status_code == 200 and "chat.js" in page.text
    assert 'id="shop-as"' in page.text and 'id="personalise"' in page.text
    assert c.get("/static/chat.js").status_code == 200
    assert c.get("/api/health").json() == {"ok": True, "rasa": False}


def test_unreachable_assistant_is_a_503_not_a_crash() -> None:
    r = make_client().post("/api/chat", json={"sender": "web-123456", "message": "hello"})
    assert r.status_code == 503
    assert "not reachable" in r.json()["detail"]


def test_history_keeps_text_buttons_and_cards_in_order() -> None:
    tracker = {
        "events": [
            {"event": "session_started"},
            {"event": "user", "text": "I need running shoes", "metadata": {"customer_token": "t"}},
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
    # The message metadata (the customer's token) never reaches the page's history.
    assert history_from_tracker(tracker) == [
        {"from": "user", "text": "I need running shoes"},
        {
            "from": "bot",
            "text": "Here are 4 picks",
            "buttons": [{"title": "Cheaper", "payload": "cheaper"}],
        },
        {"from": "bot", "custom": {"type": "product_cards", "products": []}},
    ]


# ---- chat: validation and metadata forwarding -------------------------------------------


class _RecordingWebhook(BaseHTTPRequestHandler):
    """Answers like Rasa's REST webhook and keeps every JSON body it receives."""

    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        self.server.received.append({"path": self.path, "json": body})  # type: ignore[attr-defined]
        reply = json.dumps([{"recipient_id": body.get("sender"), "text": "noted"}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server standing in for Rasa: its URL and the bodies it received."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingWebhook)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def test_chat_forwards_token_and_context_as_metadata(
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    c = make_client(rasa_url=url)
    token = sign_customer_token("cust-0001", SECRET)
    r = c.post(
        "/api/chat",
        json={
            "sender": SENDER,
            "message": "  running shoes  ",
            "customer_token": token,
            "context": {"device": "mobile", "local_hour": 21, "tz": "Europe/Berlin"},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"messages": [{"recipient_id": SENDER, "text": "noted"}]}
    assert received[-1] == {
        "path": "/webhooks/rest/webhook",
        "json": {
            "sender": SENDER,
            "message": "running shoes",
            "metadata": {
                "customer_token": token,
                "device": "mobile",
                "local_hour": 21,
                "tz": "Europe/Berlin",
            },
        },
    }

    # Only what was sent is forwarded; a forged token is passed on too (the action server
    # verifies it and treats the shopper as anonymous).
    r = c.post(
        "/api/chat",
        json={"sender": SENDER, "message": "hi", "context": {"local_hour": 0}},
    )
    assert r.status_code == 200
    assert received[-1]["json"]["metadata"] == {"local_hour": 0}
    r = c.post("/api/chat", json={"sender": SENDER, "message": "hi", "customer_token": "a.b"})
    assert received[-1]["json"]["metadata"] == {"customer_token": "a.b"}
    r = c.post("/api/chat", json={"sender": SENDER, "message": "hi", "customer_token": ""})
    assert received[-1]["json"]["metadata"] == {}
    assert len(received) == 4


def test_bad_input_is_rejected_with_a_reason(webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = webhook
    c = make_client(rasa_url=url)
    r = c.post("/api/chat", json={"sender": "x", "message": "hi"})
    assert r.status_code == 422 and "sender" in r.text
    r = c.post("/api/chat", json={"sender": "web-123456", "message": "   "})
    assert r.status_code == 422 and "blank" in r.text
    r = c.post("/api/chat", json={"sender": "web-123456", "message": "x" * 2001})
    assert r.status_code == 422
    r = c.get("/api/history", params={"sender": "../../etc"})
    assert r.status_code == 422
    assert received == []


@pytest.mark.parametrize(
    ("context", "field"),
    [
        ({"device": "watch"}, "device"),
        ({"device": 1}, "device"),
        ({"local_hour": 24}, "local_hour"),
        ({"local_hour": -1}, "local_hour"),
        ({"local_hour": "7"}, "local_hour"),
        ({"local_hour": 7.5}, "local_hour"),
        ({"local_hour": True}, "local_hour"),
        ({"tz": "Mars/Olympus_Mons"}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"tz": "/usr/share/zoneinfo/UTC"}, "tz"),
        ({"tz": "Europe/" + "x" * 60}, "tz"),
        ({"tz": ""}, "tz"),
        ({"colour_scheme": "dark"}, "colour_scheme"),
        ("mobile", "context"),
    ],
)
def test_bad_context_is_rejected(
    context: Any, field: str, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    r = make_client(rasa_url=url).post(
        "/api/chat", json={"sender": SENDER, "message": "hi", "context": context}
    )
    assert r.status_code == 422
    assert any(field in [str(p) for p in err["loc"]] for err in r.json()["detail"]), r.text
    assert received == []


@pytest.mark.parametrize(
    "token",
    ["a" * 4097, "abc def.ghi", "<script>.x", 42],
)
def test_bad_token_is_rejected(token: Any, webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = webhook
    r = make_client(rasa_url=url).post(
        "/api/chat", json={"sender": SENDER, "message": "hi", "customer_token": token}
    )
    assert r.status_code == 422 and "customer_token" in r.text
    assert received == []


def test_known_time_zones_are_accepted(webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = webhook
    c = make_client(rasa_url=url)
    for tz in ("UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "Asia/Kolkata"):
        r = c.post("/api/chat", json={"sender": SENDER, "message": "hi", "context": {"tz": tz}})
        assert r.status_code == 200, (tz, r.text)
        assert received[-1]["json"]["metadata"] == {"tz": tz}


# ---- events ------------------------------------------------------------------------------


def test_events_carry_the_customer_only_for_a_valid_token(db_url: str) -> None:
    c = make_client(db_url)
    customer = one_customer(db_url)
    pid = first_product(db_url).id
    valid = sign_customer_token(customer.external_id, SECRET)
    forged = sign_customer_token(customer.external_id, "another-secret-of-enough-length")
    expired = sign_customer_token(customer.external_id, SECRET, ttl_seconds=60, now=1_000_000)
    unknown = sign_customer_token("no-such-customer", SECRET)
    cases = {
        "web-anon-00001": None,
        "web-valid-0001": valid,
        "web-forged-001": forged,
        "web-expired-01": expired,
        "web-unknown-01": unknown,
    }
    for sender, token in cases.items():
        body: dict[str, Any] = {"sender": sender, "kind": "click", "product_id": pid}
        if token is not None:
            body["customer_token"] = token
        r = c.post("/api/events", json=body)
        assert r.status_code == 200 and r.json() == {"ok": True}, r.text
    r = c.post("/api/events", json={"sender": "web-anon-00001", "kind": "view", "product_id": pid})
    r = c.post("/api/events", json={"sender": "web-anon-00001", "kind": "cart", "product_id": pid})
    assert r.status_code == 200

    stored = {(e.sender_id, e.kind): e for e in rows(db_url, Event, Event.sender_id.like("web-%"))}
    assert set(stored) == {(s, "click") for s in cases} | {
        ("web-anon-00001", "view"),
        ("web-anon-00001", "cart"),
    }
    assert stored["web-valid-0001", "click"].customer_id == customer.id
    for sender in ("web-anon-00001", "web-forged-001", "web-expired-01", "web-unknown-01"):
        assert stored[sender, "click"].customer_id is None, sender
    assert all(e.product_id == pid and e.payload.get("source") == "web" for e in stored.values())


def test_events_are_validated(db_url: str) -> None:
    c = make_client(db_url)
    pid = first_product(db_url).id
    ok: dict[str, Any] = {"sender": SENDER, "kind": "click", "product_id": pid}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"sender": "x"}, 422, "sender"),
        ({"sender": "../etc/passwd"}, 422, "sender"),
        ({"kind": "shown"}, 422, "kind"),
        ({"kind": "CLICK"}, 422, "kind"),
        ({"product_id": 10**9}, 404, "No product"),
        ({"product_id": 0}, 422, "product_id"),
        ({"product_id": "12"}, 422, "product_id"),
        ({"customer_token": "t" * 4097}, 422, "customer_token"),
        ({"value": 100.0}, 422, "value"),
    ]
    for bad, status, says in cases:
        r = c.post("/api/events", json={**ok, **bad})
        assert r.status_code == status and says in r.text, (bad, r.text)
    assert rows(db_url, Event, Event.sender_id == SENDER) == []


def test_purchase_needs_a_valid_token_and_refreshes_the_segment(db_url: str) -> None:
    c = make_client(db_url)
    newcomer = one_customer(db_url, segment="no purchases yet")
    product = first_product(db_url)
    body = {"sender": SENDER, "kind": "purchase", "product_id": product.id}

    r = c.post("/api/events", json=body)
    assert r.status_code == 403 and "customer token" in r.json()["detail"]
    forged = sign_customer_token(newcomer.external_id, "another-secret-of-enough-length")
    r = c.post("/api/events", json={**body, "customer_token": forged})
    assert r.status_code == 403 and "bad signature" in r.json()["detail"]
    assert rows(db_url, Event, Event.kind == "purchase", Event.sender_id == SENDER) == []

    token = sign_customer_token(newcomer.external_id, SECRET)
    r = c.post("/api/events", json={**body, "customer_token": token})
    assert r.status_code == 200
    [bought] = rows(db_url, Event, Event.kind == "purchase", Event.sender_id == SENDER)
    assert bought.customer_id == newcomer.id and bought.value == pytest.approx(product.price)
    [segment] = rows(
        db_url,
        CustomerSegment,
        CustomerSegment.customer_id == newcomer.id,
        CustomerSegment.kind == "rfm",
    )
    assert segment.segment != "no purchases yet"


def test_without_a_secret_nobody_is_identified(db_url: str) -> None:
    c = make_client(db_url, customer_token_secret="")
    customer = one_customer(db_url)
    pid = first_product(db_url).id
    token = sign_customer_token(customer.external_id, SECRET)
    r = c.post(
        "/api/events",
        json={"sender": SENDER, "kind": "click", "product_id": pid, "customer_token": token},
    )
    assert r.status_code == 200
    assert [e.customer_id for e in rows(db_url, Event, Event.sender_id == SENDER)] == [None]
    r = c.post(
        "/api/events",
        json={"sender": SENDER, "kind": "purchase", "product_id": pid, "customer_token": token},
    )
    assert r.status_code == 403 and "no customer token secret" in r.json()["detail"]


def test_a_short_secret_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        make_client(customer_token_secret="short")


# ---- consent -----------------------------------------------------------------------------


def test_consent_round_trip_for_an_anonymous_visitor(db_url: str) -> None:
    c = make_client(db_url)
    r = c.get("/api/profile/consent", params={"sender": SENDER})
    assert r.json() == {"identity": "anonymous", "personalisation": True}
    assert rows(db_url, Profile, Profile.sender_id == SENDER) == []  # reading stores nothing

    r = c.post("/api/profile/consent", json={"sender": SENDER, "personalisation": False})
    assert r.status_code == 200
    assert r.json() == {"identity": "anonymous", "personalisation": False, "deidentified_events": 0}
    again = c.get("/api/profile/consent", params={"sender": SENDER}).json()
    assert again["personalisation"] is False
    # Another conversation is another visitor.
    other = c.get("/api/profile/consent", params={"sender": "web-other-0001"}).json()
    assert other["personalisation"] is True
    [prof] = rows(db_url, Profile, Profile.sender_id == SENDER)
    assert prof.customer_id is None and prof.personalisation is False


def test_consent_round_trip_for_a_customer(db_url: str) -> None:
    c = make_client(db_url)
    customer = one_customer(db_url)
    token = sign_customer_token(customer.external_id, SECRET)
    before = len(rows(db_url, Event, Event.customer_id == customer.id))
    assert before > 0, "the demo customer has a history to withdraw"
    r = c.post(
        "/api/profile/consent",
        json={"sender": SENDER, "personalisation": False, "customer_token": token},
    )
    # withdrawing consent de-identifies the stored history at once
    assert r.json() == {
        "identity": "customer",
        "personalisation": False,
        "deidentified_events": before,
    }
    assert rows(db_url, Event, Event.customer_id == customer.id) == []
    # The customer's choice holds in any conversation they sign in to …
    r = c.get(
        "/api/profile/consent",
        params={"sender": "web-elsewhere-1"},
        headers={"X-Customer-Token": token},
    )
    assert r.json() == {"identity": "customer", "personalisation": False}
    # … but not for the anonymous visitor of the same conversation.
    assert c.get("/api/profile/consent", params={"sender": SENDER}).json() == {
        "identity": "anonymous",
        "personalisation": True,
    }
    [prof] = rows(db_url, Profile, Profile.customer_id == customer.id)
    assert prof.sender_id is None and prof.personalisation is False

    r = c.post(
        "/api/profile/consent",
        json={"sender": SENDER, "personalisation": True, "customer_token": token},
    )
    assert r.json()["personalisation"] is True


def test_consent_with_a_bad_token_speaks_for_the_visitor(db_url: str) -> None:
    c = make_client(db_url)
    customer = one_customer(db_url)
    expired = sign_customer_token(customer.external_id, SECRET, ttl_seconds=60, now=1_000_000)
    r = c.post(
        "/api/profile/consent",
        json={"sender": SENDER, "personalisation": False, "customer_token": expired},
    )
    assert r.json() == {
        "identity": "anonymous",
        "personalisation": False,
        "token_error": "expired",
        "deidentified_events": 0,
    }
    assert rows(db_url, Profile, Profile.customer_id == customer.id) == []


def test_consent_is_validated(db_url: str) -> None:
    c = make_client(db_url)
    for body in (
        {"sender": "x", "personalisation": True},
        {"sender": SENDER, "personalisation": "yes"},
        {"sender": SENDER, "personalisation": 1},
        {"sender": SENDER},
        {"sender": SENDER, "personalisation": True, "customer_token": "t" * 4097},
    ):
        assert c.post("/api/profile/consent", json=body).status_code == 422, body
    assert c.get("/api/profile/consent", params={"sender": "../x"}).status_code == 422
    r = c.get(
        "/api/profile/consent", params={"sender": SENDER}, headers={"X-Customer-Token": "a b"}
    )
    assert r.status_code == 422


# ---- demo sign-in ------------------------------------------------------------------------


def test_demo_customers_span_the_behavioural_segments(db_url: str) -> None:
    listed = make_client(db_url).get("/api/demo/customers").json()["customers"]
    assert len(listed) == 8
    assert len({c["external_id"] for c in listed}) == 8
    assert all(c["name"] and c["segments"].get("rfm") for c in listed)
    rfm_segments = {s.segment for s in rows(db_url, CustomerSegment, CustomerSegment.kind == "rfm")}
    assert {c["segments"]["rfm"] for c in listed} == rfm_segments


def test_demo_customers_without_segments_are_the_first_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    factory = make_session_factory(url)
    with factory.begin() as session:
        session.add_all(Customer(external_id=f"c{i}", name=f"Shopper {i}") for i in range(12))
    listed = make_client(url).get("/api/demo/customers").json()["customers"]
    assert [c["external_id"] for c in listed] == [f"c{i}" for i in range(8)]
    assert all(c["segments"] == {} for c in listed)


def test_demo_token_signs_in_as_the_customer(db_url: str) -> None:
    from tailor.profiles.identity import verify_customer_token

    c = make_client(db_url)
    customer = one_customer(db_url)
    r = c.post("/api/demo/token", json={"external_id": customer.external_id})
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == customer.name and body["expires_in"] == 3600
    assert verify_customer_token(body["token"], SECRET).customer_id == customer.external_id

    r = c.post("/api/demo/token", json={"external_id": "nobody-here"})
    assert r.status_code == 404 and "nobody-here" in r.json()["detail"]
    assert c.post("/api/demo/token", json={"external_id": ""}).status_code == 422
    assert c.post("/api/demo/token", json={"external_id": "x" * 129}).status_code == 422


def test_demo_token_without_a_secret_says_what_to_set(db_url: str) -> None:
    c = make_client(db_url, customer_token_secret="")
    r = c.post("/api/demo/token", json={"external_id": one_customer(db_url).external_id})
    assert r.status_code == 503
    assert "TAILOR_CUSTOMER_TOKEN_SECRET" in r.json()["detail"]


def test_demo_sign_in_can_be_turned_off(db_url: str) -> None:
    c = make_client(db_url, demo_login=False)
    assert c.get("/api/demo/customers").status_code == 404
    r = c.post("/api/demo/token", json={"external_id": one_customer(db_url).external_id})
    assert r.status_code == 404
    assert c.get("/").status_code == 200  # the page still works, without "Shop as"


def test_demo_login_setting_reads_the_environment() -> None:
    assert Settings.load(env={}).demo_login is True
    assert Settings.load(env={"TAILOR_DEMO_LOGIN": "false"}).demo_login is False
    assert Settings.load(env={"TAILOR_DEMO_LOGIN": "0"}).demo_login is False
    with pytest.raises(ValueError, match="TAILOR_DEMO_LOGIN must be true or false"):
        Settings.load(env={"TAILOR_DEMO_LOGIN": "maybe"})


# ---- the secret the action server and the web app share ----------------------------------


def test_run_secret_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    settings = Settings.load(env={}, home=tmp_path)
    first = ensure_customer_token_secret(settings)
    path = secret_path(settings)
    assert len(first.customer_token_secret) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ensure_customer_token_secret(settings).customer_token_secret == (
        first.customer_token_secret
    )
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left

    env = tailor_env(first)
    assert env["TAILOR_CUSTOMER_TOKEN_SECRET"] == first.customer_token_secret
    assert Settings.load(env=env).customer_token_secret == first.customer_token_secret
    assert env["TAILOR_DEMO_LOGIN"] == "true"


def test_run_secret_prefers_the_configured_one_and_checks_the_stored_one(tmp_path: Path) -> None:
    configured = Settings.load(env={}, home=tmp_path, customer_token_secret=SECRET)
    assert ensure_customer_token_secret(configured) is configured
    assert not secret_path(configured).exists()

    secret_path(configured).parent.mkdir(parents=True)
    secret_path(configured).write_text("short\n")
    with pytest.raises(ValueError, match="customer-token-secret"):
        ensure_customer_token_secret(Settings.load(env={}, home=tmp_path))


def test_rasa_gets_the_bot_folder_on_its_path_but_not_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAILOR_CUSTOMER_TOKEN_SECRET", SECRET)
    monkeypatch.setenv("PYTHONPATH", "/opt/elsewhere")
    settings = Settings.load(env={}, bot_dir=tmp_path)
    env = rasa_env(bot_pythonpath(settings))
    assert "TAILOR_CUSTOMER_TOKEN_SECRET" not in env
    # the bot folder (our channels), our Rasa plugins (tracker and lock stores), then the rest
    assert env["PYTHONPATH"].split(os.pathsep) == [
        str(tmp_path.resolve()),
        str(RASA_PLUGINS),
        "/opt/elsewhere",
    ]


def test_widget_origins_are_checked() -> None:
    from tailor.config import Settings
    from tailor.web.app import widget_origins

    assert widget_origins(Settings.load(widget_origins="*")) == ["*"]
    assert widget_origins(
        Settings.load(widget_origins="https://shop.example/, http://localhost:8080")
    ) == ["https://shop.example", "http://localhost:8080"]
    with pytest.raises(ValueError, match="widget_origins"):
        widget_origins(Settings.load(widget_origins="shop.example"))
    with pytest.raises(ValueError, match="widget_origins"):
        widget_origins(Settings.load(widget_origins="https://shop.example/path"))
