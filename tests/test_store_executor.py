"""The store executor: one thread, submission order, batches, errors reach only their caller."""

from __future__ import annotations

import asyncio
import threading

import pytest

from corecall.store.executor import StoreExecutor


@pytest.fixture
def executor():
    ex = StoreExecutor("test-store")
    yield ex
    ex.close()


async def test_runs_on_one_thread_in_submission_order(executor):
    seen: list[tuple[int, str]] = []

    def job(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        return i * 2

    results = await asyncio.gather(*(executor.run(job, i) for i in range(300)))
    assert results == [i * 2 for i in range(300)]
    assert [i for i, _ in seen] == list(range(300))
    assert {name for _, name in seen} == {"test-store"}
    assert threading.current_thread().name not in {name for _, name in seen}


async def test_an_error_reaches_only_its_caller(executor):
    def job(i: int) -> int:
        if i == 3:
            raise ValueError("bad record 3")
        return i

    results = await asyncio.gather(*(executor.run(job, i) for i in range(6)),
                                   return_exceptions=True)  # fmt: skip
    assert results[:3] == [0, 1, 2] and results[4:] == [4, 5]
    assert isinstance(results[3], ValueError) and "bad record 3" in str(results[3])


async def test_adjacent_batched_jobs_go_to_the_batch_function_together(executor):
    gate = threading.Event()
    calls: list[list[int]] = []

    def many(items: list[int]) -> list[object]:
        calls.append(list(items))
        return [ValueError(f"no {i}") if i == 2 else i * 10 for i in items]

    blocker = executor.run(gate.wait, 5)  # hold the worker so the batch piles up
    await asyncio.sleep(0.05)
    futures = [asyncio.ensure_future(executor.batched(many, i)) for i in range(5)]
    await asyncio.sleep(0.05)
    gate.set()
    await blocker
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert calls == [[0, 1, 2, 3, 4]]  # one call, one transaction for a store
    assert results[:2] == [0, 10] and results[3:] == [30, 40]
    assert isinstance(results[2], ValueError)  # only item 2 failed


async def test_a_bound_method_batches_like_a_function(executor):
    """``store.create_calls`` is a new bound-method object at each access; a burst of call
    records passed that way is still one batch (one transaction)."""

    class Store:
        def __init__(self):
            self.calls: list[list[str]] = []

        def create_calls(self, items: list[str]) -> list[str]:
            self.calls.append(list(items))
            return items

    store, other = Store(), Store()
    gate = threading.Event()
    blocker = executor.run(gate.wait, 5)
    await asyncio.sleep(0.05)
    futures = [asyncio.ensure_future(executor.batched(store.create_calls, f"r{i}"))
               for i in range(4)]  # fmt: skip
    futures.append(asyncio.ensure_future(executor.batched(other.create_calls, "x")))
    await asyncio.sleep(0.05)
    gate.set()
    await blocker
    assert await asyncio.gather(*futures) == ["r0", "r1", "r2", "r3", "x"]
    assert store.calls == [["r0", "r1", "r2", "r3"]] and other.calls == [["x"]]


async def test_batches_never_reorder_around_other_jobs(executor):
    gate = threading.Event()
    order: list[str] = []

    def many(items: list[str]) -> list[str]:
        order.append("+".join(items))
        return items

    def single(name: str) -> str:
        order.append(name)
        return name

    blocker = executor.run(gate.wait, 5)
    await asyncio.sleep(0.05)
    futures = [
        asyncio.ensure_future(executor.batched(many, "a")),
        asyncio.ensure_future(executor.batched(many, "b")),
        asyncio.ensure_future(executor.run(single, "x")),
        asyncio.ensure_future(executor.batched(many, "c")),
    ]
    await asyncio.sleep(0.05)
    gate.set()
    await blocker
    assert await asyncio.gather(*futures) == ["a", "b", "x", "c"]
    assert order == ["a+b", "x", "c"]


async def test_a_batch_function_that_raises_fails_its_items_only(executor):
    def many(items):
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError, match="database gone"):
        await executor.batched(many, 1)
    assert await executor.run(lambda: "still working") == "still working"


async def test_close_finishes_submitted_work_then_refuses(executor):
    done = []
    future = executor.run(lambda: done.append(1) or "ok")
    await asyncio.to_thread(executor.close)
    assert await future == "ok" and done == [1]
    with pytest.raises(RuntimeError, match="closed"):
        await executor.run(lambda: None)


async def test_a_burst_wakes_the_loop_once_per_batch(executor):
    gate = threading.Event()
    blocker = executor.run(gate.wait, 5)
    await asyncio.sleep(0.05)
    futures = [asyncio.ensure_future(executor.run(lambda i=i: i)) for i in range(100)]
    await asyncio.sleep(0.05)
    before = executor.batches
    gate.set()
    await blocker
    assert await asyncio.gather(*futures) == list(range(100))
    assert executor.batches - before <= 2  # not 100 thread hops


async def test_urgent_jobs_overtake_what_waits_beside_them(executor):
    """A call record an Originate waits for does not queue behind the call writer."""
    gate = threading.Event()
    order: list[str] = []

    def slow(name: str) -> str:
        order.append(name)
        return name

    def many(items: list[str]) -> list[str]:
        order.append("+".join(items))
        return items

    blocker = executor.run(gate.wait, 5)
    await asyncio.sleep(0.05)
    futures = [
        asyncio.ensure_future(executor.run(slow, "progress-1")),
        asyncio.ensure_future(executor.batched(many, "record-a", urgent=True)),
        asyncio.ensure_future(executor.run(slow, "progress-2")),
        asyncio.ensure_future(executor.batched(many, "record-b", urgent=True)),
    ]
    await asyncio.sleep(0.05)
    gate.set()
    await blocker
    assert await asyncio.gather(*futures) == ["progress-1", "record-a", "progress-2", "record-b"]
    assert order == ["record-a+record-b", "progress-1", "progress-2"]
