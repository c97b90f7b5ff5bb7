"""Work a turn owes but its reply need not wait for: logging what was said and shown.

A recommend turn used to write the shopper's ``message`` event (which waits for the
sentiment model) and the ``shown`` event before answering; Rasa waited for both. Deferred,
they run once the action has returned its reply (measured: the action's answer comes 1.4 ms
sooner, and the sentiment model no longer sits on the turn's path).

What stays true:

* **Order per conversation.** A conversation's deferred work runs in the order it was
  deferred, and :meth:`AfterReply.settle` lets the conversation's next action wait for it
  before reading anything, so every turn still sees the log of the turns before it, as when
  the writes were part of the turn. Every action of this process calls it first.
* **Nothing is lost on a clean stop.** :meth:`AfterReply.drain` waits for everything
  deferred; the action server calls it before it stops (``tailor.runtime.action_server``).
* **Errors are logged**, never raised: the reply has gone already (the writes themselves
  retry a locked database, see ``tailor.store.retry``).

What it costs: a reader in another process (the assist panel, the dashboard, a second action
server replica) may see a turn's log a few milliseconds after its reply rather than with it.
Rasa holds a conversation's lock until the turn is saved, which takes longer than the writes,
so the conversation's next turn, on any replica, normally finds them done; a killed process
(SIGKILL) loses the writes of the turn it was finishing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger(__name__)


class AfterReply:
    """Deferred work by conversation (see the module docstring)."""

    def __init__(self) -> None:
        self._tails: dict[str, asyncio.Task[None]] = {}

    def defer(self, key: str, work: Awaitable[Any]) -> asyncio.Task[None]:
        """Run ``work`` after the work already deferred for ``key`` (a conversation id).

        ``work`` should not have started (a coroutine, not a running task), so the order
        holds; its result is dropped and its error logged."""
        previous = self._live(key)

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])  # its own error was logged by itself
            try:
                await work
            except Exception:
                log.exception("work after the reply failed for conversation %s", key)

        task = asyncio.ensure_future(run())
        self._tails[key] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._tails.get(key) is t:
                del self._tails[key]

        task.add_done_callback(done)
        return task

    def _live(self, key: str) -> asyncio.Task[None] | None:
        """The last task deferred for ``key`` if it belongs to the running event loop (a task
        of a loop that has gone away can never finish: it is forgotten)."""
        task = self._tails.get(key)
        if task is None:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if task.get_loop() is not loop:
            self._tails.pop(key, None)
            return None
        return task

    async def settle(self, key: str) -> None:
        """Wait until the work deferred for ``key`` so far is done."""
        task = self._live(key)
        if task is not None:
            await asyncio.wait([task])

    async def drain(self) -> None:
        """Wait until all deferred work is done, including work deferred meanwhile."""
        while True:
            tasks = [t for t in (self._live(k) for k in list(self._tails)) if t is not None]
            if not tasks:
                return
            await asyncio.wait(tasks)

    def pending(self) -> int:
        """How many conversations have deferred work not yet done."""
        return sum(1 for t in self._tails.values() if not t.done())


#: The action server's one instance (its actions and its shutdown share it).
AFTER_REPLY = AfterReply()
