"""The agent's assist panel in headless Chromium against the real stack (issue 4).

An agent signs in, watches a conversation a shopper starts on the chat page in a second
browser context, takes over, sends a message and a product card that appear in the shopper's
page without a reload, hands back, and the bot answers the shopper's next message.
Screenshots go to test-output/screenshots/; the panel's is copied to docs/screenshots/.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from tailor.config import PROJECT_ROOT
from tailor.store import make_session_factory
from tailor.store.agents import create_agent
from tests.e2e.conftest import SHOTS, Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.browser, pytest.mark.slow]

DOCS_SHOT = PROJECT_ROOT / "docs" / "screenshots" / "agent-panel.png"
AGENT, PASSWORD = "sam", "e2e-agent-password-123"
BRIDGE = "/static/agent-bridge.js"


@pytest.fixture(scope="module")
def panel_url(deployment: Deployment, web_url: str) -> str:
    """The running web app (shopper page and panel), with one agent account."""
    factory = make_session_factory(deployment.settings.database_url)
    with factory.begin() as session:
        create_agent(session, AGENT, PASSWORD)
    factory.kw["bind"].dispose()
    return web_url.rstrip("/")


def _log_text(page: Any) -> str:
    return str(page.inner_text("#log"))


def test_agent_takes_over_sends_a_card_and_hands_back(browser: Any, panel_url: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    agent_ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    shop_ctx = browser.new_context(viewport={"width": 900, "height": 900})
    panel = agent_ctx.new_page()
    shop = shop_ctx.new_page()

    # Without a session the panel shows only the sign-in form and its API answers 401.
    panel.goto(f"{panel_url}/agent")
    panel.wait_for_selector("#login:not([hidden])")
    assert panel.locator("#panel").is_hidden()
    assert panel.request.get(f"{panel_url}/api/agent/conversations").status == 401
    panel.fill("#username", AGENT)
    panel.fill("#password", "not the password")
    panel.click("#login-form button[type=submit]")
    panel.wait_for_selector("#login-error:not([hidden])")
    panel.fill("#password", PASSWORD)
    panel.click("#login-form button[type=submit]")
    panel.wait_for_selector("#panel:not([hidden])")
    cookie = next(c for c in agent_ctx.cookies() if c["name"] == "tailor_agent")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # The shopper signs in as a demo customer and chats; the page carries the agent bridge.
    shop.goto(f"{panel_url}/")
    assert shop.locator(f"script[src='{BRIDGE}']").count() == 1
    shop.wait_for_selector("#shop-as-wrap:not([hidden])")
    external_id = str(shop.locator("#shop-as option").nth(1).get_attribute("value"))
    old = shop.evaluate("localStorage.getItem('tailor.sender')")
    shop.select_option("#shop-as", external_id)
    shop.wait_for_function("old => localStorage.getItem('tailor.sender') !== old", arg=old)
    sender = str(shop.evaluate("localStorage.getItem('tailor.sender')"))
    customer = shop.locator("#shop-as option:checked").inner_text().split(" · ")[0]
    shop.fill("#input", "I need running shoes under $80")
    shop.press("#input", "Enter")
    shop.wait_for_selector(".card", timeout=60_000)
    shop.fill("#input", "can I talk to a person?")
    shop.press("#input", "Enter")
    shop.wait_for_function("document.querySelectorAll('.msg.bot').length >= 3", timeout=30_000)

    # The panel lists the conversation, flagged, under the customer's name.
    row = panel.locator(f".convo[data-sender='{sender}']")
    row.wait_for(timeout=15_000)
    panel.wait_for_selector(f".convo.flagged[data-sender='{sender}']", timeout=15_000)
    assert customer in row.inner_text()
    row.locator("button").click()
    panel.wait_for_function(
        "document.querySelector('#transcript').innerText.includes('can I talk to a person?')",
        timeout=15_000,
    )
    assert customer in panel.inner_text("#profile")
    assert panel.locator("#profile .tag.seg").count() >= 1
    assert panel.locator("#sparkline svg circle").count() >= 2
    assert "running shoes" in panel.inner_text("#criteria-text").lower()
    panel.wait_for_selector(".suggestion .reason", timeout=180_000)  # recommender loads once
    assert panel.locator(".suggestion").count() >= 1

    # Take over: the bot stops, the shopper is told a person has joined.
    panel.click("#takeover")
    panel.wait_for_selector("#handback:not([hidden])")
    shop.wait_for_function(
        "document.querySelector('#log').innerText.includes('A person has joined')",
        timeout=15_000,
    )
    bot_rows = shop.locator(".msg.bot").count()
    shop.fill("#input", "do you have any in blue?")
    shop.press("#input", "Enter")
    panel.wait_for_function(
        "document.querySelector('#transcript').innerText.includes('do you have any in blue?')",
        timeout=15_000,
    )
    shop.wait_for_selector("#typing[hidden]", state="attached", timeout=30_000)
    assert shop.locator(".msg.bot").count() == bot_rows  # the bot stayed silent

    # The agent writes and sends a suggested product; both appear without a reload.
    panel.fill("#reply", "Hi, I'm Sam. Here's one I like in your size.")
    panel.press("#reply", "Enter")
    shop.wait_for_function(
        "document.querySelector('#log').innerText.includes(\"Hi, I'm Sam.\")", timeout=15_000
    )
    first = panel.locator(".suggestion").nth(0)
    title = first.locator(".title").inner_text()
    product_id = first.get_attribute("data-product-id")
    same = shop.locator(f".msg.bot .card[data-product-id='{product_id}']")
    before = same.count()  # the bot may have shown the same product earlier
    first.locator(".send-card").click()
    shop.wait_for_function(
        "document.querySelector('#log').innerText.includes('sam sent you a product:')",
        timeout=15_000,
    )
    shop.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length > n",
        arg=[f".msg.bot .card[data-product-id='{product_id}']", before],
    )
    last_bot = shop.locator(".msg.bot").last
    assert title in last_bot.inner_text()
    assert last_bot.locator(".reason").inner_text().strip()
    panel.wait_for_function(
        "t => document.querySelector('#transcript').innerText.includes(t)", arg=title
    )
    panel.screenshot(path=str(SHOTS / "20-agent-panel.png"))
    shop.screenshot(path=str(SHOTS / "21-shopper-sees-agent-card.png"), full_page=True)
    DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHOTS / "20-agent-panel.png", DOCS_SHOT)

    # Hand back: the shopper is told, and the bot answers the next message again.
    panel.click("#handback")
    panel.wait_for_selector("#takeover:not([hidden])")
    shop.wait_for_function(
        "document.querySelector('#log').innerText.includes('handed you back')", timeout=15_000
    )
    cards_before = shop.locator(".msg.bot .cards").count()
    shop.fill("#input", "show me running shoes under $60")
    shop.press("#input", "Enter")
    shop.wait_for_function(
        f"document.querySelectorAll('.msg.bot .cards').length > {cards_before}", timeout=60_000
    )
    shop.screenshot(path=str(SHOTS / "22-bot-answers-again.png"), full_page=True)

    # History after a reload shows the agent's card too, and signing out ends the session.
    shop.reload()
    shop.wait_for_selector(f".card[data-product-id='{product_id}']", timeout=30_000)
    panel.click("#logout")
    panel.wait_for_selector("#login:not([hidden])")
    assert panel.request.get(f"{panel_url}/api/agent/conversations").status == 401
    agent_ctx.close()
    shop_ctx.close()
