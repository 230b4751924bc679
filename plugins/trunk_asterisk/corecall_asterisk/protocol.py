"""panoramisk glue: the AMI protocol and manager the link runs on. The only module that
touches panoramisk's internals.

panoramisk is pinned (``plugins/trunk_asterisk/pyproject.toml``) to the versions whose
internals are listed here; a new panoramisk release must be checked against this list (and
``tests/telephony``) before the pin is widened. What we rely on, beyond the public API:

``panoramisk.ami_protocol.AMIProtocol``
    ``connection_made`` sets ``transport``, ``closed``, ``responses`` (action id → pending
    :class:`~panoramisk.actions.Action`), ``factory``; ``send(data, as_list)`` registers the
    action in ``responses`` and writes it; ``handle_message(msg)`` completes the pending
    action a response belongs to (or dispatches an event to ``factory``); ``close()`` would
    move unanswered actions to ``factory.awaiting_actions`` for re-sending (we never call
    it); attributes ``encoding``, ``log``, ``config`` that ``Manager.connection_made``
    would set.
``panoramisk.manager.Manager``
    ``forgetable_actions`` (actions never re-queued), ``awaiting_actions`` (a deque of
    actions to re-send), ``send_awaiting_actions`` (called on ``FullyBooted`` to re-send
    them), ``ping`` (its own keep-alive), ``connection_lost``, ``config``, ``protocol``.
``panoramisk.actions.Action``
    a case-insensitive dict that adds an ``ActionID``; ``id``, ``future``.
``panoramisk.message.Message``
    ``Message.from_line(text)`` parses one message block; ``action_id``, ``success``.

Every automatic behaviour that could repeat an action is switched off here, three times over
(an Originate never goes through panoramisk's table at all, see
:meth:`corecall_asterisk.link.AmiLink.write_originate`): the protocol fails pending futures
on connection loss instead of re-queueing them, ``send_awaiting_actions`` drops the queue,
and ``originate`` is listed as forgettable.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from corecall_asterisk.errors import LinkLost
from corecall_asterisk.tracking import header

if TYPE_CHECKING:
    from corecall_asterisk.link import AmiLink

__all__ = ["Action", "AmiProtocol", "LinkManager", "Message"]

log = logging.getLogger(__name__)


class AmiProtocol(AMIProtocol):
    """panoramisk's protocol with a fast event path and no re-sending of anything.

    Responses (and list events that belong to a pending panoramisk action) go through
    panoramisk's own parsing and futures. Call events go straight to the link's
    :class:`CallTracker` as raw text.
    """

    closed: bool  # panoramisk's attributes this class reads and sets
    responses: dict[str, Any]

    def __init__(self, link: AmiLink) -> None:
        super().__init__()
        self.link = link
        self._buf = ""
        self._decode = codecs.getincrementaldecoder("utf-8")("replace").decode

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._buf = ""

    def data_received(self, data: bytes) -> None:
        text = self._decode(data)  # incremental: a character split across reads survives
        if self._buf:
            text = self._buf + text
        blocks = text.split("\r\n\r\n")
        self._buf = blocks.pop()
        link = self.link
        feed = link.tracker.feed
        for block in blocks:
            if not block.startswith(("Event: ", "Response: ")):
                block = block.strip("\r\n")  # stray line ends, the greeting line
                if block.startswith("Asterisk Call Manager/"):
                    block = block.partition("\r\n")[2]
                if not block:
                    continue
            if block.startswith("Event: "):
                if self.responses and "\r\nActionID: " in block:
                    aid = header(block, "\r\nActionID: ")
                    if aid in self.responses:  # part of a list a panoramisk action awaits
                        msg = Message.from_line(block)
                        if msg is not None:
                            self.handle_message(msg)
                        continue
                if block.startswith("Event: Shutdown\r\n"):
                    link.asterisk_shutting_down = True
                    # `core restart`: it comes back; calls are held meanwhile (wait_ready).
                    link.asterisk_restarting = "\r\nRestart: True" in block
                    link.tracker.pbx_gone()
                elif block.startswith("Event: FullyBooted\r\n"):
                    link.fully_booted()
                feed(block)
                continue
            msg = Message.from_line(block)
            if msg is None:
                continue
            waiter = link.originates.pop(msg.action_id, None) if msg.action_id else None
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(msg)
                continue
            self.handle_message(msg)

    def connection_lost(self, exc) -> None:
        # Do NOT call AMIProtocol.close(): it would queue unanswered actions for re-sending.
        if self.closed:
            return
        self.closed = True
        self.fail_pending(LinkLost("the AMI connection dropped before Asterisk answered"))
        self.link._connection_lost(self, exc)

    def fail_pending(self, error: Exception) -> None:
        responses, self.responses = self.responses, {}
        for action in responses.values():
            if not action.future.done():
                action.future.set_exception(error)
                action.future.exception()  # mark retrieved: nobody may be waiting any more

    def close(self) -> None:
        self.fail_pending(LinkLost("the AMI connection was closed"))
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self.transport.close()


class LinkManager(Manager):
    """panoramisk's Manager as the protocol's factory, with every automatic behaviour off:
    no reconnect of its own, no ping of its own, no re-sending of awaiting actions."""

    def __init__(self, link: AmiLink, **config: Any) -> None:
        super().__init__(
            forgetable_actions=("ping", "login", "originate", "hangup"),
            reconnect_timeout=3600,
            **config,
        )
        self.link = link

    def connection_lost(self, exc) -> None:  # pragma: no cover - the protocol never calls it
        self._drop_awaiting()

    async def send_awaiting_actions(self, *_) -> None:
        self._drop_awaiting()

    def _drop_awaiting(self) -> None:
        while self.awaiting_actions:
            action = self.awaiting_actions.popleft()
            if not action.future.done():
                action.future.set_exception(LinkLost("not re-sent after a reconnect"))
                action.future.exception()

    def connect(self, *args, **kwargs):  # pragma: no cover - AmiLink connects
        raise RuntimeError("AmiLink manages the connection")

    def ping(self) -> None:  # pragma: no cover - AmiLink pings and waits for the pong
        pass
