"""MicroBatcher: every item gets the result the function gives it alone, batches stay within
their bound and form under load, and an error fails only the callers of that call."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest

from tailor.runtime.batching import MicroBatcher


def slow_squares(items: list[int]) -> list[int]:
    time.sleep(0.002)  # a model call: items that arrive meanwhile queue for the next one
    return [i * i for i in items]


def test_every_item_gets_its_own_result_from_many_threads() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(slow_squares, max_batch=5)
    futures: dict[int, Future[int]] = {}
    lock = threading.Lock()

    def submit(start: int) -> None:
        for i in range(start, start + 50):
            f = batcher.submit(i)
            with lock:
                futures[i] = f

    threads = [threading.Thread(target=submit, args=(n * 50,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {i: f.result(timeout=10) for i, f in futures.items()} == {i: i * i for i in range(400)}
    assert sum(batcher.batch_sizes) == 400
    assert max(batcher.batch_sizes) <= 5
    assert max(batcher.batch_sizes) > 1  # under load, items shared calls


def test_an_item_alone_is_run_at_once() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(slow_squares, max_batch=8)
    for i in range(5):
        assert batcher.submit(i).result(timeout=5) == i * i
    assert list(batcher.batch_sizes) == [1] * 5


def test_an_error_fails_that_call_only() -> None:
    def picky(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        return [-i for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(picky, max_batch=1)
    bad = batcher.submit(13)
    good = batcher.submit(2)
    with pytest.raises(ValueError, match="unlucky"):
        bad.result(timeout=5)
    assert good.result(timeout=5) == -2


def test_a_function_returning_too_few_results_is_an_error() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: items[:-1], max_batch=4)
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        batcher.submit(1).result(timeout=5)
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(slow_squares, max_batch=0)
