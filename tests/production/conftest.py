"""The production profile on the real services of this machine: PostgreSQL, Redis, RabbitMQ,
nginx, two Rasa servers and two action servers, the analytics consumer.

The services must run on localhost (or where ``TAILOR_POSTGRES_URL``, ``TAILOR_REDIS_URL`` and
``TAILOR_RABBITMQ_URL`` say): when one is missing the tests that need the stack FAIL, naming
the service — they are never skipped. Each session gets its own databases
(``tailor_test_<random>`` and its ``_tracker`` twin, dropped at the end), its own queue and
lock-key prefix, and free ports. The catalog is the e2e suite's (same size and seed), built
into PostgreSQL by the same code as ``tailor run``, so the trained Rasa model is shared
through the e2e cache (by fingerprint), and product embeddings are cached there too.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tailor.config import PROJECT_ROOT, Settings
from tailor.runtime.processes import free_port
from tests.e2e.conftest import CACHE, E2E_PRODUCTS, E2E_TOKEN_SECRET, prepare_bot

#: Where the stack's logs are copied at the end of a session.
LOGS = PROJECT_ROOT / "test-output" / "production-logs"
#: Demo customers, as in the e2e suite (the catalog and lookups must match for the model).
CUSTOMERS = 50


def _service_urls() -> dict[str, str]:
    """Where the backing services are: TAILOR_* variables, else the defaults (localhost)."""
    defaults = Settings()
    return {
        "postgres_url": os.environ.get("TAILOR_POSTGRES_URL") or defaults.postgres_url,
        "redis_url": os.environ.get("TAILOR_REDIS_URL") or defaults.redis_url,
        "rabbitmq_url": os.environ.get("TAILOR_RABBITMQ_URL") or defaults.rabbitmq_url,
    }


@pytest.fixture(scope="session")
def backing_services() -> dict[str, str]:
    """The service URLs, after checking each answers; a missing one FAILS the tests."""
    from tailor.runtime import production as prod

    urls = _service_urls()
    try:
        prod.check_postgres(urls["postgres_url"])
        prod.check_redis(urls["redis_url"])
        prod.check_rabbitmq(urls["rabbitmq_url"])
        prod.nginx_executable()
    except prod.ServiceUnavailable as exc:
        pytest.fail(f"production tests need the real services: {exc}", pytrace=False)
    return urls


@pytest.fixture(scope="session")
def prod_settings(
    tmp_path_factory: pytest.TempPathFactory, backing_services: dict[str, str]
) -> Iterator[Settings]:
    """Settings of a private production deployment with catalog, index and model built."""
    from sqlalchemy.engine import make_url

    from tailor.cli import _ensure_catalog, build_index, ensure_segments, write_lookups_for
    from tailor.runtime import production as prod
    from tailor.runtime.rasa import train

    suffix = secrets.token_hex(4)
    home = tmp_path_factory.mktemp("production")
    pg = make_url(backing_services["postgres_url"]).set(database=f"tailor_test_{suffix}")
    settings = prod.production_settings(
        Settings.load(
            home=home,
            bot_dir=prepare_bot(home),
            models_dir=CACHE / "models",
            demo_products=E2E_PRODUCTS,
            demo_customers=CUSTOMERS,
            profile="production",
            postgres_url=pg.render_as_string(hide_password=False),
            redis_url=backing_services["redis_url"],
            rabbitmq_url=backing_services["rabbitmq_url"],
            events_queue=f"tailor_test_{suffix}",
            rasa_port=free_port(),
            action_port=free_port(),
            web_port=free_port(),
            balancer_port=free_port(),
            customer_token_secret=E2E_TOKEN_SECRET,
        )
    )
    try:
        prod.prepare_databases(settings)
        # `tailor run`'s steps (tailor.cli._prepared_bot) into PostgreSQL, except scoring
        # review sentiment: minutes of CPU that nothing here depends on (e2e covers it).
        _ensure_catalog(settings)
        ensure_segments(settings)
        _with_cached_embeddings(home, lambda: build_index(settings))
        write_lookups_for(settings)
        train(settings)
        yield settings
    finally:
        for url in (settings.database_url, prod.tracker_database_url(settings)):
            with contextlib.suppress(Exception):
                prod.drop_database(url)
        _delete_queues(settings)


def _with_cached_embeddings(home: Path, build: Callable[[], object]) -> None:
    """Run ``build`` with the product embeddings of earlier sessions (the index's cache by
    text hash, ``<home>/embeddings``) and keep what it added for the next session."""
    cached, local = CACHE / "production-embeddings", home / "embeddings"
    if cached.exists():
        shutil.copytree(cached, local, dirs_exist_ok=True)
    build()
    if local.exists():
        shutil.copytree(local, cached, dirs_exist_ok=True)


def _delete_queues(settings: Settings) -> None:
    import pika

    from tailor.analytics.consumer import dead_letter_queue
    from tailor.analytics.events import exchange_name

    with contextlib.suppress(Exception):
        conn = pika.BlockingConnection(pika.URLParameters(settings.rabbitmq_url))
        ch = conn.channel()
        for queue in (settings.events_queue, dead_letter_queue(settings.events_queue)):
            ch.queue_delete(queue=queue)
        ch.exchange_delete(exchange=exchange_name(settings.events_queue))
        conn.close()


@dataclass
class Stack:
    """The running production stack plus small clients for the tests."""

    settings: Settings
    running: Any  # tailor.runtime.production.ProductionStack
    started_in: float

    @property
    def token(self) -> str:
        """Rasa's API token (shared by the replicas)."""
        return str(self.running.token)

    def say(
        self, sender: str, text: str, url: str | None = None, timeout: float = 120
    ) -> list[dict[str, Any]]:
        """One message through the REST channel of ``url`` (default: the balancer)."""
        base = url or self.settings.rasa_url
        resp = httpx.post(
            f"{base}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            timeout=timeout,
        )
        resp.raise_for_status()
        return list(resp.json())

    def tracker(self, sender: str, url: str | None = None) -> dict[str, Any]:
        """The conversation's tracker through the HTTP API of ``url`` (default: balancer)."""
        base = url or self.settings.rasa_url
        resp = httpx.get(
            f"{base}/conversations/{sender}/tracker",
            params={"token": self.token},
            timeout=60,
        )
        resp.raise_for_status()
        return dict(resp.json())

    def stored_events(self, senders: list[str]) -> list[tuple[str, str, str]]:
        """(sender, type, data JSON) of every event in the tracker store's database, in order."""
        from tailor.runtime.production import tracker_database_url

        sql = (
            "SELECT sender_id, type_name, data FROM events WHERE sender_id IN :senders ORDER BY id"
        )
        return _rows(tracker_database_url(self.settings), sql, senders)

    def analytics_events(self, senders: list[str]) -> list[tuple[str, str, str]]:
        """(sender, type, event key) of every stored analytics event of ``senders``."""
        sql = (
            "SELECT sender_id, event_type, event_key FROM conversation_events "
            "WHERE sender_id IN :senders ORDER BY id"
        )
        return _rows(self.settings.database_url, sql, senders)

    def wait_for_analytics(self, senders: list[str], expected: int, timeout: float = 30) -> int:
        """Wait until ``expected`` analytics events of ``senders`` are stored; their count."""
        deadline = time.monotonic() + timeout
        count = len(self.analytics_events(senders))
        while count < expected and time.monotonic() < deadline:
            time.sleep(0.25)
            count = len(self.analytics_events(senders))
        return count


