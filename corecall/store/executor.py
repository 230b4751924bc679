"""One worker thread for store calls, with batching.

Stores are synchronous (peewee is); the event loop must never wait on a database. A
:class:`StoreExecutor` runs every store call it is given on ONE thread, in submission order:
SQLite then never has two of our writers contending for its lock (a contended writer sleeps
in its busy handler for milliseconds), and the order of writes on record is the order in
which they were submitted.

Under a burst (200 ``/call`` at once) a thread hop per call is itself a cost: each result
wakes the event loop through its self-pipe, and each write is its own transaction. So the
worker takes every job waiting when it wakes up, runs them in order, and settles all their
futures with one wake-up of the loop. Jobs submitted with :meth:`StoreExecutor.batched`
that wait next to each other are handed to their batch function together (e.g.
:meth:`~corecall.store.Store.create_calls`: N call records in one transaction, one commit).
A batch function returns one outcome per item, in order: a result, or an exception instance
that is raised to that item's awaiter only (one bad record never fails the others).

Measured with ``bench/ami_bench.py`` (figures in docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Most jobs taken in one wake-up (bounds how long the first of them waits for its result).
MAX_BATCH = 256


class _Job:
    __slots__ = ("args", "batch", "fn", "future", "loop", "urgent")

    def __init__(self, loop, future, fn, args, batch, urgent) -> None:
        self.loop = loop
        self.future = future
        self.fn = fn
        self.args = args
        self.batch = batch  # None, or fn(list of first args) -> list of results
        self.urgent = urgent


class StoreExecutor:
    """Runs blocking store calls on one worker thread, in order, in batches.

    ``await executor.run(fn, *args)`` returns ``fn(*args)`` (or raises what it raised).
    ``await executor.batched(many, item)`` returns ``many([..., item, ...])[i]`` for the
    ``item`` it was given (raised, if it is an exception), where ``many`` received every
    adjacent waiting item of the same batch function. :meth:`close` finishes the jobs
    already submitted, then stops the thread; a job submitted after it raises
    :class:`RuntimeError`.
    """

    def __init__(self, name: str = "corecall-store") -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        #: How many wake-ups ran how many jobs (for benchmarks and tests).
        self.batches = 0
        self.jobs = 0

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Submit ``fn(*args)`` now (the order of submission is the order of execution);
        await the returned future for its result."""
        return self._submit(fn, args, None)

    def batched(
        self, many: Callable[[list[Any]], list[Any]], item: Any, *, urgent: bool = False
    ) -> asyncio.Future:
        """Submit ``item`` for the batch function ``many``; await the returned future.

        ``urgent`` jobs (a call record an Originate waits for) run before the non-urgent
        jobs waiting at the same moment (e.g. the call writer's progress), in their own
        submission order; use it only for jobs independent of those (a new call's record
        is: nothing else can refer to a call before its record exists)."""
        return self._submit(None, (item,), many, urgent)

    def _submit(self, fn, args, batch, urgent=False) -> asyncio.Future:
        if self._closed:
            raise RuntimeError(f"store executor {self.name!r} is closed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._ensure_thread()
        self._jobs.put(_Job(loop, future, fn, args, batch, urgent))
        return future

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()

    def close(self, timeout: float | None = 10.0) -> None:
        """Run what was submitted, then stop the thread (bounded wait). Safe to call twice."""
        self._closed = True
        thread = self._thread
        if thread is None:
            return
        self._jobs.put(None)
        if thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.error("store executor %r still busy after %.0f s", self.name, timeout)

    # ---- the worker thread
    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            jobs = [job]
            stop = False
            while len(jobs) < MAX_BATCH:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
            self._run_jobs(jobs)
            if stop:
                return

    def _run_jobs(self, jobs: list[_Job]) -> None:
        jobs.sort(key=lambda job: not job.urgent)  # stable: order kept within each kind
        self.batches += 1
        self.jobs += len(jobs)
        settled: list[tuple[_Job, bool, Any]] = []
        i = 0
        while i < len(jobs):
            job = jobs[i]
            if job.batch is None:
                settled.append(_call(job, job.fn, *job.args))
                i += 1
                continue
            j = i + 1
            # ==, not is: each access to a bound method (store.create_calls) is a new object.
            while j < len(jobs) and jobs[j].batch == job.batch:
                j += 1
            settled.extend(_call_batch(jobs[i:j]))
            i = j
        by_loop: dict[Any, list] = collections.defaultdict(list)
        for item in settled:
            by_loop[item[0].loop].append(item)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, items)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass


def _call(job: _Job, fn, *args) -> tuple[_Job, bool, Any]:
    try:
        return job, True, fn(*args)
    except BaseException as exc:  # handed to the awaiting coroutine, raised there
        return job, False, exc


def _call_batch(jobs: list[_Job]) -> list[tuple[_Job, bool, Any]]:
    many = jobs[0].batch
    try:
        results = many([j.args[0] for j in jobs])
        if len(results) != len(jobs):
            raise RuntimeError(
                f"batch function {many!r} returned {len(results)} results for {len(jobs)} items"
            )
    except BaseException as exc:  # every item of the batch gets the error
        return [(j, False, exc) for j in jobs]
    return [(j, not isinstance(r, BaseException), r) for j, r in zip(jobs, results, strict=True)]


def _settle(items: list[tuple[_Job, bool, Any]]) -> None:
    for job, ok, value in items:
        if job.future.done():  # the awaiting task was cancelled
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)
