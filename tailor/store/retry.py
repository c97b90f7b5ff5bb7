"""A bounded retry for short database writes that must not be lost to a passing fault.

SQLite answers "database is locked" while another process holds the write lock longer than
its busy timeout; PostgreSQL drops connections when it restarts (the pool then hands out a
fresh one). Both are *operational* errors that a moment later may be gone. An event write
(a message, the products shown) is retried a few times with exponential backoff, bounded
so the shopper's answer is never held up for long; integrity and programming errors are not
retried (they would fail the same way again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Attempts in all (the first one included).
ATTEMPTS = 3
#: Seconds before the second attempt; doubled before each later one (0.05 + 0.1 = 0.15 s in
#: all with the defaults, on top of SQLite's own busy timeout).
BASE_DELAY = 0.05


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a database fault worth retrying: an operational error (locked,
    unavailable, connection lost) or a DBAPI error whose connection was invalidated."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def with_retry(
    write: Callable[[], T],
    what: str,
    attempts: int = ATTEMPTS,
    base_delay: float = BASE_DELAY,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``write()``, retried on a transient database error up to ``attempts`` times in all;
    the last error is raised. ``write`` must run its own transaction (so a failed attempt
    left nothing behind)."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except DBAPIError as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = base_delay * 2 ** (attempt - 1)
            log.warning(
                "%s failed (%s); retrying in %.2f s (attempt %d of %d)",
                what,
                exc.orig.__class__.__name__ if exc.orig is not None else type(exc).__name__,
                delay,
                attempt + 1,
                attempts,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
