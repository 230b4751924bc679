"""Supervised background tasks: nothing the product starts in the background dies silently.

Every long-lived task (the call writer, the trunk drivers' links, the status-edit workers,
the bot) is started through a :class:`Supervisor`. When one ends with an exception:

* the crash is logged at ERROR with the task's name and the traceback;
* a task started with ``restart=True`` is started again after a back-off (0.1 s doubling
  to 5 s), unless it crashed ``max_restarts`` times within ``window`` seconds;
* otherwise (or when the restarts are used up) the supervisor records a
  :class:`TaskFailure`, logs it at CRITICAL and wakes :meth:`Supervisor.wait_failed`: the
  process's main loop (``corecall run``) waits on it beside its own work and stops with a
  clear error naming the task, instead of running on half-dead.

Tasks that finish normally, or are cancelled, are not restarted. ``Supervisor.call_soon``
/ ``call_later`` do the same for plain callbacks (the call watchdogs): an exception is
logged with the callback's name instead of asyncio's anonymous "Exception in callback".

One supervisor serves one application (:attr:`corecall.app.App.supervisor`); a trunk
driver reaches it as ``self.context.app.supervisor``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

log = logging.getLogger(__name__)

#: Back-off before a restart: starts here and doubles up to MAX_BACKOFF (seconds).
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0


@attrs.frozen
class TaskFailure:
    """A supervised task crashed and was not (or no longer) restarted."""

    name: str
    error: BaseException
    restarts: int = 0

    def __str__(self) -> str:
        again = f" after {self.restarts} restart(s)" if self.restarts else ""
        return (
            f"background task {self.name!r} crashed{again}: "
            f"{type(self.error).__name__}: {self.error}"
        )


class Supervisor:
    """Starts and watches background tasks (see the module docstring)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._failure: TaskFailure | None = None
        self._failed: asyncio.Event | None = None

    # ---- state
    @property
    def failure(self) -> TaskFailure | None:
        """The first task failure that was not recovered, if any."""
        return self._failure

    def running(self) -> list[str]:
        return sorted(name for name, task in self._tasks.items() if not task.done())

    async def wait_failed(self) -> TaskFailure:
        """Return when a task has failed for good (never, if none does)."""
        if self._failed is None:
            self._failed = asyncio.Event()
        if self._failure is not None:
            return self._failure
        await self._failed.wait()
        assert self._failure is not None
        return self._failure

    # ---- starting
    def start(
        self,
        name: str,
        factory: Callable[[], Awaitable[Any]],
        *,
        restart: bool = True,
        max_restarts: int = 5,
        window: float = 60.0,
    ) -> asyncio.Task[None]:
        """Run ``factory()`` as the task ``name`` (names are unique among running tasks).

        ``restart``: start it again after a crash (at most ``max_restarts`` crashes within
        ``window`` seconds; one more is a failure for good). Returns the supervising task;
        cancel it (or call :meth:`stop`) to stop the work.
        """
        current = self._tasks.get(name)
        if current is not None and not current.done():
            raise RuntimeError(f"a background task named {name!r} is already running")
        task = asyncio.get_running_loop().create_task(
            self._run(name, factory, restart, max_restarts, window), name=name
        )
        self._tasks[name] = task
        task.add_done_callback(functools.partial(self._forget, name))
        return task

    def _forget(self, name: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(name) is task:
            del self._tasks[name]

    async def _run(
        self,
        name: str,
        factory: Callable[[], Awaitable[Any]],
        restart: bool,
        max_restarts: int,
        window: float,
    ) -> None:
        crashes: deque[float] = deque()
        restarts = 0
        backoff = FIRST_BACKOFF
        while True:
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                now = self._clock()
                crashes.append(now)
                while crashes and crashes[0] < now - window:
                    crashes.popleft()
                if restart and len(crashes) <= max_restarts:
                    log.error("background task %r crashed; restarting it in %.1f s", name,
                              backoff, exc_info=exc)  # fmt: skip
                    restarts += 1
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                log.error("background task %r crashed", name, exc_info=exc)
                self.fail(TaskFailure(name, exc, restarts))
                return

    def fail(self, failure: TaskFailure) -> None:
        """Record a failure for good (also for work not started here, e.g. a driver that
        gives up): logged at CRITICAL; :meth:`wait_failed` returns it."""
        log.critical("%s; corecall cannot go on without it", failure)
        if self._failure is None:
            self._failure = failure
        if self._failed is None:
            try:
                self._failed = asyncio.Event()
            except RuntimeError:  # pragma: no cover - no loop: nobody can wait anyway
                return
        self._failed.set()

    # ---- callbacks
    def call_later(
        self, delay: float, name: str, callback: Callable[..., Any], *args: Any
    ) -> asyncio.TimerHandle:
        """``loop.call_later`` whose exceptions are logged with ``name`` (not restarted:
        a callback is one-shot)."""
        return asyncio.get_running_loop().call_later(delay, self._guarded, name, callback, args)

    @staticmethod
    def _guarded(name: str, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("background callback %r failed", name)

    # ---- stopping
    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel every task and wait (at most ``timeout`` seconds) for them to end."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                log.error("background task %r did not stop within %.0f s", task.get_name(),
                          timeout)  # fmt: skip


def log_crash(task: asyncio.Task[Any]) -> None:
    """A done-callback for short-lived tasks (one call's status follower, a chat's edit
    worker, one simulated call): an exception they end with is logged with the task's name
    at once, not as asyncio's "Task exception was never retrieved" whenever it is collected.
    Short-lived work is not restarted: what it was doing has a safety net of its own (the
    call watchdog ends a call nobody reports on)."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background task %r crashed", task.get_name(), exc_info=exc)


__all__ = ["Supervisor", "TaskFailure", "log_crash"]
