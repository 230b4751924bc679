"""Each call's status message: one message per call, edited as the call moves (coalesced
per chat by the edit scheduler; the final state is always shown), with its buttons: "Hang
up" while the call is live, "Do not call again" once a call that reached the customer ended
(when the do-not-call list is enforced)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import TYPE_CHECKING

from corecall.conversation import callbacks as cb
from corecall.conversation import texts
from corecall.conversation.callbacks import CallbackData
from corecall.conversation.ports import NO_BUTTONS, Button, Keyboard, UserRef
from corecall.conversation.router import ButtonHandler, Router
from corecall.domain import CallRecord, CallState
from corecall.supervision import log_crash

if TYPE_CHECKING:
    from corecall.conversation.dialogue import Conversation

log = logging.getLogger(__name__)

#: Seconds a "Do not call again" press waits for the call's final record when the status
#: message showed the end before the store had it (well under Telegram's ~15 s to answer).
FINAL_RECORD_WAIT = 5.0
#: Calls remembered as listed by their "Do not call again" press (status messages older
#: than this are not edited any more anyway).
DNC_PRESSES_REMEMBERED = 10_000


class CallStatus(Router):
    """The status messages of the calls placed through one conversation."""

    def __init__(self, conversation: Conversation) -> None:
        super().__init__(conversation)
        #: call id -> the task following it
        self.followers: dict[str, asyncio.Task] = {}
        #: call id -> (chat id, message id, the record shown)
        self.messages: dict[str, tuple[int, int, CallRecord]] = {}
        #: Calls whose number their agent listed with "Do not call again": their status
        #: message keeps saying so, whatever edit comes later (newest last, bounded).
        self._dnc_pressed: collections.OrderedDict[str, None] = collections.OrderedDict()

    def buttons(self) -> dict[str, ButtonHandler]:
        return {cb.HANG_UP: self._press_hang_up, cb.DO_NOT_CALL: self._press_do_not_call}

    async def wait_idle(self, timeout: float | None) -> bool:
        """Wait until every followed call reached its final state. False on timeout."""
        followers = list(self.followers.values())
        if not followers:
            return True
        _done, pending = await asyncio.wait(followers, timeout=timeout)
        return not pending

    async def stop(self, timeout: float, *, announce: bool) -> None:
        """Stop following calls; with ``announce``, each live call's message says the bot is
        restarting and the call goes on."""
        followers = [t for t in self.followers.values() if not t.done()]
        for task in followers:
            task.cancel()
        if followers:  # bounded: a follower that lost its cancellation cannot hold the stop
            await asyncio.wait(followers, timeout=timeout)
        if announce and self.conversation.is_bound:
            for chat_id, message_id, record in list(self.messages.values()):
                if not record.is_final:
                    self.edits.edit(
                        chat_id, message_id, texts.call_status_paused(record), NO_BUTTONS
                    )
        self.messages.clear()

    async def follow(self, user: UserRef, record: CallRecord) -> None:
        """Send ``record``'s status message to ``user`` and, unless the call already ended,
        keep it current from a task until the final state is shown."""
        text, buttons = self.status(record)
        message_id = await self.send(user.chat_id, text, buttons)
        if message_id is None or record.is_final:
            return
        self.messages[record.id] = (user.chat_id, message_id, record)
        task = asyncio.create_task(
            self._follow(record, user.chat_id, message_id), name=f"corecall-status-{record.id}"
        )
        self.followers[record.id] = task
        task.add_done_callback(log_crash)
        call_id = record.id
        task.add_done_callback(lambda _t: self.followers.pop(call_id, None))

    async def _follow(self, first: CallRecord, chat_id: int, message_id: int) -> None:
        shown = first
        try:
            async for record in self.calls.watch(first.id):
                if not record.is_final and record.state.order < shown.state.order:
                    continue  # an older state announced late: the message only moves forward
                shown = record
                self.messages[first.id] = (chat_id, message_id, record)
                ringing = record.state is CallState.AGENT_RINGING
                settle = self.conversation.ringing_settle if ringing else 0.0
                self.edits.edit(chat_id, message_id, *self.status(record), settle=settle)
                if record.is_final:
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following call %s failed", first.id)
        else:
            self.messages.pop(first.id, None)

    def status(self, record: CallRecord) -> tuple[str, Keyboard]:
        """The status message for ``record``: its text and buttons."""
        route = self.app.routes().get(record.route_code)
        text = texts.call_status(record, route.name if route else None)
        if record.is_final:
            if record.id in self._dnc_pressed:
                return texts.call_status_with_dnc(record, route.name if route else None), NO_BUTTONS
            if record.connected_at and record.agent_id > 0 and self.conversation.dnc_enforced():
                # The customer (who was on the line) asked not to be called again: one press
                # lists the number. Calls that never reached them get no button.
                listed = cb.make(cb.DO_NOT_CALL, record.agent_id, record.id)
                return text, ((Button(texts.DNC_BUTTON, listed),),)
            return text, NO_BUTTONS
        hang_up = cb.make(cb.HANG_UP, record.agent_id, record.id)
        return text, ((Button(texts.HANG_UP_BUTTON, hang_up),),)

    async def _press_hang_up(self, user: UserRef, _message_id: int, press: CallbackData) -> str:
        call_id = press.args[0]
        # Anyone may forge a hang-up button with their own id and another agent's call id:
        # only the agent who placed the call can end it. A revoked agent may still end their
        # own call (ending a call never costs anything).
        if any(c.id == call_id for c in self.calls.live_calls(user.user_id)):
            if await self.calls.hangup(call_id):
                return texts.HANGING_UP
            return texts.CALL_ALREADY_ENDED
        stored = await self.app.run_in_store(self.app.store.get_call, call_id)
        if stored is None or stored.agent_id != user.user_id:
            log.info("ignored %s's hang-up of call %s (not theirs)", user.user_id, call_id)
            return texts.NOT_YOUR_BUTTON
        return texts.CALL_ALREADY_ENDED

    async def _press_do_not_call(self, user: UserRef, message_id: int, press: CallbackData) -> str:
        call_id = press.args[0]
        # Forged data can carry the presser's id with someone else's call: the call on
        # record must be the presser's own. A revoked agent may still list their own call's
        # number (it only ever stops calls).
        record = await self.app.run_in_store(self.app.store.get_call, call_id)
        if record is None or record.agent_id != user.user_id:
            log.info("ignored %s's do-not-call press for call %s (not theirs)",
                     user.user_id, call_id)  # fmt: skip
            return texts.NOT_YOUR_BUTTON
        if not record.is_final and all(c.id != call_id for c in self.calls.live_calls()):
            # Defensive: a status message shows only states on record (CallManager.watch),
            # but the end is announced even when writing it failed for good. Wait, bounded,
            # for the final record.
            with contextlib.suppress(TimeoutError, KeyError):
                record = await self.calls.wait_final(call_id, timeout=FINAL_RECORD_WAIT)
        added = await self.app.run_in_store(
            self.app.store.dnc_add, record.target,
            reason=f"asked during call {record.id}", actor=self.actor(user),
        )  # fmt: skip
        if record.is_final:
            self._dnc_pressed[record.id] = None
            while len(self._dnc_pressed) > DNC_PRESSES_REMEMBERED:
                self._dnc_pressed.popitem(last=False)
            self.edits.edit(user.chat_id, message_id, *self.status(record))
        return texts.DNC_ADDED_TOAST if added else texts.DNC_ALREADY_TOAST
