"""Security against the real stack: Rasa's HTTP API needs its token, no secret reaches the
logs, a cross-site POST to the panel is refused by the real web server, the catalog admin
API keeps the real search index in sync, and — for EVERY route of the web app — one
customer cannot read or change another's data. The route table is enumerated from the app,
so a new route without an isolation check here fails the test."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.routing import Mount, Route

from tailor.config import Settings
from tailor.profiles.identity import sign_customer_token
from tailor.store import make_session_factory
from tailor.store.agents import agent_by_username, create_agent
from tailor.store.models import Customer, Event
from tailor.web.app import create_app
from tailor.web.security import COOKIE, CSRF_HEADER, SecuritySettings

from .conftest import E2E_TOKEN_SECRET, Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.slow]

PASSWORD = "correct horse battery"
AGENT, ADMIN = "sec-agent", "sec-admin"


@pytest.fixture(scope="module")
def accounts(deployment: Deployment) -> None:
    factory = make_session_factory(deployment.settings.database_url)
    with factory.begin() as s:
        if agent_by_username(s, AGENT) is None:
            create_agent(s, AGENT, PASSWORD)
            create_agent(s, ADMIN, PASSWORD, role="admin")


@pytest.fixture(scope="module")
def rasa_token_env(deployment: Deployment) -> Iterator[None]:
    previous = os.environ.get("TAILOR_RASA_TOKEN")
    os.environ["TAILOR_RASA_TOKEN"] = deployment.rasa_token
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TAILOR_RASA_TOKEN", None)
        else:
            os.environ["TAILOR_RASA_TOKEN"] = previous


# -- Rasa's API and secrets -----------------------------------------------------------------


def test_rasa_http_api_refuses_requests_without_its_token(deployment: Deployment) -> None:
    base = deployment.settings.rasa_url
    sender = f"sec-rasa-{uuid.uuid4().hex[:8]}"
    deployment.say(sender, "hello")
    url = f"{base}/conversations/{sender}/tracker"
    assert httpx.get(url, timeout=30).status_code == 401
    assert httpx.get(url, params={"token": "wrong-token"}, timeout=30).status_code == 401
    events = [{"event": "bot", "text": "forged"}]
    assert httpx.post(f"{url}/events", json=events, timeout=30).status_code == 401
    assert httpx.get(f"{base}/status", timeout=30).status_code == 401
    ok = httpx.get(url, params={"token": deployment.rasa_token}, timeout=30)
    assert ok.status_code == 200 and "forged" not in ok.text


def test_no_secret_in_logs_and_secret_files_are_private(deployment: Deployment) -> None:
    home = Path(deployment.settings.home)
    logs = sorted((home / "logs").glob("*.log"))
    assert logs, "the deployment writes service logs"
    for path in logs:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert deployment.rasa_token not in text, path
        assert E2E_TOKEN_SECRET not in text, path
    for path in (home / "run").glob("credentials*.yml"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_no_secret_on_any_command_line(deployment: Deployment) -> None:
    """Command lines are public to every local user (`ps`): the Rasa token is not on one."""
    rasa_servers = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode("utf-8", "replace").split("\0")
        except OSError:  # the process ended meanwhile
            continue
        assert not any(deployment.rasa_token in a for a in args), args
        assert not any(E2E_TOKEN_SECRET in a for a in args), args
        rasa_servers += "tailor_rasa_run" in args
    assert rasa_servers >= 1  # the search saw the running Rasa server


# -- CSRF on the real web server --------------------------------------------------------


def test_cross_site_post_to_the_panel_is_refused(
    web_url: str, deployment: Deployment, accounts: None
) -> None:
    sender = f"sec-csrf-{uuid.uuid4().hex[:8]}"
    deployment.say(sender, "I need a jacket")
    with httpx.Client(base_url=web_url, timeout=30) as c:
        r = c.post("/api/agent/login", json={"username": AGENT, "password": PASSWORD})
        assert r.status_code == 200
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        csrf = r.json()["csrf_token"]
        url = f"/api/agent/conversations/{sender}/takeover"
        evil = "https://evil.example"
        # What a page on another site can make a browser send (if the cookie went along).
        assert c.post(url, headers={"Origin": evil}).status_code == 403
        assert c.post(url, headers={"Origin": evil, CSRF_HEADER: csrf}).status_code == 403
        assert c.post(url).status_code == 403  # no token at all
        assert not deployment.tracker(sender)["paused"]
        # A cross-site login attempt (login CSRF) is refused too.
        login = {"username": AGENT, "password": PASSWORD}
        assert c.post("/api/agent/login", json=login, headers={"Origin": evil}).status_code == 403
        # CORS stays as it was for the widget: no credentials, and never for the panel.
        pre = c.options(
            "/api/chat",
            headers={"Origin": evil, "Access-Control-Request-Method": "POST"},
        )
        assert pre.headers.get("access-control-allow-credentials") is None
        # The panel itself, same origin, with its token: accepted.
        own = web_url.rstrip("/")
        ok = c.post(url, headers={"Origin": own, CSRF_HEADER: csrf})
        assert ok.status_code == 200, ok.text
        assert deployment.tracker(sender)["paused"]
        back = f"/api/agent/conversations/{sender}/handback"
        assert c.post(back, headers={"Origin": own, CSRF_HEADER: csrf}).status_code == 200


# -- the admin API keeps the real index in sync -----------------------------------------


def copy_store(settings: Settings, home: Path) -> Settings:
    """A private copy of the deployment's catalog database and index (the running bot's
    catalog stays as other tests expect it)."""
    src_db = settings.database_url.removeprefix("sqlite:///")
    dst_db = home / "tailor.db"
    src, dst = sqlite3.connect(src_db), sqlite3.connect(dst_db)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    shutil.copytree(Path(str(settings.index_dir)), home / "index")
    return settings.replace(home=home, database_url=f"sqlite:///{dst_db}", index_dir=home / "index")


def test_admin_changes_reach_the_search_index(
    deployment: Deployment, accounts: None, tmp_path: Path
) -> None:
    from tailor.retrieval import ProductSearch

    settings = copy_store(deployment.settings, tmp_path)
    with TestClient(create_app(settings, SecuritySettings.load(env={}))) as c:
        r = c.post("/api/agent/login", json={"username": ADMIN, "password": PASSWORD})
        c.headers[CSRF_HEADER] = r.json()["csrf_token"]
        title = "Periwinkle alpaca wool beret with embroidered owls"
        made = c.post(
            "/api/admin/products",
            json={"sku": "sec-beret-1", "title": title, "category": "Hats", "price": 41},
        )
        assert made.status_code == 201, made.text
        pid = made.json()["id"]
        gone = c.get("/api/admin/products", params={"limit": 1}).json()["products"][0]["id"]
        assert c.delete(f"/api/admin/products/{gone}").status_code == 200
        status: dict[str, Any] = {}
        for _ in range(240):  # the first sync loads the embedding model
            status = c.get("/api/admin/index").json()
            if status["state"] in ("idle", "error") and status["runs"] >= 1:
                break
            time.sleep(0.5)
        assert status["state"] == "idle" and status["error"] is None, status
    factory = make_session_factory(settings.database_url)
    search = ProductSearch.open_configured(settings, factory)
    assert search.last_open_report == "loaded"  # the index on disk matches the catalog
    assert search.search(title, 1)[0].product_id == pid
    assert gone not in {h.product_id for h in search.search("anything", len(search))}


# -- isolation: every route, two customers --------------------------------------------------


@dataclass
class World:
    c: TestClient
    dep: Deployment
    a: Customer
    b: Customer
    token_a: str
    token_b: str
    sender_a: str
    sender_b: str

    def events_of(self, sender: str) -> int:
        """The sender's events once the count holds still for 0.3 s (a turn's log is written
        just after its reply: see ``tailor.runtime.after_reply``)."""
        factory = make_session_factory(self.dep.settings.database_url)

        def count() -> int:
            with factory() as s:
                n = s.scalar(
                    select(func.count()).select_from(Event).where(Event.sender_id == sender)
                )
            return int(n or 0)

        last = count()
        while True:
            time.sleep(0.3)
            now = count()
            if now == last:
                return now
            last = now

    def sign_in(self, user: str | None) -> str:
        self.c.cookies.clear()
        self.c.headers.pop(CSRF_HEADER, None)
        if user is None:
            return ""
        r = self.c.post("/api/agent/login", json={"username": user, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return str(r.json()["csrf_token"])


def isolation_app(settings: Settings) -> FastAPI:
    # Demo sign-in signs tokens for any customer by design (it plays the store), so a real
    # store turns it off; isolation is checked with it off (its two routes: see below).
    return create_app(settings.replace(demo_login=False), SecuritySettings.load(env={}))


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """``(method, path)`` of every route, with included routers' routes flattened (FastAPI
    keeps included routers as one entry and resolves them through ``iter_route_contexts``)."""
    out: set[tuple[str, str]] = set()
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, Mount):
            out.add(("MOUNT", str(ctx.path)))
        elif isinstance(route, APIRoute | Route):
            out.update((m, str(ctx.path)) for m in (ctx.methods or set()) - {"HEAD"})
        else:
            out.add((type(route).__name__, str(ctx.path)))
    return out


def public_page(path: str) -> Callable[[World], None]:
    def check(w: World) -> None:
        w.sign_in(None)
        r = w.c.get(path, headers={"X-Customer-Token": w.token_b})
        assert r.status_code == 200
        assert w.a.name not in r.text and w.sender_a not in r.text

    return check


def check_chat(w: World) -> None:
    before = w.events_of(w.sender_a)
    for token in (w.token_b, None):
        r = w.c.post(
            "/api/chat",
            json={"sender": w.sender_a, "message": "show me my orders", "customer_token": token},
        )
        assert r.status_code == 403, r.text
    assert w.events_of(w.sender_a) == before
    ok = w.c.post(
        "/api/chat",
        json={"sender": w.sender_a, "message": "any in blue?", "customer_token": w.token_a},
    )
    assert ok.status_code == 200


def check_history(w: World) -> None:
    for headers in ({"X-Customer-Token": w.token_b}, {}):
        r = w.c.get("/api/history", params={"sender": w.sender_a}, headers=headers)
        assert r.status_code == 403 and "running shoes" not in r.text
    own = w.c.get(
        "/api/history", params={"sender": w.sender_a}, headers={"X-Customer-Token": w.token_a}
    )
    assert own.status_code == 200 and any(
        "running shoes" in (m.get("text") or "") for m in own.json()["messages"]
    )


def check_events(w: World) -> None:
    before = w.events_of(w.sender_a)
    for token in (w.token_b, None):
        body = {"sender": w.sender_a, "kind": "click", "product_id": 1, "customer_token": token}
        assert w.c.post("/api/events", json=body).status_code == 403
    body = {"sender": w.sender_a, "kind": "purchase", "product_id": 1, "customer_token": w.token_b}
    assert w.c.post("/api/events", json=body).status_code == 403
    assert w.events_of(w.sender_a) == before


def check_consent_get(w: World) -> None:
    for headers in ({"X-Customer-Token": w.token_b}, {}):
        r = w.c.get("/api/profile/consent", params={"sender": w.sender_a}, headers=headers)
        assert r.status_code == 403


def check_consent_post(w: World) -> None:
    for token in (w.token_b, None):
        body = {"sender": w.sender_a, "personalisation": False, "customer_token": token}
        assert w.c.post("/api/profile/consent", json=body).status_code == 403
    mine = w.c.get(
        "/api/profile/consent",
        params={"sender": w.sender_a},
        headers={"X-Customer-Token": w.token_a},
    ).json()
    assert mine == {"identity": "customer", "personalisation": True}


def check_updates(w: World) -> None:
    for headers in ({"X-Customer-Token": w.token_b}, {}):
        r = w.c.get("/api/updates", params={"sender": w.sender_a}, headers=headers)
        assert r.status_code == 403
    own = w.c.get(
        "/api/updates", params={"sender": w.sender_a}, headers={"X-Customer-Token": w.token_a}
    )
    assert own.status_code == 200


def check_privacy_export(w: World) -> None:
    for headers in ({"X-Customer-Token": w.token_b}, {}):
        r = w.c.get("/api/privacy/export", params={"sender": w.sender_a}, headers=headers)
        assert r.status_code in (200, 403), r.text
        assert w.a.name not in r.text and w.a.external_id not in r.text
        assert "running shoes" not in r.text  # A's messages


def check_privacy_forget(w: World) -> None:
    """Nobody but A can erase A's data. (B's own token would erase B's data, which is B's
    right; it is not sent here so the other checks keep B's conversation.)"""
    before = w.events_of(w.sender_a)
    forged = sign_customer_token(w.a.external_id, "not-the-store-secret-0123456789abcdef", 600)
    for token in (None, forged):
        body = {"sender": w.sender_a, "customer_token": token, "confirm": True}
        r = w.c.post("/api/privacy/forget", json=body)
        assert r.status_code in (200, 403, 404), r.text  # what it may erase is checked next
    assert w.events_of(w.sender_a) == before
    factory = make_session_factory(w.dep.settings.database_url)
    with factory() as s:
        assert s.get(Customer, w.a.id) is not None


