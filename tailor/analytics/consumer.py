"""The analytics consumer: Rasa's conversation events from RabbitMQ into ``conversation_events``.

Delivery is at-least-once and storage idempotent: messages are acknowledged only after the
transaction that stored them committed, and a redelivered message has the same
:func:`~tailor.analytics.events.event_key`, so it adds nothing. A malformed message is logged,
copied to the dead-letter queue ``<queue>.dead`` and acknowledged: it never stops the
consumer. A lost broker or database connection is retried with a back-off; unacknowledged
messages go back to the queue.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tailor.analytics.events import (
    InvalidEvent,
    ParsedEvent,
    create_tables,
    exchange_name,
    parse_event,
    store_events,
)
from tailor.config import Settings

if TYPE_CHECKING:
    from pika.adapters.blocking_connection import BlockingChannel
    from sqlalchemy import Engine

log = logging.getLogger("tailor.analytics")

#: Messages stored per transaction at most (one commit, one multiple-ack).
BATCH_SIZE = 200
#: Seconds without a message after which a partial batch is committed.
FLUSH_AFTER = 0.2


def dead_letter_queue(queue: str) -> str:
    """The queue malformed messages are copied to."""
    return f"{queue}.dead"


@dataclass
class Counters:
    """What the consumer has done since it started (logged periodically and at exit)."""

    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    forgotten: int = 0
    malformed: int = 0
    reconnects: int = 0

    def line(self) -> str:
        """One log line."""
        return (
            f"received={self.received} inserted={self.inserted} duplicates={self.duplicates} "
            f"forgotten={self.forgotten} malformed={self.malformed} reconnects={self.reconnects}"
        )


@dataclass
class Consumer:
    """Reads ``queue`` on ``rabbitmq_url`` and stores the events through ``engine``."""

    engine: Engine
    rabbitmq_url: str
    queue: str
    counters: Counters = field(default_factory=Counters)
    stopping: bool = False

    def declare(self, channel: BlockingChannel) -> None:
        """Declare the queue, its exchange and the dead-letter queue exactly as Rasa does, so
        whichever side starts first, no event is dropped."""
        exchange = exchange_name(self.queue)
        channel.exchange_declare(exchange=exchange, exchange_type="fanout", durable=False)
        channel.queue_declare(queue=self.queue, durable=True)
        channel.queue_bind(queue=self.queue, exchange=exchange, routing_key="")
        channel.queue_declare(queue=dead_letter_queue(self.queue), durable=True)

    def run(self, max_seconds: float | None = None) -> Counters:
        """Consume until stopped (SIGTERM/SIGINT, :attr:`stopping`) or ``max_seconds``."""
        import pika
        import pika.exceptions
        from sqlalchemy.exc import OperationalError

        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        backoff = 0.5
        while not self.stopping and (deadline is None or time.monotonic() < deadline):
            try:
                connection = pika.BlockingConnection(pika.URLParameters(self.rabbitmq_url))
            except pika.exceptions.AMQPError as exc:
                log.warning("RabbitMQ not reachable (TAILOR_RABBITMQ_URL): %s; retrying", exc)
                self.counters.reconnects += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            try:
                channel = connection.channel()
                self.declare(channel)
                channel.basic_qos(prefetch_count=BATCH_SIZE)
                log.info("consuming %s (%s)", self.queue, self.counters.line())
                backoff = 0.5
                self._consume(channel, deadline)
            except (pika.exceptions.AMQPError, OperationalError) as exc:
                # Unacknowledged messages return to the queue when the connection closes.
                log.warning("connection lost: %s; reconnecting", exc)
                self.counters.reconnects += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                if connection.is_open:
                    with contextlib.suppress(pika.exceptions.AMQPError):
                        connection.close()
        log.info("stopped (%s)", self.counters.line())
        return self.counters

    def _consume(self, channel: BlockingChannel, deadline: float | None) -> None:
        pending: list[ParsedEvent] = []
        last_tag = 0
        last_report = time.monotonic()
        for method, _props, body in channel.consume(self.queue, inactivity_timeout=FLUSH_AFTER):
            if method is not None:
                self.counters.received += 1
                last_tag = method.delivery_tag
                try:
                    pending.append(parse_event(body))
                except InvalidEvent as exc:
                    self._dead_letter(channel, body, str(exc))
            if pending and (method is None or len(pending) >= BATCH_SIZE):
                self._flush(pending)
                pending = []
            if last_tag and not pending:
                channel.basic_ack(delivery_tag=last_tag, multiple=True)
                last_tag = 0
            now = time.monotonic()
            if now - last_report >= 30:
                last_report = now
                log.info("%s", self.counters.line())
            if self.stopping or (deadline is not None and now >= deadline):
                break
        if pending:
            self._flush(pending)
        if last_tag:
            channel.basic_ack(delivery_tag=last_tag, multiple=True)
        channel.cancel()

    def _flush(self, pending: list[ParsedEvent]) -> None:
        result = store_events(self.engine, pending)
        self.counters.inserted += result.inserted
        self.counters.duplicates += result.duplicates
        self.counters.forgotten += result.forgotten

    def _dead_letter(self, channel: BlockingChannel, body: bytes, reason: str) -> None:
        import pika

        self.counters.malformed += 1
        log.warning("malformed message (%s): %r", reason, body[:200])
        channel.basic_publish(
            exchange="",
            routing_key=dead_letter_queue(self.queue),
            body=body,
            properties=pika.BasicProperties(
                delivery_mode=2, headers={"x-tailor-reason": reason[:200]}
            ),
        )


def consumer_for(settings: Settings) -> Consumer:
    """A consumer of the configured queue writing to the configured database (tables are
    created if missing)."""
    from tailor.store.db import make_engine

    engine = make_engine(settings.database_url)
    create_tables(engine)
    return Consumer(engine=engine, rabbitmq_url=settings.rabbitmq_url, queue=settings.events_queue)


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    """Run the consumer until SIGTERM or SIGINT; exit code 0 on a clean stop."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)  # one line per socket otherwise
    settings = settings or Settings.load()
    consumer = consumer_for(settings)

    def stop(_signum: int, _frame: Any) -> None:
        consumer.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    consumer.run()
    return 0
