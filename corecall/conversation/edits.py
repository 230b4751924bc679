"""The per-chat edit scheduler: at most one message update per interval per chat.

Telegram allows about one message edit per second per chat and answers faster edits with
FloodWait. A call can change state several times a second, so status edits are coalesced:
each chat has at most one pending text per message, a newer text replaces an older pending
one, and a small worker per chat sends the newest pending text as soon as the interval since
the chat's last send or edit has passed. The last text scheduled for a message is always
delivered (unless the message can no longer be edited): nothing newer can replace it.

A text for a state that usually lasts only a moment (the agent's own phone ringing, which
they pick up within seconds) can be scheduled with ``settle`` seconds: it is sent no earlier
than that, so when the next state comes first it replaces it unsent and the chat is spared an
edit (issue 11: a normal call in 6 requests, not 7). A state that lasts is still shown.

When the port raises :class:`~corecall.conversation.ports.RateLimited` (FloodWait), the
worker sleeps the given seconds and then sends whatever is newest by then, so a wait never
makes the status fall behind. Time and sleeping are injectable so tests run instantly.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable

from corecall.conversation.ports import Keyboard, MessageGone, OutputPort, RateLimited
from corecall.supervision import log_crash

log = logging.getLogger(__name__)

Content = tuple[str, Keyboard]

#: Attempts for an edit that fails for an unexpected reason (network hiccup) before it is
#: dropped; each waits a little longer. FloodWait and "message gone" are handled apart.
MAX_ATTEMPTS = 4
RETRY_DELAY = 1.0
#: How many delivered contents are remembered (to skip edits that would change nothing).
REMEMBERED = 4096


class EditScheduler:
    def __init__(
        self,
        port: OutputPort,
        *,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_sent: Callable[[int], None] | None = None,
        on_rate_limited: Callable[[int, float], None] | None = None,
    ) -> None:
        self.port = port
        # Observers (the plugins' corecall_chat_edit_sent / corecall_chat_rate_limited).
        self._on_sent = on_sent
        self._on_rate_limited = on_rate_limited
        self.min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._pending: dict[int, dict[int, Content]] = collections.defaultdict(dict)
        # (chat, message) -> monotonic time before which its pending text is not sent
        self._not_before: dict[tuple[int, int], float] = {}
        # chat -> set when a new text arrives for a worker waiting on a settling text
        self._wake: dict[int, asyncio.Event] = {}
        self._last_activity: dict[int, float] = {}
        self._workers: dict[int, asyncio.Task] = {}
        self._closed = False  # set by close(): workers end on it, not only on cancellation
        self._delivered: collections.OrderedDict[tuple[int, int], Content] = (
            collections.OrderedDict()
        )

    # ---- what the conversation calls
    def note_sent(self, chat_id: int, message_id: int, text: str, buttons: Keyboard) -> None:
        """A message was just sent to ``chat_id``: it counts towards the chat's rate."""
        self._last_activity[chat_id] = self._clock()
        self._remember(chat_id, message_id, (text, buttons))

    def edit(
        self, chat_id: int, message_id: int, text: str, buttons: Keyboard, *,
        settle: float = 0.0,
    ) -> None:  # fmt: skip
        """Schedule an edit; returns at once. A newer edit of the same message replaces this
        one if it has not been sent yet. ``settle`` (seconds): send this text no earlier than
        that from now, so that a newer edit made meanwhile replaces it unseen (for a state
        that usually lasts only a moment); 0 sends it as soon as the rate allows."""
        if self._closed:
            return  # closed: edits are dropped (see close())
        content = (text, buttons)
        pending = self._pending[chat_id]
        key = (chat_id, message_id)
        if message_id not in pending and self._delivered.get(key) == content:
            return  # already showing exactly this
        pending[message_id] = content
        if settle > 0:
            self._not_before[key] = self._clock() + settle
        else:
            self._not_before.pop(key, None)
        wake = self._wake.get(chat_id)
        if wake is not None:
            wake.set()
        worker = self._workers.get(chat_id)
        if worker is None or worker.done():
            worker = asyncio.create_task(self._work(chat_id), name=f"corecall-edits-{chat_id}")
            worker.add_done_callback(log_crash)  # a crash is logged by name, at once
            self._workers[chat_id] = worker

    def pending(self, chat_id: int | None = None) -> int:
        """How many edits wait to be sent (in one chat, or in all)."""
        if chat_id is not None:
            return len(self._pending.get(chat_id, {}))
        return sum(len(p) for p in self._pending.values())

    def pending_content(self, chat_id: int, message_id: int) -> Content | None:
        """The text and buttons waiting to be shown on a message, if any."""
        return self._pending.get(chat_id, {}).get(message_id)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every scheduled edit was sent (or dropped). True when all done."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            workers = [w for w in self._workers.values() if not w.done()]
            if not workers:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(workers, timeout=remaining)

    async def close(self, timeout: float = 2.0) -> None:
        """Stop the workers (pending edits are dropped). Returns within ``timeout`` seconds
        whatever the timing: the workers stop on the closed flag and their emptied queues
        even if a cancellation is lost inside the port (``asyncio.wait_for`` on Python 3.11
        can swallow one); a worker still running after that is logged and left behind."""
        self._closed = True
        for pending in self._pending.values():
            pending.clear()
        self._not_before.clear()
        workers = [w for w in self._workers.values() if not w.done()]
        for worker in workers:
            worker.cancel()
        if workers:
            _done, running = await asyncio.wait(workers, timeout=timeout)
            for worker in running:
                log.error("edit worker %s did not stop within %g s", worker.get_name(), timeout)
        self._workers.clear()
        self._pending.clear()

    # ---- the worker
    async def _work(self, chat_id: int) -> None:
        pending = self._pending[chat_id]
        failures: dict[int, int] = collections.defaultdict(int)
        try:
            while pending and not self._closed:
                now = self._clock()
                wait = self._last_activity.get(chat_id, float("-inf")) + self.min_interval
                wait -= now
                if wait > 0:
                    await self._sleep(wait)
                    continue  # re-check: the newest text may have changed meanwhile
                due = {m: self._not_before.get((chat_id, m), now) for m in pending}
                message_id = min(due, key=due.__getitem__)  # the first one ready, in order
                if due[message_id] > now:
                    # Until it is due, or until a newer text replaces it (sent at once).
                    await self._sleep_or_wake(chat_id, due[message_id] - now)
                    continue
                content = pending.pop(message_id)
                self._not_before.pop((chat_id, message_id), None)
                try:
                    await self.port.edit(chat_id, message_id, *content)
                except RateLimited as exc:
                    if self._on_rate_limited is not None:
                        self._on_rate_limited(chat_id, exc.seconds)
                    log.info("chat %s: rate limited for %.0f s; keeping the newest text",
                             chat_id, exc.seconds)  # fmt: skip
                    pending.setdefault(message_id, content)  # unless something newer came
                    self._last_activity[chat_id] = self._clock()
                    await self._sleep(max(exc.seconds, 0.0))
                    continue
                except MessageGone:
                    log.info("chat %s: message %s can't be edited any more", chat_id, message_id)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    failures[message_id] += 1
                    if failures[message_id] >= MAX_ATTEMPTS:
                        log.exception("chat %s: giving up editing message %s", chat_id, message_id)
                    else:
                        log.warning("chat %s: editing message %s failed; retrying",
                                    chat_id, message_id, exc_info=True)  # fmt: skip
                        pending.setdefault(message_id, content)
                        self._last_activity[chat_id] = self._clock()
                        await self._sleep(RETRY_DELAY * failures[message_id])
                        continue
                else:
                    self._remember(chat_id, message_id, content)
                    if self._on_sent is not None:
                        self._on_sent(chat_id)
                self._last_activity[chat_id] = self._clock()
        finally:
            self._wake.pop(chat_id, None)
            if not pending:
                self._pending.pop(chat_id, None)
            if self._workers.get(chat_id) is asyncio.current_task():
                del self._workers[chat_id]

    async def _sleep_or_wake(self, chat_id: int, seconds: float) -> None:
        wake = self._wake.setdefault(chat_id, asyncio.Event())
        wake.clear()
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        woken = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            woken.cancel()

    def _remember(self, chat_id: int, message_id: int, content: Content) -> None:
        key = (chat_id, message_id)
        self._delivered[key] = content
        self._delivered.move_to_end(key)
        while len(self._delivered) > REMEMBERED:
            self._delivered.popitem(last=False)
