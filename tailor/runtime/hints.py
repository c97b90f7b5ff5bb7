"""Turn hints: the Rasa server tells the action server about a message before it calls an action.

Rasa works on a message for a few milliseconds before it calls a custom action: it loads the
conversation, runs its NLU pipeline and its policies. With the two servers on cores of their
own (``tailor.runtime.processes.cpu_shares``) the action server's core idles meanwhile. The
Rasa launcher (``tailor_rasa_run.send_turn_hints``) sends it two UDP datagrams per message:
``message`` before the NLU runs (sender, message id, text, channel, metadata) and ``parsed``
after it (intent, entities, the conversation's slots). The actions use them to start the
turn's work early (``actions.actions``: identify the shopper, understand the text, load the
shopper's context, search); the action call, which carries everything, takes that work only
where its inputs are equal to what the hints said. A hint that is lost, late, or wrong costs
nothing but the work it started.

This module is the transport: a datagram listener on the action server's own port number,
bound to the loopback interface, and the handlers the actions register.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

#: ``off`` turns hints off on both servers (the Rasa launcher reads the same variable).
HINTS_ENV = "TAILOR_TURN_HINTS"

Hint = dict[str, Any]
Handler = Callable[[Hint], None]

_handlers: list[Handler] = []

#: What became of the hints in this process: ``received``, and how the actions used the work
#: they started (served at ``GET /hints`` by the action server, for tests and debugging).
STATS: Counter[str] = Counter()


def on_hint(handler: Handler) -> Handler:
    """Register ``handler`` to be called, on the event loop, with every valid hint."""
    if handler not in _handlers:
        _handlers.append(handler)
    return handler


def dispatch(hint: Hint) -> None:
    """Hand ``hint`` to every handler; a failing handler is logged, never raised."""
    for handler in list(_handlers):
        try:
            handler(hint)
        except Exception:
            log.exception("turn hint handler %r failed", handler)


def parse(data: bytes) -> Hint | None:
    """The hint in a datagram, or ``None`` unless it is a JSON object with a ``hint`` kind and
    string ``sender_id`` and ``message_id``."""
    try:
        hint = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(hint, dict) or not isinstance(hint.get("hint"), str):
        return None
    if not isinstance(hint.get("sender_id"), str) or not isinstance(hint.get("message_id"), str):
        return None
    return hint


class _Protocol(asyncio.DatagramProtocol):
    def datagram_received(self, data: bytes, addr: Any) -> None:
        hint = parse(data)
        if hint is not None:
            STATS["received"] += 1
            dispatch(hint)


async def listen(port: int, host: str = "127.0.0.1") -> asyncio.DatagramTransport:
    """Receive hints on ``host:port`` (UDP) until the returned transport is closed."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Protocol, local_addr=(host, port))
    return transport


T = TypeVar("T")


class Pending(Generic[T]):
    """Work started from hints, by key, until an action takes it: at most ``size`` entries,
    none older than ``ttl`` seconds (``on_drop`` is called with each entry nobody took).

    A key an action has claimed (:meth:`claim`) stays claimed for the last ``size`` × 4
    claims: a hint that comes after its action started (a datagram delayed behind the action
    call) must not start the work a second time.
    """

    def __init__(
        self,
        size: int = 256,
        ttl: float = 30.0,
        on_drop: Callable[[T], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.ttl = ttl
        self.on_drop = on_drop
        self.clock = clock
        self._items: OrderedDict[tuple[str, str], tuple[float, T]] = OrderedDict()
        self._claimed: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def claimed(self, key: tuple[str, str]) -> bool:
        """Whether an action has claimed ``key`` (its hints come too late)."""
        return key in self._claimed

    def claim(self, key: tuple[str, str]) -> None:
        """Mark ``key`` as its action's: later :meth:`put` calls for it are refused."""
        self._claimed[key] = None
        self._claimed.move_to_end(key)
        while len(self._claimed) > self.size * 4:
            self._claimed.popitem(last=False)

    def put(self, key: tuple[str, str], item: T) -> bool:
        """Keep ``item`` under ``key`` (replacing, and dropping, one kept there before); a
        claimed key refuses it (dropped, ``False``)."""
        if key in self._claimed:
            self._drop(item)
            return False
        old = self._items.pop(key, None)
        if old is not None:
            self._drop(old[1])
        self._items[key] = (self.clock(), item)
        self._expire()
        return True

    def get(self, key: tuple[str, str]) -> T | None:
        """The item under ``key``, left in place (``None`` if absent or expired)."""
        self._expire()
        found = self._items.get(key)
        return found[1] if found is not None else None

    def take(self, key: tuple[str, str]) -> T | None:
        """The item under ``key``, removed (``None`` if absent or expired)."""
        self._expire()
        found = self._items.pop(key, None)
        return found[1] if found is not None else None

    def discard(self, key: tuple[str, str]) -> None:
        """Drop the item under ``key``, if any (``on_drop`` is called with it)."""
        found = self._items.pop(key, None)
        if found is not None:
            self._drop(found[1])
        self._expire()

    def _expire(self) -> None:
        now = self.clock()
        while self._items:
            key, (at, item) = next(iter(self._items.items()))
            if len(self._items) <= self.size and now - at <= self.ttl:
                break
            del self._items[key]
            self._drop(item)

    def _drop(self, item: T) -> None:
        if self.on_drop is not None:
            try:
                self.on_drop(item)
            except Exception:
                log.exception("dropping a hinted turn failed")
