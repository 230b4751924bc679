"""``/live`` for admins: one message showing every live call and today's totals, edited in
place while it is open.

One view per chat: ``/live`` again replaces the previous view (which says it stopped). The
view is refreshed every :data:`REFRESH_SECONDS` through the conversation's edit scheduler, so
it stays within the chat's edit budget (at most one edit per second per chat, shared with
call status messages, and an edit that would change nothing is not sent). It stops updating
after :data:`DURATION_SECONDS` or when its owner presses **⏹ Stop**, and says so.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from corecall.conversation import callbacks as cb
from corecall.conversation.ports import NO_BUTTONS, Button, UserRef
from corecall.live import Snapshot, render_text, take_snapshot
from corecall.store import run_blocking

if TYPE_CHECKING:
    from corecall.conversation.dialogue import Conversation

log = logging.getLogger(__name__)

#: Seconds between refreshes of an open view.
REFRESH_SECONDS = 5.0
#: Seconds a view stays open.
DURATION_SECONDS = 600.0

STOP_BUTTON = "⏹ Stop"
LIVE_FOOTER = "Updates every {refresh:.0f} s for {minutes:.0f} min."
STOPPED_BY_BUTTON = "⏹ Stopped. /live to start again."
STOPPED_AFTER = "⏹ Stopped updating after {minutes:.0f} min. /live to start again."
REPLACED = "⏹ Replaced by a newer /live."
STOPPED_TOAST = "Live view stopped."
NOT_OPEN_TOAST = "This live view has already stopped."


class LiveViews:
    """The open live views of one conversation (one per chat)."""

    def __init__(
        self,
        conversation: Conversation,
        *,
        refresh: float = REFRESH_SECONDS,
        duration: float = DURATION_SECONDS,
    ) -> None:
        self.conversation = conversation
        self.refresh = refresh
        self.duration = duration
        #: chat id -> (message id, the task refreshing it)
        self._open: dict[int, tuple[int, asyncio.Task]] = {}

    def _footer(self) -> str:
        return LIVE_FOOTER.format(refresh=self.refresh, minutes=self.duration / 60)

    async def _snapshot(self) -> Snapshot:
        # The conversation's clock: the same one the call manager stamps calls with.
        now = self.conversation.clock()
        return await run_blocking(take_snapshot, self.conversation.app.store, now)

    def _stop_buttons(self, user: UserRef) -> tuple[tuple[Button, ...], ...]:
        return ((Button(STOP_BUTTON, cb.make(cb.STOP_LIVE, user.user_id)),),)

    async def open(self, user: UserRef) -> None:
        """Send a new view to the user's chat and keep it fresh."""
        await self._close(user.chat_id, REPLACED)
        snapshot = await self._snapshot()
        message_id = await self.conversation.send(
            user.chat_id, render_text(snapshot, footer=self._footer()), self._stop_buttons(user)
        )
        if message_id is None:
            return
        task = asyncio.create_task(
            self._follow(user, message_id), name=f"corecall-live-{user.chat_id}"
        )
        self._open[user.chat_id] = (message_id, task)

    async def _follow(self, user: UserRef, message_id: int) -> None:
        conversation = self.conversation
        started = conversation.monotonic()
        snapshot: Snapshot | None = None
        try:
            while conversation.monotonic() - started < self.duration:
                await conversation.sleep(self.refresh)
                snapshot = await self._snapshot()
                conversation.edits.edit(
                    user.chat_id, message_id, render_text(snapshot, footer=self._footer()),
                    self._stop_buttons(user),
                )  # fmt: skip
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live view in chat %s failed; stopping it", user.chat_id)
        if self._open.get(user.chat_id, (None,))[0] == message_id:
            del self._open[user.chat_id]
        final = snapshot or await self._snapshot()
        footer = STOPPED_AFTER.format(minutes=self.duration / 60)
        conversation.edits.edit(user.chat_id, message_id, render_text(final, footer=footer),
                                NO_BUTTONS)  # fmt: skip

    async def press_stop(self, user: UserRef, message_id: int) -> str:
        """The view's Stop button (already checked to be the presser's own)."""
        current = self._open.get(user.chat_id)
        if current is None or current[0] != message_id:
            self.conversation.edits.edit(
                user.chat_id, message_id,
                render_text(await self._snapshot(), footer=STOPPED_BY_BUTTON), NO_BUTTONS,
            )  # fmt: skip
            return NOT_OPEN_TOAST
        await self._close(user.chat_id, STOPPED_BY_BUTTON)
        return STOPPED_TOAST

    async def _close(self, chat_id: int, footer: str) -> None:
        current = self._open.pop(chat_id, None)
        if current is None:
            return
        message_id, task = current
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        snapshot = await self._snapshot()
        self.conversation.edits.edit(chat_id, message_id, render_text(snapshot, footer=footer),
                                     NO_BUTTONS)  # fmt: skip

    async def close_all(self, timeout: float = 2.0) -> None:
        """Stop every view without editing (the process is stopping); bounded by
        ``timeout`` seconds, like every other stop path."""
        views, self._open = list(self._open.values()), {}
        tasks = [task for _message_id, task in views if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def is_open(self, chat_id: int) -> bool:
        return chat_id in self._open


__all__ = ["DURATION_SECONDS", "REFRESH_SECONDS", "LiveViews"]
