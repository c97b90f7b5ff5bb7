"""A real deployment for end-to-end tests: demo catalog, index, trained model, servers.

The trained Rasa model is cached by fingerprint in ``var/test-cache/models`` so a second
run reuses it; a fresh clone (CI) trains once per run. Nothing here is mocked.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tailor.config import PROJECT_ROOT, Settings
from tailor.runtime.processes import free_port

CACHE = PROJECT_ROOT / "var" / "test-cache"
E2E_PRODUCTS = 3000


T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 10.0) -> T:
    """What ``check()`` returns once it stops failing an assertion (or its last failure after
    ``timeout`` seconds). The action server writes a turn's log just after its reply
    (``tailor.runtime.after_reply``), so a check of the log right after a reply polls."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


#: The secret the e2e stack's store would sign customer tokens with.
E2E_TOKEN_SECRET = "e2e-customer-token-secret-0123456789abcdef"


@dataclass
class Deployment:
    """Settings of the running stack plus a small REST client."""

    settings: Settings
    model: Path
    rasa_token: str

    def say(
        self, sender: str, text: str, metadata: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Send one message through the REST channel; the bot's messages come back."""
        body: dict[str, Any] = {"sender": sender, "message": text}
        if metadata is not None:
            body["metadata"] = metadata
        resp = httpx.post(f"{self.settings.rasa_url}/webhooks/rest/webhook", json=body, timeout=60)
        resp.raise_for_status()
        return list(resp.json())

    def tracker(self, sender: str) -> dict[str, Any]:
        """The conversation's tracker from Rasa's HTTP API (with its token)."""
        resp = httpx.get(
            f"{self.settings.rasa_url}/conversations/{sender}/tracker",
            params={"token": self.rasa_token},
            timeout=30,
        )
        resp.raise_for_status()
        return dict(resp.json())


def prepare_bot(home: Path) -> Path:
    """A private copy of the Rasa project so generated lookups never touch the checkout."""
    target = home / "bot"
    shutil.copytree(
        PROJECT_ROOT / "bot",
        target,
        ignore=shutil.ignore_patterns("generated", "models", ".rasa", "results"),
    )
    return target


@pytest.fixture(scope="session")
def built_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of a deployment with catalog, index, lookups and a trained model."""
    from tailor.cli import build_index, write_lookups_for
    from tailor.demo import load_demo
    from tailor.profiles.segments import fit_all_segments
    from tailor.runtime.rasa import train
    from tailor.sentiment.reviews import score_reviews
    from tailor.store import make_session_factory

    home = tmp_path_factory.mktemp("deployment")
    settings = Settings.load(
        home=home,
        bot_dir=prepare_bot(home),
        models_dir=CACHE / "models",
        demo_products=E2E_PRODUCTS,
        rasa_port=free_port(),
        action_port=free_port(),
        web_port=free_port(),
        customer_token_secret=E2E_TOKEN_SECRET,
    )
    factory = make_session_factory(settings.database_url)
    load_demo(factory, E2E_PRODUCTS, 50, settings.seed, progress=False)
    score_reviews(factory)  # the review-sentiment signal, as `tailor demo` / `tailor run` do
    fit_all_segments(factory, seed=settings.seed)  # as `tailor run` does on a new catalog
    build_index(settings)
    write_lookups_for(settings)
    train(settings)
    return settings


@pytest.fixture(scope="session")
def deployment(built_settings: Settings) -> Iterator[Deployment]:
    """The real action server and Rasa server, running until the session ends."""
    from tailor.runtime import processes as P
    from tailor.runtime.rasa import model_path

    settings = built_settings
    model = model_path(settings)
    actions = P.action_server(settings)
    rasa = P.rasa_server(settings, model)
    services = [actions, rasa]
    try:
        for svc in services:
            svc.start()
        actions.wait_ready(180)
        rasa.wait_ready(600)
        P.warm_up_actions(settings)
        yield Deployment(settings=settings, model=model, rasa_token=rasa.env["TAILOR_RASA_TOKEN"])
    finally:
        for svc in reversed(services):
            svc.stop()


@pytest.fixture(scope="session")
def web_url(deployment: Deployment) -> Iterator[str]:
    """The web app in front of the running deployment."""
    from tailor.runtime import processes as P

    web = P.web_server(deployment.settings, deployment.rasa_token)
    try:
        web.start()
        web.wait_ready(60)
        yield f"http://{deployment.settings.host}:{deployment.settings.web_port}/"
    finally:
        web.stop()


#: Screenshots of the browser tests (kept as CI artifacts).
SHOTS = PROJECT_ROOT / "test-output" / "screenshots"
#: Debian's Chromium, installed by `scripts/bootstrap.sh --browser` (no download at test time).
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
def browser() -> Iterator[Any]:
    """Headless Chromium driven by Playwright, one per test module."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: `make install` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()
