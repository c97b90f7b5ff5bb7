"""The marketing dashboard in headless Chromium (issue 8): only the web app runs (the
dashboard never calls Rasa), on a SQLite database seeded through ``tailor.store``.

An admin signs in on the assist panel, follows its "Dashboard" link, and sees the seeded
numbers drawn: totals, one line per segment and per experiment arm, the sentiment trend,
bars per trigger rule and the top query with no good results. An agent gets no link and a
403 page. The screenshot goes to test-output/screenshots/ and docs/screenshots/dashboard.png.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tailor.analytics.dashboard import build_dashboard, time_range
from tailor.config import PROJECT_ROOT, Settings
from tailor.runtime import processes as P
from tailor.store import make_session_factory
from tailor.store.agents import create_agent
from tests.e2e.conftest import SHOTS
from tests.integration.test_dashboard import seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS_SHOT = PROJECT_ROOT / "docs" / "screenshots" / "dashboard.png"
PASSWORD = "dashboard-browser-password"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """The web app alone on a seeded database, and the dashboard's numbers for 30 days."""
    home = tmp_path_factory.mktemp("dashboard-web")
    settings = Settings.load(
        home=home,
        web_port=P.free_port(),
        rasa_port=P.free_port(),  # nothing listens there: the dashboard never asks Rasa
        customer_token_secret="browser-test-customer-token-secret-0123456789",
    )
    factory = make_session_factory(settings.database_url)
    now = datetime.now(UTC)
    # Everything seeded, reactions included, lies within the last 30 days and before now.
    seed(factory, n_events=12000, now=now - timedelta(days=4), react=0.12)
    with factory.begin() as s:
        create_agent(s, "ada", PASSWORD, role="admin")
        create_agent(s, "amy", PASSWORD)
    with factory() as s:
        want = build_dashboard(
            s,
            time_range(now - timedelta(days=30), now + timedelta(minutes=5)),
            timedelta(hours=settings.experiment_attribution_hours),
            settings.dashboard_low_relevance,
        ).to_json()
    factory.kw["bind"].dispose()
    web = P.web_server(settings, "unused-rasa-token")
    try:
        web.start()
        web.wait_ready(60)
        yield f"http://{settings.host}:{settings.web_port}", want
    finally:
        web.stop()


def _sign_in(page: Any, url: str, user: str) -> None:
    page.goto(f"{url}/agent")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#panel:not([hidden])")


def test_admin_sees_the_seeded_numbers_drawn(browser: Any, site: tuple[str, Any]) -> None:
    url, want = site
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Without a session the dashboard sends the visitor to the sign-in.
    page.goto(f"{url}/agent/dashboard")
    page.wait_for_selector("#login:not([hidden])")
    assert page.url.rstrip("/").endswith("/agent")

    _sign_in(page, url, "ada")
    page.click("#dashboard-link")
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
    assert page.url.endswith("/agent/dashboard")

    impressions = sum(p["impressions"] for x in want["segments"]["series"] for p in x["points"])
    assert impressions > 500
    kpi = page.locator(".kpi").first
    assert kpi.locator(".kpi-name").inner_text().lower() == "suggestions shown"
    assert kpi.locator(".kpi-value").inner_text() == f"{impressions:,}"

    # One line per segment, named in the legend; the data table has one row per day.
    seg = page.locator("#chart-segments")
    segments = [x["segment"] for x in want["segments"]["series"]]
    assert seg.locator("svg[role=img] g.series").count() == len(segments)
    assert seg.locator("svg title").first.text_content() == "Click-through rate by rfm segment"
    legend = seg.locator(".legend li").all_inner_texts()
    assert legend == [s.replace("_", " ") for s in segments] and "champions" in legend
    assert seg.locator("details.numbers tbody tr").count() == len(want["buckets"])

    # Experiment arms: one line per arm, in both charts.
    arms = [a["arm"] for a in want["experiments"]["series"]]
    assert len(arms) == 3
    for chart in ("#chart-arms-ctr", "#chart-arms-conv"):
        assert page.locator(f"{chart} g.series").count() == 3
    assert page.locator("#experiment").input_value() == want["experiments"]["selected"]

    # Sentiment: a point per day with messages.
    days_with_messages = sum(1 for p in want["sentiment"] if p["messages"])
    assert page.locator("#chart-sentiment circle.dot").count() == days_with_messages

    # Triggers: five bars per rule, the firing count on each rule's first bar.
    rules = want["triggers"]
    assert page.locator("#chart-triggers rect.bar").count() == 5 * len(rules)
    first = page.locator(f"#chart-triggers rect[data-group='{rules[0]['rule']}']").first
    assert str(first.locator("title").text_content()).endswith(f": {rules[0]['fired']}")

    # The most frequent query with no good results heads the table.
    top = want["queries"]["rows"][0]
    row = page.locator("#queries tbody tr").first
    assert row.locator(".qtext").inner_text() == top["query"]
    cells = row.locator("td.num").all_inner_texts()
    assert cells == [str(top["no_results"]), str(top["weak"])]

    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, DOCS_SHOT)

    # Another segment kind redraws the segment chart with its segments.
    page.select_option("#segment-kind", "demographic")
    page.wait_for_selector("body[data-loaded=true]")
    assert set(page.locator("#chart-segments .legend li").all_inner_texts()) == {
        "age-0",
        "age-1",
        "guest",
    }
    assert not errors, errors
    ctx.close()


def test_an_agent_gets_no_dashboard(browser: Any, site: tuple[str, Any]) -> None:
    url, _ = site
    ctx = browser.new_context()
    page = ctx.new_page()
    _sign_in(page, url, "amy")
    assert page.locator("#dashboard-link").is_hidden()
    resp = page.goto(f"{url}/agent/dashboard")
    assert resp is not None and resp.status == 403
    assert "for admins" in page.inner_text("body")
    assert page.request.get(f"{url}/api/admin/dashboard").status == 403
    ctx.close()


def test_screenshot_is_in_the_docs() -> None:
    assert Path(DOCS_SHOT).stat().st_size > 20_000
