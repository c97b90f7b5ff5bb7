"""Web security without Rasa: token buckets, 429s, roles and their migration, CSRF, the
catalog admin API — on real SQLite databases with the real app (Rasa is a dead port; the
routes under test answer before they would call it). The same rules against the running
stack, and customer isolation on every route, are in tests/e2e/test_security.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tailor.config import Settings
from tailor.store import make_session_factory
from tailor.store.agents import (
    Agent,
    AgentSession,
    agent_by_username,
    create_agent,
    create_session,
    has_role,
    role_of,
    set_role,
)
from tailor.store.models import Product
from tailor.web.admin import IndexSync
from tailor.web.app import create_app
from tailor.web.security import (
    COOKIE,
    CSRF_HEADER,
    RateLimiter,
    RateSpec,
    SecuritySettings,
    csrf_token_for,
)

SECRET = "unit-test-customer-token-secret-0123456789"
PASSWORD = "correct horse battery"
NO_RASA = "http://127.0.0.1:9"
SENDER = "web-security-000001"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- token buckets ------------------------------------------------------------------------


def test_rate_spec_parsing_and_errors() -> None:
    assert RateSpec.parse("60/minute") == RateSpec(60, 60.0)
    assert RateSpec.parse("10/15min") == RateSpec(10, 900.0)
    assert RateSpec.parse(" 5 / 10s ") == RateSpec(5, 10.0)
    assert RateSpec.parse("1000/hour").rate == pytest.approx(1000 / 3600)
    for bad in ("", "60", "0/minute", "5/fortnight", "-1/s", "a/b"):
        with pytest.raises(ValueError, match="a rate limit looks like"):
            RateSpec.parse(bad)


def test_token_bucket_bursts_refills_and_says_how_long_to_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    spec = RateSpec(3, 30.0)  # one token per 10 s
    assert [limiter.hit("k", spec) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.hit("k", spec) == pytest.approx(10.0)
    assert limiter.hit("other", spec) == 0.0  # keys are independent
    clock.now += 4.0
    assert limiter.wait("k", spec) == pytest.approx(6.0)  # wait() takes nothing
    assert limiter.wait("k", spec) == pytest.approx(6.0)
    clock.now += 6.0
    assert limiter.hit("k", spec) == 0.0
    assert limiter.hit("k", spec) > 0
    clock.now += 1000.0  # refills to capacity, not beyond
    assert [limiter.hit("k", spec) for _ in range(4)][-1] > 0


def test_token_bucket_matches_a_brute_force_count() -> None:
    """Over a random request stream, the bucket admits exactly what a reference model of
    'capacity, one token back every period/count seconds' admits."""
    import random

    rng = random.Random(5)
    clock = Clock()
    limiter = RateLimiter(clock)
    spec = RateSpec(5, 10.0)
    tokens, last, admitted, ref_admitted = 5.0, clock.now, 0, 0
    for _ in range(2000):
        clock.now += rng.expovariate(1.0)  # ~1 request/s against 0.5 tokens/s
        tokens = min(5.0, tokens + (clock.now - last) * 0.5)
        last = clock.now
        if tokens >= 1.0:
            tokens -= 1.0
            ref_admitted += 1
        admitted += limiter.hit("k", spec) == 0.0
    assert admitted == ref_admitted
    assert 900 < admitted < 1100  # about the refill rate over ~2000 s


def test_limiter_forgets_idle_keys_when_full() -> None:
    clock = Clock()
    limiter = RateLimiter(clock, max_keys=10)
    spec = RateSpec(1, 1.0)
    for i in range(10):
        limiter.hit(f"k{i}", spec)
    clock.now += 7200
    limiter.hit("new", spec)
    assert len(limiter) == 1


def test_security_settings_from_environment() -> None:
    s = SecuritySettings.load(
        env={"TAILOR_RATE_CHAT_PER_SENDER": "7/minute", "TAILOR_RATE_LIMITS": "off"}
    )
    assert s.specs["chat_per_sender"] == RateSpec(7, 60.0) and not s.rate_limits
    assert SecuritySettings.load(env={}, rate_login_per_ip="3/s").specs["login_per_ip"].count == 3
    with pytest.raises(ValueError, match="TAILOR_RATE_LIMITS must be true or false"):
        SecuritySettings.load(env={"TAILOR_RATE_LIMITS": "maybe"})
    with pytest.raises(ValueError, match="a rate limit looks like"):
        SecuritySettings.load(env={"TAILOR_RATE_API_PER_IP": "lots"})
    with pytest.raises(TypeError, match="valid settings are"):
        SecuritySettings.load(env={}, rate_everything="1/s")
    with pytest.raises(ValueError, match="panel_origins"):
        SecuritySettings.load(env={}, panel_origins="evil.example")


# -- roles and the migration of an existing database --------------------------------------


def test_role_column_is_added_to_an_existing_database(tmp_path: Path) -> None:
    """A database from before roles: its agents table has no ``role``; opening it adds the
    column and the old accounts are plain agents (least privilege)."""
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE agents (id INTEGER PRIMARY KEY AUTOINCREMENT, username VARCHAR(64) "
        "NOT NULL UNIQUE, password_hash VARCHAR(256) NOT NULL, created_at DATETIME NOT NULL)"
    )
    con.execute(
        "INSERT INTO agents (username, password_hash, created_at) "
        "VALUES ('old-timer', 'scrypt$x', '2026-01-01 00:00:00')"
    )
    con.commit()
    con.close()
    factory = make_session_factory(f"sqlite:///{path}")
    cols = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(agents)")]
    assert "role" in cols
    with factory.begin() as s:
        old = agent_by_username(s, "old-timer")
        assert old is not None and old.role is None
        assert role_of(old) == "agent" and has_role(old, "agent") and not has_role(old, "admin")
        boss = create_agent(s, "boss", PASSWORD, role="admin")
        assert has_role(boss, "agent") and has_role(boss, "admin")
        with pytest.raises(ValueError, match=r"Unknown role 'root'; valid roles are"):
            create_agent(s, "root", PASSWORD, role="root")
        create_session(s, old, 30)
        set_role(s, old, "admin")
        assert role_of(old) == "admin"
        assert not s.scalars(select(AgentSession).where(AgentSession.agent_id == old.id)).all()
        with pytest.raises(ValueError, match="valid roles"):
            set_role(s, old, "superuser")


# -- the app: limits, CSRF, roles, admin ------------------------------------------------


class RecordingSync(IndexSync):
    """The admin API's index sync with the sync step counted instead of embedding (the
    real sync runs in tests/e2e/test_security.py)."""

    def __init__(self) -> None:
        self.calls = 0

        def sync() -> str:
            self.calls += 1
            return "synced"

        super().__init__(lambda: None, sync)  # type: ignore[arg-type,return-value]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tailor.db'}"
    factory = make_session_factory(url)
    with factory.begin() as s:
        create_agent(s, "agent-amy", PASSWORD)
        create_agent(s, "admin-ada", PASSWORD, role="admin")
        s.add(Product(sku="sku-1", title="Blue running shoe", category="Shoes", price=50.0))
    factory.kw["bind"].dispose()
    return url


def app_client(db_url: str, sync: IndexSync | None = None, **security: Any) -> TestClient:
    settings = Settings.load(
        env={},
        home=Path(db_url.removeprefix("sqlite:///")).parent,
        database_url=db_url,
        rasa_url=NO_RASA,
        customer_token_secret=SECRET,
    )
    return TestClient(
        create_app(settings, SecuritySettings.load(env={}, **security), index_sync=sync),
        base_url="http://tailor.test",
    )


def sign_in(c: TestClient, user: str) -> str:
    c.cookies.clear()
    r = c.post("/api/agent/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = str(c.cookies.get(COOKIE))
    assert r.json()["csrf_token"] == csrf_token_for(token)
    return str(r.json()["csrf_token"])


def assert_429(r: Any, limit: str) -> None:
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["reason"] == "rate_limited" and body["limit"] == limit and body["detail"]
    assert int(r.headers["Retry-After"]) == body["retry_after"] >= 1


def test_chat_is_limited_per_sender_and_per_ip(db_url: str) -> None:
    c = app_client(db_url, rate_chat_per_sender="2/minute", rate_chat_per_ip="4/minute")
    msg = {"sender": SENDER, "message": "hi"}
    assert [c.post("/api/chat", json=msg).status_code for _ in range(2)] == [503, 503]
    r = c.post("/api/chat", json=msg)
    assert_429(r, "chat_per_sender")
    assert r.headers["Retry-After"] == "30"
    other = {"sender": "web-security-000002", "message": "hi"}
    assert c.post("/api/chat", json=other).status_code == 503
    # Five requests charged to this IP so far (the 429 too): the next conversation is refused.
    assert_429(c.post("/api/chat", json={**other, "sender": "web-security-3"}), "chat_per_ip")


def test_every_api_route_is_limited_per_ip_but_health(db_url: str) -> None:
    c = app_client(db_url, rate_api_per_ip="3/minute")
    for _ in range(3):
        assert c.get("/api/profile/consent", params={"sender": SENDER}).status_code == 200
    # From a store's page (the widget): the 429 carries CORS headers, so its JSON and
    # Retry-After are readable there.
    r = c.get(
        "/api/profile/consent",
        params={"sender": SENDER},
        headers={"Origin": "https://shop.example"},
    )
    assert_429(r, "api_per_ip")
    assert r.headers["access-control-allow-origin"] == "*"
    assert "retry-after" in r.headers["access-control-expose-headers"].lower()
    assert_429(c.post("/api/agent/login", json={"username": "x", "password": "y"}), "api_per_ip")
    assert c.get("/api/health").status_code == 200
    assert c.get("/").status_code == 200  # the page and static files are not API calls
    off = app_client(db_url, rate_limits=False, rate_api_per_ip="1/minute")
    assert {off.get("/api/agent/me").status_code for _ in range(5)} == {401}


def test_login_brute_force_is_refused_per_username_and_per_ip(db_url: str) -> None:
    c = app_client(db_url, rate_login_failures_per_user="3/15min", rate_login_per_ip="8/minute")
    wrong = {"username": "agent-amy", "password": "not the password"}
    assert [c.post("/api/agent/login", json=wrong).status_code for _ in range(3)] == [401] * 3
    right = {"username": "agent-amy", "password": PASSWORD}
    r = c.post("/api/agent/login", json=right)  # even the right password: locked for now
    assert_429(r, "login_failures_per_user")
    assert int(r.headers["Retry-After"]) == 300
    assert COOKIE not in r.cookies
    ok = c.post("/api/agent/login", json={"username": "admin-ada", "password": PASSWORD})
    assert ok.status_code == 200  # successful sign-ins do not count against the user
    for _ in range(3):
        c.post("/api/agent/login", json={"username": "nobody", "password": "guess guess"})
    assert_429(c.post("/api/agent/login", json=right), "login_per_ip")


def test_roles_anonymous_401_agent_403_admin_200(db_url: str) -> None:
    c = app_client(db_url)
    assert c.get("/api/admin/products").status_code == 401
    assert c.get("/api/admin/index").status_code == 401
    sign_in(c, "agent-amy")
    assert c.get("/api/agent/me").json()["role"] == "agent"
    r = c.get("/api/admin/products")
    assert r.status_code == 403 and "admin role" in r.json()["detail"]
    sign_in(c, "admin-ada")
    me = c.get("/api/agent/me").json()
    assert me["role"] == "admin" and me["csrf_token"]
    assert c.get("/api/admin/products").json()["total"] == 1
    assert c.get("/api/agent/conversations").status_code == 200  # admins are agents too


def test_cross_site_and_tokenless_state_changes_are_refused(db_url: str) -> None:
    c = app_client(db_url)
    csrf = sign_in(c, "admin-ada")
    new = {"sku": "sku-x", "title": "Red scarf", "category": "Accessories", "price": 12.5}
    evil = {"Origin": "https://evil.example"}
    # Cookie alone (what a forged form or fetch from another site could send): refused.
    r = c.post("/api/admin/products", json=new)
    assert r.status_code == 403 and CSRF_HEADER in r.json()["detail"]
    assert (
        c.post("/api/admin/products", json=new, headers={CSRF_HEADER: "0" * 64}).status_code == 403
    )
    # Another origin, even with the right token (e.g. a leaked one): refused.
    r = c.post("/api/admin/products", json=new, headers={**evil, CSRF_HEADER: csrf})
    assert r.status_code == 403 and "evil.example" in r.json()["detail"]
    referer = {"Referer": "https://evil.example/page", CSRF_HEADER: csrf}
    assert c.post("/api/admin/products", json=new, headers=referer).status_code == 403
    null = {"Origin": "null", CSRF_HEADER: csrf}
    assert c.post("/api/agent/logout", headers=null).status_code == 403
    assert (
        c.post(
            "/api/agent/login", json={"username": "x", "password": "y"}, headers=evil
        ).status_code
        == 403
    )
    factory = make_session_factory(db_url)
    with factory() as s:
        assert s.scalar(select(Product).where(Product.sku == "sku-x")) is None
    # Same origin with the token: accepted; reads need no token.
    same = {"Origin": "http://tailor.test", CSRF_HEADER: csrf}
    assert c.post("/api/admin/products", json=new, headers=same).status_code == 201
    assert c.get("/api/admin/products", headers=evil).status_code == 200
    # The token belongs to the session: after logout and a new sign-in the old one fails.
    assert c.post("/api/agent/logout", headers=same).status_code == 200
    sign_in(c, "admin-ada")
    r = c.delete("/api/admin/products/1", headers={CSRF_HEADER: csrf})
    assert r.status_code == 403
    # Configured extra panel origins (a proxy's public name) are accepted.
    c2 = app_client(db_url, panel_origins="https://panel.example")
    csrf2 = sign_in(c2, "admin-ada")
    h = {"Origin": "https://panel.example", CSRF_HEADER: csrf2}
    assert c2.patch("/api/admin/products/1", json={"stock": 3}, headers=h).status_code == 200


def test_admin_catalog_crud_and_import_keep_the_index_in_sync(db_url: str) -> None:
    sync = RecordingSync()
    c = app_client(db_url, sync)
    csrf = sign_in(c, "admin-ada")
    c.headers[CSRF_HEADER] = csrf
    made = c.post(
        "/api/admin/products",
        json={
            "sku": "sku-2",
            "title": "Wool hat",
            "category": "Hats",
            "price": 20,
            "colour": "red",
        },
    )
    assert made.status_code == 201 and made.json()["source"] == "admin"
    pid = made.json()["id"]
    assert sync.wait(10) and sync.calls == 1
    dup = c.post(
        "/api/admin/products", json={"sku": "sku-2", "title": "x", "category": "y", "price": 1}
    )
    assert dup.status_code == 409
    bad = c.post(
        "/api/admin/products", json={"sku": "s3", "title": "x", "category": "y", "price": -1}
    )
    assert bad.status_code == 422
    assert c.get(f"/api/admin/products/{pid}").json()["colour"] == "red"
    assert c.get("/api/admin/products", params={"q": "wool"}).json()["total"] == 1

    upd = c.patch(f"/api/admin/products/{pid}", json={"price": 18.5, "tags": ["winter"]})
    assert (
        upd.status_code == 200 and upd.json()["price"] == 18.5 and upd.json()["tags"] == ["winter"]
    )
    assert sync.wait(10) and sync.calls == 2
    c.patch(f"/api/admin/products/{pid}", json={"price": 18.5})  # no change: no sync
    assert sync.wait(10) and sync.calls == 2
    assert c.patch(f"/api/admin/products/{pid}", json={"title": None}).status_code == 422
    assert c.patch(f"/api/admin/products/{pid}", json={"owner": "me"}).status_code == 422
    assert c.patch("/api/admin/products/999999", json={"stock": 1}).status_code == 404

    csv = "sku,title,category,price,colour\nc-1,Green scarf,Scarves,15,green\nc-2,,Scarves,9,\n"
    r = c.post("/api/admin/import", params={"format": "csv"}, content=csv)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["imported"] == 1 and report["skipped"] == 1 and "title" in report["errors"][0]
    assert sync.wait(10) and sync.calls == 3
    items = [{"id": 7, "title": "Lipstick", "category": "beauty", "price": 9.99, "reviews": []}]
    r = c.post("/api/admin/import", params={"format": "dummyjson"}, content=json.dumps(items))
    assert r.status_code == 200 and r.json()["imported"] == 1
    assert (
        c.post("/api/admin/import", params={"format": "dummyjson"}, content="{").status_code == 422
    )
    assert c.post("/api/admin/import", params={"format": "xml"}, content="<a/>").status_code == 422

    assert c.delete(f"/api/admin/products/{pid}").json() == {"ok": True, "deleted": pid}
    assert c.get(f"/api/admin/products/{pid}").status_code == 404
    assert c.delete(f"/api/admin/products/{pid}").status_code == 404
    assert sync.wait(10) and sync.calls == 5
    assert c.get("/api/admin/index").json()["state"] == "idle"
    factory = make_session_factory(db_url)
    with factory() as s:
        skus = set(s.scalars(select(Product.sku)))
        assert skus == {"sku-1", "c-1", "dummyjson-7"}
        assert s.scalar(select(Agent).where(Agent.username == "admin-ada")) is not None


def test_settings_never_print_secrets_or_passwords() -> None:
    import dataclasses

    from tailor.config import Settings

    s = dataclasses.replace(
        Settings.load(),
        customer_token_secret="s3cret-token-secret",
        database_url="postgresql+psycopg://app:pw-db@db/tailor",
        postgres_url="postgresql+psycopg://app:pw-pg@db/tailor",
        redis_url="redis://:pw-redis@cache/0",
        rabbitmq_url="amqp://app:pw-amqp@mq/%2F",
    )
    shown = repr(s) + str(s)
    for secret in ("s3cret-token-secret", "pw-db", "pw-pg", "pw-redis", "pw-amqp"):
        assert secret not in shown
    assert s.customer_token_secret == "s3cret-token-secret"  # still there to use
