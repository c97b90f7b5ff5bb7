"""A Redis lock store whose ticket operations are atomic across Rasa replicas.

Rasa 3.6's ``RedisLockStore`` changes a conversation's ticket lock with a GET, a change in
Python and a SET. With one Rasa server that is safe (one event loop, no await in between);
with two replicas it is not: two messages of one conversation arriving at both replicas at
once can read the same lock, both take ticket *n* and run side by side, and a replica
finishing its turn can delete the lock another replica just queued a ticket on (that
message then fails with ``LockError``). Here every read-modify-write runs in a Redis
transaction (WATCH/MULTI/EXEC, retried when another replica changed the key meanwhile), so
tickets stay unique and ordered whichever replica takes them.

A waiting ticket is also kept alive while its owner waits. In Rasa a ticket expires
``lock_lifetime`` seconds after it was issued, waiting or not; when a replica dies holding a
conversation's lock, the message retried on another replica waits for the dead ticket to
expire, and its own ticket, issued a moment later, expires about then too: unless it polls
in that moment, the lock vanishes under it and the message fails with ``LockError``
(measured with one replica killed mid-run). Here a waiter renews its own ticket on every
poll, so only the tickets of owners that stopped polling (died) expire.

Loaded by the Rasa servers (``lock_store: type: tailor_lock_store.AtomicRedisLockStore``);
this file runs on Rasa's Python 3.10 and imports only Rasa and redis.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore

T = TypeVar("T")


class AtomicRedisLockStore(RedisLockStore):
    """``RedisLockStore`` with atomic ticket operations (see the module docstring)."""

    def __init__(self, endpoint_config: Any = None, **kwargs: Any) -> None:
        """Built by Rasa from ``endpoints.yml`` (``url`` is the Redis host) or directly."""
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url or "localhost", **endpoint_config.kwargs}
        super().__init__(**kwargs)
        #: Lifetime of each ticket this process holds or waits with, to renew it by.
        self._lifetimes: dict[tuple[str, int], float] = {}

    def _atomic(self, conversation_id: str, change: Callable[[Any], T]) -> T:
        """Apply ``change`` to the conversation's lock (a new empty one when none is stored)
        in a Redis transaction; the lock is then saved, or deleted when it holds no ticket."""
        import redis

        key = self.key_prefix + conversation_id
        while True:
            with self.red.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = (
                        TicketLock.from_dict(json.loads(raw))
                        if raw
                        else TicketLock(conversation_id)
                    )
                    result = change(lock)
                    lock.remove_expired_tickets()
                    pipe.multi()
                    if lock.tickets:
                        pipe.set(key, lock.dumps())
                    else:
                        pipe.delete(key)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Issue the next ticket of the conversation, atomically."""
        try:
            number = self._atomic(conversation_id, lambda lock: lock.issue_ticket(lock_lifetime))
        except Exception as e:  # the parent's contract: any failure is a LockError
            raise LockError(f"Error while acquiring lock. Error:\n{e}") from e
        self._lifetimes[(conversation_id, number)] = lock_lifetime
        return int(number)

    async def _acquire_lock(
        self, conversation_id: str, ticket: int, wait_time_in_seconds: float
    ) -> TicketLock:
        """Wait until ``ticket`` is served, renewing it on every poll (see the module
        docstring); ``LockError`` when the ticket is gone (its owner stalled past its
        lifetime)."""
        lifetime = self._lifetimes.get((conversation_id, ticket), LOCK_LIFETIME)

        def renew(lock: TicketLock) -> TicketLock | None:
            mine = next((t for t in lock.tickets if t.number == ticket), None)
            if mine is None or mine.has_expired():
                return None
            mine.expires = time.time() + lifetime
            return lock

        while True:
            lock = self._atomic(conversation_id, renew)
            if lock is None:
                raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
            if not lock.is_locked(ticket):
                return lock
            await asyncio.sleep(wait_time_in_seconds)

    def update_lock(self, conversation_id: str) -> None:
        """Drop expired tickets, atomically."""
        self._atomic(conversation_id, lambda lock: lock.remove_expired_tickets())

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Remove a served ticket, atomically."""
        self._atomic(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number))

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Remove a served ticket; the lock goes when no ticket is left (in one transaction,
        so a ticket another replica queued meanwhile is never deleted with it)."""
        self._lifetimes.pop((conversation_id, ticket_number), None)
        self.finish_serving(conversation_id, ticket_number)