def _rows(url: str, sql: str, senders: list[str]) -> list[tuple[str, str, str]]:
    """Three-column rows of ``sql`` (with an expanding ``:senders`` list) on ``url``."""
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(url)
    query = text(sql).bindparams(bindparam("senders", expanding=True))
    try:
        with engine.connect() as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(query, {"senders": senders})]
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def stack(prod_settings: Settings) -> Iterator[Stack]:
    """Two Rasa servers, two action servers, nginx and the analytics consumer, running for
    the whole session (no web app: the tests talk to Rasa)."""
    from tailor.runtime import production as prod
    from tailor.runtime.rasa import model_path

    settings = prod_settings
    running = prod.build_stack(
        settings,
        model_path(settings),
        rasa_ports=[free_port() for _ in range(settings.rasa_replicas)],
        action_ports=[free_port() for _ in range(settings.action_replicas)],
        with_web=False,
        lock_prefix=f"t{settings.events_queue.rsplit('_', 1)[-1]}",
    )
    took = prod.start_stack(running, timeout=600)
    try:
        yield Stack(settings=settings, running=running, started_in=took)
    finally:
        running.stop()
        # The services' logs outlive pytest's temporary folders (CI keeps test-output/).
        shutil.copytree(settings.home / "logs", LOGS, dirs_exist_ok=True)
