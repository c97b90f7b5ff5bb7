"""The dashboard's page and API in the real app on a seeded SQLite database (Rasa is a dead
port; these routes never call it): admin only, the numbers of ``build_dashboard``, clear
422s for bad ranges and names."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tailor.analytics.dashboard import build_dashboard, time_range
from tailor.config import Settings
from tailor.store import make_session_factory
from tailor.store.agents import create_agent
from tailor.web.app import create_app
from tailor.web.security import SecuritySettings
from tests.integration.test_dashboard import NOW, SINCE, seed

PASSWORD = "correct horse battery"
SECRET = "unit-test-customer-token-secret-0123456789"
RANGE = {"since": SINCE.isoformat(), "until": NOW.isoformat()}


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('dash-api') / 'tailor.db'}"
    factory = make_session_factory(url)
    seed(factory, n_events=600)
    with factory.begin() as s:
        create_agent(s, "agent-amy", PASSWORD)
        create_agent(s, "admin-ada", PASSWORD, role="admin")
    factory.kw["bind"].dispose()
    return url


def client(db_url: str, **settings: object) -> TestClient:
    config = Settings.load(
        env={},
        home=Path(db_url.removeprefix("sqlite:///")).parent,
        database_url=db_url,
        rasa_url="http://127.0.0.1:9",
        customer_token_secret=SECRET,
        **settings,
    )
    app = create_app(config, SecuritySettings.load(env={}))
    return TestClient(app, base_url="http://tailor.test", follow_redirects=False)


def sign_in(c: TestClient, user: str) -> None:
    c.cookies.clear()
    r = c.post("/api/agent/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text


def test_anonymous_401_agent_403_admin_200(db_url: str) -> None:
    c = client(db_url)
    r = c.get("/api/admin/dashboard", params=RANGE)
    assert r.status_code == 401
    page = c.get("/agent/dashboard")
    assert page.status_code == 303 and page.headers["location"] == "/agent"
    sign_in(c, "agent-amy")
    r = c.get("/api/admin/dashboard", params=RANGE)
    assert r.status_code == 403 and "admin role" in r.json()["detail"]
    page = c.get("/agent/dashboard")
    assert page.status_code == 403 and "for admins" in page.text
    sign_in(c, "admin-ada")
    page = c.get("/agent/dashboard")
    assert page.status_code == 200 and "/static/agent/dashboard.js" in page.text
    assert c.get("/static/agent/dashboard.js").status_code == 200
    assert c.get("/api/admin/dashboard", params=RANGE).status_code == 200


def test_admin_gets_the_numbers_of_build_dashboard(db_url: str) -> None:
    c = client(db_url, experiment_attribution_hours=24.0, dashboard_low_relevance=0.5)
    sign_in(c, "admin-ada")
    body = c.get("/api/admin/dashboard", params={**RANGE, "segment_kind": "demographic"}).json()
    factory = make_session_factory(db_url)
    with factory() as s:
        want = build_dashboard(
            s, time_range(SINCE, NOW), timedelta(hours=24), 0.5, segment_kind="demographic"
        ).to_json()
    factory.kw["bind"].dispose()
    assert body == want
    assert body["experiments"]["window_hours"] == 24 and body["queries"]["threshold"] == 0.5
    assert sum(p["impressions"] for x in body["segments"]["series"] for p in x["points"]) > 50
    weekly = c.get("/api/admin/dashboard", params={**RANGE, "bucket": "week"}).json()
    assert weekly["bucket"] == "week" and len(weekly["buckets"]) == 4


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": NOW.isoformat(), "until": SINCE.isoformat()}, "must be before"),
        ({**RANGE, "segment_kind": "colour"}, "valid kinds are ['demographic', 'rfm']"),
        ({**RANGE, "experiment": "nope"}, "experiments seen: ['exp-a', 'exp-b']"),
        ({"since": (NOW - timedelta(days=1000)).isoformat()}, "at most 731 days"),
        ({**RANGE, "bucket": "month"}, "bucket"),
        ({**RANGE, "queries": 0}, "queries"),
        ({"since": "yesterday"}, "since"),
    ],
)
def test_bad_requests_are_422_saying_why(db_url: str, params: dict[str, str], message: str) -> None:
    c = client(db_url)
    sign_in(c, "admin-ada")
    r = c.get("/api/admin/dashboard", params=params)
    assert r.status_code == 422
    assert message in r.text
