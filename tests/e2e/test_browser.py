"""The chat page in headless Chromium (Debian's, driven by Playwright) against the real stack.

Screenshots are kept in test-output/screenshots/. Requests are observed, never replaced.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tailor.profiles.identity import verify_customer_token
from tailor.store import make_session_factory
from tailor.store.events import events_for
from tailor.store.profiles import customer_by_external_id, profile_for
from tests.e2e.conftest import SHOTS, Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.browser, pytest.mark.slow]


def test_shopper_chats_sees_cards_and_keeps_history_after_reload(
    browser: object, web_url: str
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1000, "height": 900})  # type: ignore[attr-defined]
    page.goto(web_url)
    page.wait_for_selector(".msg.bot .bubble")
    page.fill("#input", "I need running shoes under $80")
    page.press("#input", "Enter")
    page.wait_for_selector(".card", timeout=30_000)
    cards = page.locator(".card")
    assert 3 <= cards.count() <= 5
    first_title = cards.nth(0).locator(".title").inner_text()
    assert cards.nth(0).locator(".reason").inner_text().strip()
    page.screenshot(path=str(SHOTS / "01-cards.png"), full_page=True)

    page.locator(".quick .chip", has_text="Cheaper").last.click()
    page.wait_for_function(
        "document.querySelectorAll('.msg.bot .cards').length >= 2", timeout=30_000
    )
    page.screenshot(path=str(SHOTS / "02-cheaper.png"), full_page=True)

    page.reload()
    page.wait_for_selector(".card", timeout=30_000)
    body = page.inner_text("#log")
    assert "I need running shoes under $80" in body
    assert first_title in body
    assert page.locator(".msg.bot .cards").count() >= 2
    page.screenshot(path=str(SHOTS / "03-after-reload.png"), full_page=True)

    # Text from the catalog and the shopper is shown as text, never parsed as HTML.
    page.fill("#input", "<img src=x onerror=alert(1)> tell me a joke")
    page.press("#input", "Enter")
    page.wait_for_function("document.querySelectorAll('.msg.user').length >= 3", timeout=30_000)
    assert page.locator(".msg.user img").count() == 0
    page.close()


def test_phone_sized_screen(browser: object, web_url: str) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 800})  # type: ignore[attr-defined]
    page.goto(web_url)
    page.wait_for_selector("#input")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.screenshot(path=str(SHOTS / "04-phone.png"))
    page.close()


def test_signed_in_shopper_sends_token_and_context_and_card_clicks_are_recorded(
    browser: object, web_url: str, deployment: Deployment
) -> None:
    settings = deployment.settings
    assert settings.customer_token_secret, (
        "the e2e deployment needs a customer_token_secret (tests/e2e/conftest.py) for demo sign-in"
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1000, "height": 900})  # type: ignore[attr-defined]
    chat_requests: list[Any] = []  # observed, not replaced

    def observe(request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/api/chat"):
            chat_requests.append(request)

    page.on("request", observe)
    page.goto(web_url)
    page.wait_for_selector("#shop-as-wrap:not([hidden])")
    options = page.locator("#shop-as option")
    assert options.nth(0).inner_text() == "Guest" and options.nth(0).get_attribute("value") == ""
    assert 2 <= options.count() <= 9
    external_id = str(options.nth(2).get_attribute("value"))
    guest_sender = page.evaluate("localStorage.getItem('tailor.sender')")

    # Choosing a customer signs in and starts a new conversation.
    page.select_option("#shop-as", external_id)
    page.wait_for_function(
        "guest => sessionStorage.getItem('tailor.customer') !== null"
        " && localStorage.getItem('tailor.sender') !== guest",
        arg=guest_sender,
    )
    signed_in = json.loads(page.evaluate("sessionStorage.getItem('tailor.customer')"))
    sender = page.evaluate("localStorage.getItem('tailor.sender')")
    assert signed_in["external_id"] == external_id
    token = signed_in["token"]
    claims = verify_customer_token(token, settings.customer_token_secret)
    assert claims.customer_id == external_id
    assert page.locator(".msg.user").count() == 0
    page.screenshot(path=str(SHOTS / "05-shop-as.png"))

    page.fill("#input", "I need running shoes under $80")
    page.press("#input", "Enter")
    page.wait_for_selector(".card", timeout=30_000)
    sent = chat_requests[-1].post_data_json
    assert sent["sender"] == sender and sent["customer_token"] == token
    context = sent["context"]
    assert context["device"] == "desktop" and 0 <= context["local_hour"] <= 23
    assert isinstance(context.get("tz", "UTC"), str)

    # The personalisation checkbox speaks for the signed-in customer's profile.
    with page.expect_response(
        lambda r: r.url.endswith("/api/profile/consent") and r.request.method == "POST"
    ) as consent:
        page.uncheck("#personalise")
    assert consent.value.ok and consent.value.json()["identity"] == "customer"

    # Clicking a card's title records a click; its Details button records a view.
    card = page.locator(".card").nth(0)
    product_id = int(str(card.get_attribute("data-product-id")))
    with page.expect_response(lambda r: r.url.endswith("/api/events")) as clicked:
        card.locator(".title-link").click()
    assert clicked.value.ok
    assert card.locator(".peek").is_visible()
    page.screenshot(path=str(SHOTS / "06-card-click.png"), full_page=True)
    with page.expect_response(lambda r: r.url.endswith("/api/events")) as viewed:
        card.locator(".chip", has_text="Details").click()
    assert viewed.value.ok
    page.wait_for_function("document.querySelectorAll('.msg.user').length >= 2")
    page.wait_for_selector("#typing[hidden]", state="attached", timeout=30_000)

    factory = make_session_factory(settings.database_url)
    with factory() as session:
        customer = customer_by_external_id(session, external_id)
        assert customer is not None
        clicks = events_for(session, sender, "click")
        views = events_for(session, sender, "view")
        profile = profile_for(session, sender, customer.id, create=False)
    factory.kw["bind"].dispose()
    assert [(e.product_id, e.customer_id) for e in clicks] == [(product_id, customer.id)]
    assert [(e.product_id, e.customer_id) for e in views] == [(product_id, customer.id)]
    assert profile is not None and profile.personalisation is False

    with page.expect_response(lambda r: r.url.endswith("/api/profile/consent")):
        page.check("#personalise")
    page.close()
