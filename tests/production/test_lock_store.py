"""The Rasa lock store the replicas share, on the real Redis, from several processes.

Rasa 3.6's own ``RedisLockStore`` hands out duplicate tickets when several processes take
tickets for one conversation at once (GET, change, SET), and a message waiting behind a
replica that died holding the lock loses its own ticket; the replicas therefore use
``tailor_lock_store.AtomicRedisLockStore``. These tests run both stores in Rasa's venv
(Python 3.10) against the real Redis.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from tailor.config import Settings
from tailor.runtime.rasa import RASA_PLUGINS, rasa_env

pytestmark = [pytest.mark.production, pytest.mark.rasa]

DEAD_HOLDER = textwrap.dedent(
    """
    import asyncio, json, sys, time

    from rasa.core.lock_store import LockError, RedisLockStore
    from tailor_lock_store import AtomicRedisLockStore

    async def main(host, port, db, prefix):
        out = {}
        for cls in (RedisLockStore, AtomicRedisLockStore):
            dead = cls(host=host, port=port, db=db, key_prefix=prefix)
            live = cls(host=host, port=port, db=db, key_prefix=prefix)
            conv = f"dead-holder-{cls.__name__}"
            dead.issue_ticket(conv, 2)  # a replica that dies holding the lock
            await asyncio.sleep(0.05)  # the message, retried on another replica

            async def take():
                async with live.lock(conv, lock_lifetime=2):
                    return "acquired"

            try:
                out[cls.__name__] = await asyncio.wait_for(take(), 8)
            except (LockError, asyncio.TimeoutError) as e:
                out[cls.__name__] = type(e).__name__
            dead.delete_lock(conv)
        print(json.dumps(out))

    host, port, db, prefix = sys.argv[1:5]
    asyncio.run(main(host, int(port), int(db), prefix))
    """
)

RACE = textwrap.dedent(
    """
    import json, sys, time
    from multiprocessing import Process, Queue

    def worker(kind, host, port, db, prefix, conv, n, q, start):
        from rasa.core.lock_store import RedisLockStore
        from tailor_lock_store import AtomicRedisLockStore

        cls = AtomicRedisLockStore if kind == "atomic" else RedisLockStore
        store = cls(host=host, port=port, db=db, key_prefix=prefix)
        while time.time() < start:
            pass
        tickets = [store.issue_ticket(conv, 60) for _ in range(n)]
        for t in tickets:
            store.cleanup(conv, t)
        q.put((tickets, store.get_lock(conv) is None))

    if __name__ == "__main__":
        host, port, db, prefix, conv = sys.argv[1:6]
        out = {}
        for kind in ("plain", "atomic"):
            q = Queue()
            start = time.time() + 1.5
            procs = [
                Process(target=worker, args=(kind, host, int(port), int(db), prefix,
                                             f"{conv}-{kind}", 150, q, start))
                for _ in range(4)
            ]
            for p in procs:
                p.start()
            results = [q.get() for _ in procs]
            for p in procs:
                p.join()
            tickets = [t for ts, _ in results for t in ts]
            from rasa.core.lock_store import RedisLockStore

            store = RedisLockStore(host=host, port=int(port), db=int(db), key_prefix=prefix)
            left = store.get_lock(f"{conv}-{kind}") is not None
            store.delete_lock(f"{conv}-{kind}")
            out[kind] = {"issued": len(tickets), "unique": len(set(tickets)), "left": left}
        print(json.dumps(out))
    """
)


def _run_in_rasa(script: str, redis_url: str, *args: str) -> dict[str, Any]:
    """Run ``script`` on Rasa's Python with the Redis address and a fresh key prefix as its
    first arguments; its last line of output, as JSON."""
    redis = urlsplit(redis_url)
    db = (redis.path or "/0").strip("/") or "0"
    prefix = f"race{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        [
            str(Settings.load().rasa_venv / "bin" / "python"),
            "-c",
            script,
            *(redis.hostname or "127.0.0.1", str(redis.port or 6379), db, prefix, *args),
        ],
        capture_output=True,
        text=True,
        env=rasa_env({"PYTHONPATH": str(RASA_PLUGINS)}),
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_atomic_lock_store_never_hands_out_a_ticket_twice(
    backing_services: dict[str, str],
) -> None:
    """Four processes take 150 tickets each on one conversation at the same moment."""
    result = _run_in_rasa(RACE, backing_services["redis_url"], "conversation")
    # Every ticket unique, and the lock gone once every ticket was served.
    assert result["atomic"] == {"issued": 600, "unique": 600, "left": False}, result
    # Rasa's own store is the reason this class exists; report what it did this time.
    print(f"Rasa's RedisLockStore: {result['plain']['unique']} unique of 600 tickets")


def test_a_message_waiting_behind_a_dead_replica_gets_the_lock(
    backing_services: dict[str, str],
) -> None:
    """A replica dies holding a conversation's lock; the message retried on another replica
    waits for the dead ticket to expire and then runs (Rasa's own store loses the lock under
    it: its ticket expires at about the same time, and the waiter then hangs)."""
    result = _run_in_rasa(DEAD_HOLDER, backing_services["redis_url"])
    assert result["AtomicRedisLockStore"] == "acquired", result
    print(f"Rasa's RedisLockStore behind a dead holder: {result['RedisLockStore']}")
