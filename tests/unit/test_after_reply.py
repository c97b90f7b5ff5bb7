"""Work deferred until after a reply: in order per conversation, awaited by the next turn,
drained on shutdown, errors logged and never raised."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from tailor.runtime.after_reply import AfterReply


def test_each_conversation_runs_in_order_and_settle_waits_for_its_own() -> None:
    """Random delays must not reorder one conversation's work; another conversation's slow
    work must not hold up a settle."""
    rng = random.Random(5)

    async def main() -> None:
        after = AfterReply()
        done: list[tuple[str, int]] = []

        async def write(key: str, n: int, delay: float) -> None:
            await asyncio.sleep(delay)
            done.append((key, n))

        for n in range(30):
            for key in ("a", "b", "c"):
                after.defer(key, write(key, n, rng.uniform(0, 0.004)))
        after.defer("slow", write("slow", 0, 0.5))
        await after.settle("a")
        assert [n for k, n in done if k == "a"] == list(range(30))
        assert ("slow", 0) not in done  # settling "a" did not wait for another conversation
        await after.drain()
        for key in ("a", "b", "c"):
            assert [n for k, n in done if k == key] == list(range(30))
        assert ("slow", 0) in done
        assert after.pending() == 0

    asyncio.run(main())


def test_a_failure_is_logged_and_the_next_work_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> list[str]:
        after = AfterReply()
        done: list[str] = []

        async def fail() -> None:
            raise RuntimeError("database gone")

        async def ok() -> None:
            done.append("second")

        after.defer("x", fail())
        after.defer("x", ok())
        await after.settle("x")
        return done

    with caplog.at_level(logging.ERROR, logger="tailor.runtime.after_reply"):
        assert asyncio.run(main()) == ["second"]
    assert "work after the reply failed for conversation x" in caplog.text
    assert "database gone" in caplog.text


def test_drain_includes_work_deferred_while_draining() -> None:
    async def main() -> list[int]:
        after = AfterReply()
        done: list[int] = []

        async def chain(n: int) -> None:
            await asyncio.sleep(0.001)
            done.append(n)
            if n < 5:  # a write that defers another (a follow-up), even for a new key
                after.defer(f"k{n + 1}", chain(n + 1))

        after.defer("k0", chain(0))
        await after.drain()
        return done

    assert asyncio.run(main()) == [0, 1, 2, 3, 4, 5]


def test_work_of_an_event_loop_that_has_gone_is_forgotten() -> None:
    """A test (or a restarted server) may leave work behind on a closed loop: the next loop's
    settle must not wait on it forever."""
    after = AfterReply()

    async def never() -> None:
        await asyncio.sleep(3600)

    async def leave() -> None:
        after.defer("x", never())

    asyncio.run(leave())  # asyncio.run cancels what is left; the task is still recorded

    async def later() -> None:
        await asyncio.wait_for(after.settle("x"), timeout=1)
        await asyncio.wait_for(after.drain(), timeout=1)

    asyncio.run(later())
    assert after.pending() == 0
