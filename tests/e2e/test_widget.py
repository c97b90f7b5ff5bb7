"""The embeddable widget on a store's page, in headless Chromium against the real stack.

The store page is ``/demo-store`` (one ``<script>`` tag) or, for the cross-origin case, a
page Playwright serves under another origin; every request to Tailor is real and observed,
never replaced. Screenshots go to test-output/screenshots/, the two final ones also to
docs/screenshots/.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tailor.config import PROJECT_ROOT
from tailor.store import make_session_factory
from tailor.store.events import events_for
from tests.e2e.conftest import SHOTS, Deployment, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.browser, pytest.mark.slow]

DOCS_SHOTS = PROJECT_ROOT / "docs" / "screenshots"
BOT_TIMEOUT = 45_000
#: The widget's input and log (Playwright's CSS selectors pierce the open shadow root).
INPUT = "#tailor-widget #tw-input"
LOG = "#tailor-widget .log"


def shot(page: Any, name: str, docs_name: str | None = None) -> None:
    path = SHOTS / name
    page.screenshot(path=str(path))
    if docs_name:
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SHOTS / docs_name)


def bot_rows(page: Any) -> int:
    return int(page.locator(f"{LOG} .msg.bot").count())


def ask(page: Any, text: str) -> None:
    """Type a message, send it with Enter and wait until the bot has answered."""
    before = bot_rows(page)
    page.fill(INPUT, text)
    page.press(INPUT, "Enter")
    wait_for_answer(page, before)


def click_and_wait(page: Any, button: Any) -> None:
    """Click a button that sends a message and wait until the bot has answered."""
    before = bot_rows(page)
    button.click()
    wait_for_answer(page, before)


def wait_for_answer(page: Any, before: int) -> None:
    page.wait_for_function(
        """n => {
          const r = document.querySelector('#tailor-widget').shadowRoot;
          return r.querySelectorAll('.msg.bot').length > n && !r.querySelector('.msg.pending');
        }""",
        arg=before,
        timeout=BOT_TIMEOUT,
    )


def open_widget(page: Any) -> None:
    page.wait_for_selector("#tailor-widget .launcher")
    if page.locator("#tailor-widget .panel").is_hidden():
        page.click("#tailor-widget .launcher")
    page.wait_for_selector(f"{LOG} .msg.bot .bubble")


def card_ids(page: Any) -> list[int]:
    """Product ids of the latest list of cards."""
    grid = page.locator(f"{LOG} .cards").last
    return [
        int(str(x))
        for x in grid.locator(".card").evaluate_all("cs => cs.map(c => c.dataset.productId)")
    ]


def test_shopper_asks_dislikes_refines_and_keeps_the_conversation_after_reload(
    browser: Any, web_url: str
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(web_url + "demo-store")
    open_widget(page)
    # The store's aggressive CSS (yellow-on-red buttons, upper-case text) does not reach in.
    colour = page.eval_on_selector("#tailor-widget .launcher", "b => getComputedStyle(b).color")
    assert colour == "rgb(255, 255, 255)"

    ask(page, "I need running shoes under $80")
    cards = page.locator(f"{LOG} .cards").last.locator(".card")
    assert 3 <= cards.count() <= 5
    first = cards.nth(0)
    first_title = first.locator(".title").inner_text()
    assert first.locator(".reason").inner_text().strip()
    assert first.locator(".price").inner_text().strip()
    assert first.locator(".rating").inner_text().strip()
    for i in range(cards.count()):  # an image, or the placeholder when there is none
        thumb = cards.nth(i).locator(".thumb")
        assert thumb.locator("img").count() == 1 or "placeholder" in str(
            thumb.get_attribute("class")
        )
    for label in ("More like this", "I like this", "Not for me", "Add to cart"):  # 👍 👎 as icons
        assert first.get_by_role("button", name=label).count() == 1
    shot(page, "w01-cards.png")

    # 👎 on the second card tells the bot, in words it understands, which one.
    disliked = card_ids(page)[1]
    click_and_wait(page, cards.nth(1).locator("[data-react=dislike]"))
    assert page.locator(f"{LOG} .msg.user").last.inner_text() == "I don't like the second one"
    # Reactions on an older list are disabled: ordinals always refer to the latest one.
    shot(page, "w02-disliked.png")

    ask(page, "show me cheaper ones")
    refined = card_ids(page)
    assert refined and disliked not in refined
    shot(page, "w03-refined.png")

    page.reload()
    open_widget(page)  # the panel stays open across reloads; this only waits
    page.wait_for_selector(f"{LOG} .card", timeout=BOT_TIMEOUT)
    text = page.inner_text(LOG)
    assert "I need running shoes under $80" in text
    assert "I don't like the second one" in text
    assert "show me cheaper ones" in text
    assert first_title in text
    assert card_ids(page) == refined
    shot(page, "w04-after-reload.png", "widget-desktop.png")

    # Navigating to another page of the store keeps the conversation too.
    page.click("text=Jackets")
    open_widget(page)
    page.wait_for_selector(f"{LOG} .card", timeout=BOT_TIMEOUT)
    assert "I need running shoes under $80" in page.inner_text(LOG)
    page.close()


STORE_PAGE = """<!doctype html><html lang="de"><head><meta charset="utf-8">
<title>Another store</title></head><body><h1>Another store</h1>
<script>window.cart = []; addEventListener("tailor:add-to-cart", e => cart.push(e.detail));</script>
<script src="{server}/static/widget/tailor-widget.js" data-server="{server}"
        data-lang="de" data-primary-color="#7b2cbf" defer></script></body></html>"""


def test_add_to_cart_from_another_origin_reaches_the_store_page_and_the_database(
    browser: Any, web_url: str, deployment: Deployment
) -> None:
    server = web_url.rstrip("/")
    page = browser.new_page(viewport={"width": 1100, "height": 820})
    with store_server(STORE_PAGE.format(server=server)) as store:
        run_cart_scenario(page, store, deployment)


@contextmanager
def store_server(html: str) -> Iterator[str]:
    """Another origin (same host, another port) serving one store page, like a real shop."""
    body = html.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/shop"
    finally:
        httpd.shutdown()
        httpd.server_close()


def run_cart_scenario(page: Any, store: str, deployment: Deployment) -> None:
    page.goto(store)
    launcher = page.locator("#tailor-widget .launcher")
    launcher.wait_for()
    assert launcher.get_attribute("aria-label") == "Mit unserem Einkaufsassistenten chatten"
    open_widget(page)
    sender = page.evaluate("localStorage.getItem('tailor.widget.sender')")
    with page.expect_response(lambda r: r.url.endswith("/api/chat")) as chat:
        ask(page, "I need running shoes under $80")
    assert chat.value.all_headers().get("access-control-allow-origin") in (
        "*",
        store.rsplit("/", 1)[0],
    )
    assert chat.value.request.all_headers().get("origin") == store.rsplit("/", 1)[0]

    card = page.locator(f"{LOG} .card").nth(0)
    product_id = int(str(card.get_attribute("data-product-id")))
    title = card.locator(".title").inner_text()
    with page.expect_response(lambda r: r.url.endswith("/api/events")) as event:
        card.locator("button", has_text="In den Warenkorb").click()
    assert event.value.ok
    detail = page.evaluate("window.cart")
    assert len(detail) == 1
    assert detail[0]["product_id"] == product_id and detail[0]["title"] == title
    assert detail[0]["sku"] and isinstance(detail[0]["price"], (int, float))
    shot(page, "w05-cross-origin-cart.png")
    page.close()

    factory = make_session_factory(deployment.settings.database_url)
    with factory() as session:
        rows = events_for(session, sender, "cart")
    factory.kw["bind"].dispose()
    assert [e.product_id for e in rows] == [product_id]


def test_shopper_and_catalog_text_is_shown_as_text(browser: Any, web_url: str) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 820})
    page.goto(web_url + "demo-store")
    open_widget(page)
    evil = '<img src=x onerror="window.__pwned=1"> <b>bold</b> shoes'
    ask(page, evil)
    user = page.locator(f"{LOG} .msg.user").last
    assert user.inner_text() == evil
    assert page.locator(f"{LOG} img[src=x]").count() == 0
    assert page.locator(f"{LOG} .msg b").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.close()


def test_phone_screen_and_keyboard_only(browser: Any, web_url: str) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(web_url + "demo-store")
    page.wait_for_selector("#tailor-widget .launcher")
    focused = (
        "() => { const h = document.activeElement;"
        " return h && h.id === 'tailor-widget' ? h.shadowRoot.activeElement.className : ''; }"
    )
    for _ in range(30):  # Tab through the store's links and buttons to the launcher
        page.keyboard.press("Tab")
        if page.evaluate(focused) == "launcher":
            break
    assert page.evaluate(focused) == "launcher"
    page.keyboard.press("Enter")
    page.wait_for_selector(f"{LOG} .msg.bot .bubble")
    assert (
        page.evaluate("document.querySelector('#tailor-widget').shadowRoot.activeElement.id")
        == "tw-input"
    )
    before = bot_rows(page)
    page.keyboard.type("I need running shoes under $80")
    page.keyboard.press("Enter")
    wait_for_answer(page, before)
    page.wait_for_selector(f"{LOG} .card", timeout=BOT_TIMEOUT)
    box = page.locator("#tailor-widget .panel").bounding_box()
    assert box is not None and box["width"] == 390 and box["height"] == 844
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    send = page.locator("#tailor-widget .composer button").bounding_box()
    assert send is not None and send["y"] + send["height"] <= 844
    shot(page, "w06-phone.png", "widget-phone.png")
    page.keyboard.press("Escape")
    assert page.locator("#tailor-widget .panel").is_hidden()
    assert page.evaluate(focused) == "launcher"
    page.close()


def test_reconnects_after_the_server_restarts_and_keeps_the_message(
    browser: Any, deployment: Deployment
) -> None:
    from tailor.runtime import processes as P

    settings = deployment.settings.replace(web_port=free_port())
    web = P.web_server(settings, deployment.rasa_token)
    web.start()
    try:
        web.wait_ready(60)
        page = browser.new_page(viewport={"width": 1100, "height": 820})
        page.goto(f"http://{settings.host}:{settings.web_port}/demo-store")
        open_widget(page)
        web.stop()
        page.fill(INPUT, "I need running shoes under $80")
        page.press(INPUT, "Enter")
        page.wait_for_selector("#tailor-widget .status:has-text('Reconnecting')", timeout=10_000)
        assert page.locator(f"{LOG} .msg.user.pending").count() == 1
        shot(page, "w07-reconnecting.png")
        web.start()
        web.wait_ready(60)
        page.wait_for_selector(f"{LOG} .card", timeout=90_000)
        assert page.locator("#tailor-widget .status").is_hidden()
        assert page.locator(f"{LOG} .msg.user").count() == 1
        page.close()
    finally:
        web.stop()


def test_agent_takeover_reaches_the_embedded_widget_live(
    browser: Any, web_url: str, deployment: Deployment
) -> None:
    """An agent takes the widget's conversation over, sends a message and a product card
    that appear in the widget without a reload, and hands back; the bot answers again."""
    import httpx

    from tailor.store.agents import create_agent

    factory = make_session_factory(deployment.settings.database_url)
    with factory.begin() as s:
        create_agent(s, "widget-agent", "widget agent password")
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(web_url + "demo-store")
    open_widget(page)
    ask(page, "I need running shoes under $80")
    shown = card_ids(page)
    sender = page.evaluate("localStorage.getItem('tailor.widget.sender')")
    assert sender

    with httpx.Client(base_url=web_url.rstrip("/"), timeout=30) as agent:
        login = {"username": "widget-agent", "password": "widget agent password"}
        signed_in = agent.post("/api/agent/login", json=login)
        assert signed_in.status_code == 200
        agent.headers["X-CSRF-Token"] = signed_in.json()["csrf_token"]  # as the panel sends it
        convo = f"/api/agent/conversations/{sender}"
        assert agent.post(f"{convo}/takeover").status_code == 200
        page.wait_for_function(
            """() => document.querySelector('#tailor-widget').shadowRoot
                 .querySelector('.log').textContent.includes('person has joined')""",
            timeout=BOT_TIMEOUT,
        )
        assert agent.post(f"{convo}/message", json={"text": "Hi, this one fits you"}).is_success
        assert agent.post(f"{convo}/card", json={"product_id": shown[1]}).is_success
        page.wait_for_function(
            """id => [...document.querySelector('#tailor-widget').shadowRoot
                 .querySelectorAll('.log .card')].some(c => c.dataset.productId === String(id))
                 && document.querySelector('#tailor-widget').shadowRoot
                 .querySelector('.log').textContent.includes('Hi, this one fits you')""",
            arg=shown[1],
            timeout=BOT_TIMEOUT,
        )
        assert card_ids(page) == [shown[1]]  # the agent's card is the latest list
        shot(page, "w08-agent-card-in-widget.png")
        assert agent.post(f"{convo}/handback").status_code == 200
    ask(page, "show me running shoes")
    assert card_ids(page)  # the bot answers with cards again
