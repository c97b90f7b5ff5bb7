"""The chat page in headless Chromium (Debian's, driven by Playwright) against the real stack.

Screenshots are kept in test-output/screenshots/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tailor.config import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.browser, pytest.mark.slow]

SHOTS = PROJECT_ROOT / "test-output" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: `make install` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


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