def check_login(w: World) -> None:
    w.sign_in(None)
    for user in (AGENT, ADMIN, w.b.external_id):
        r = w.c.post("/api/agent/login", json={"username": user, "password": w.token_b[:64]})
        assert r.status_code == 401 and COOKIE not in r.cookies


def panel_route(
    method: str, path: str, body: Any = None, admin: bool = False
) -> Callable[[World], None]:
    """Anonymous (even with a customer's token): 401. For admin routes, an agent: 403."""

    def check(w: World) -> None:
        url = path.format(sender=w.sender_a, product_id=1)
        w.sign_in(None)
        headers = {"X-Customer-Token": w.token_b, "Content-Type": "application/json"}
        assert w.c.request(method, url, json=body, headers=headers).status_code == 401, url
        if admin:
            csrf = w.sign_in(AGENT)
            r = w.c.request(method, url, json=body, headers={CSRF_HEADER: csrf})
            assert r.status_code == 403, (url, r.text)
            w.sign_in(None)
        assert not w.dep.tracker(w.sender_a).get("paused")

    return check


def check_dashboard_page(w: World) -> None:
    """The marketing dashboard page: anonymous (even with a customer's token) is sent to the
    panel's sign-in, an agent gets 403, and only an admin gets the page."""
    w.sign_in(None)
    r = w.c.get("/agent/dashboard", headers={"X-Customer-Token": w.token_b}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/agent", r.status_code
    w.sign_in(AGENT)
    r = w.c.get("/agent/dashboard", follow_redirects=False)
    assert r.status_code == 403 and "for admins" in r.text
    w.sign_in(ADMIN)
    r = w.c.get("/agent/dashboard", follow_redirects=False)
    assert r.status_code == 200 and "dashboard" in r.text.lower()
    w.sign_in(None)


CONV = "/api/agent/conversations/{sender}"
PRODUCT = "/api/admin/products/{product_id}"
NEW = {"sku": "sec-x", "title": "x", "category": "y", "price": 1}
CHECKS: dict[tuple[str, str], Callable[[World], None]] = {
    ("GET", "/"): public_page("/"),
    ("GET", "/demo-store"): public_page("/demo-store"),
    ("GET", "/agent"): public_page("/agent"),
    ("MOUNT", "/static"): public_page("/static/chat.js"),
    ("GET", "/openapi.json"): public_page("/openapi.json"),
    ("GET", "/docs"): public_page("/docs"),
    ("GET", "/docs/oauth2-redirect"): public_page("/docs/oauth2-redirect"),
    ("GET", "/redoc"): public_page("/redoc"),
    ("GET", "/api/health"): public_page("/api/health"),
    ("POST", "/api/chat"): check_chat,
    ("GET", "/api/history"): check_history,
    ("POST", "/api/events"): check_events,
    ("GET", "/api/profile/consent"): check_consent_get,
    ("POST", "/api/profile/consent"): check_consent_post,
    ("GET", "/api/updates"): check_updates,
    ("POST", "/api/agent/login"): check_login,
    ("GET", "/api/privacy/export"): check_privacy_export,
    ("POST", "/api/privacy/forget"): check_privacy_forget,
    ("POST", "/api/agent/logout"): panel_route("POST", "/api/agent/logout"),
    ("GET", "/api/agent/me"): panel_route("GET", "/api/agent/me"),
    ("GET", "/api/agent/conversations"): panel_route("GET", "/api/agent/conversations"),
    ("GET", "/api/agent/conversations/{sender}"): panel_route("GET", CONV),
    ("POST", "/api/agent/conversations/{sender}/takeover"): panel_route("POST", CONV + "/takeover"),
    ("POST", "/api/agent/conversations/{sender}/message"): panel_route(
        "POST", CONV + "/message", {"text": "hi"}
    ),
    ("POST", "/api/agent/conversations/{sender}/card"): panel_route(
        "POST", CONV + "/card", {"product_id": 1}
    ),
    ("POST", "/api/agent/conversations/{sender}/handback"): panel_route("POST", CONV + "/handback"),
    ("GET", "/api/admin/products"): panel_route("GET", "/api/admin/products", admin=True),
    ("POST", "/api/admin/products"): panel_route("POST", "/api/admin/products", NEW, admin=True),
    ("GET", "/api/admin/products/{product_id}"): panel_route("GET", PRODUCT, admin=True),
    ("PATCH", "/api/admin/products/{product_id}"): panel_route(
        "PATCH", PRODUCT, {"price": 0}, admin=True
    ),
    ("DELETE", "/api/admin/products/{product_id}"): panel_route("DELETE", PRODUCT, admin=True),
    ("POST", "/api/admin/import"): panel_route("POST", "/api/admin/import?format=csv", admin=True),
    ("GET", "/api/admin/index"): panel_route("GET", "/api/admin/index", admin=True),
    ("GET", "/agent/dashboard"): check_dashboard_page,
    ("GET", "/api/admin/dashboard"): panel_route("GET", "/api/admin/dashboard", admin=True),
}


@pytest.fixture(scope="module")
def world(deployment: Deployment, accounts: None, rasa_token_env: None) -> Iterator[World]:
    factory = make_session_factory(deployment.settings.database_url)
    with factory() as s:
        a, b = s.scalars(select(Customer).order_by(Customer.id).limit(2)).all()
        s.expunge_all()
    token_a = sign_customer_token(a.external_id, E2E_TOKEN_SECRET, 3600)
    token_b = sign_customer_token(b.external_id, E2E_TOKEN_SECRET, 3600)
    tag = uuid.uuid4().hex[:8]
    with TestClient(isolation_app(deployment.settings)) as c:
        w = World(c, deployment, a, b, token_a, token_b, f"web-sec-a-{tag}", f"web-sec-b-{tag}")
        for sender, token in ((w.sender_a, token_a), (w.sender_b, token_b)):
            r = c.post(
                "/api/chat",
                json={"sender": sender, "message": "I need running shoes", "customer_token": token},
            )
            assert r.status_code == 200, r.text
        yield w


def test_every_route_has_an_isolation_check(deployment: Deployment) -> None:
    routes = app_routes(isolation_app(deployment.settings))
    missing = sorted(routes - set(CHECKS))
    assert not missing, f"routes without an isolation check in {__file__}: {missing}"
    assert not sorted(set(CHECKS) - routes), "checks for routes that no longer exist"
    demo = app_routes(create_app(deployment.settings.replace(demo_login=True)))
    assert demo - routes == {("GET", "/api/demo/customers"), ("POST", "/api/demo/token")}


@pytest.mark.parametrize("route", sorted(CHECKS), ids=lambda r: f"{r[0]} {r[1]}")
def test_one_customer_cannot_reach_anothers_data(route: tuple[str, str], world: World) -> None:
    CHECKS[route](world)
    # Whatever was tried, B's own conversation still works for B, and A's for A.
    r = world.c.get(
        "/api/history",
        params={"sender": world.sender_b},
        headers={"X-Customer-Token": world.token_b},
    )
    assert r.status_code == 200 and r.json()["messages"]
