"""What every part of the dialogue shares: :class:`Router`, one job's commands and buttons
(aiogram's routers), with the conversation's helpers at hand.

The parts: :mod:`~corecall.conversation.agent_commands` (what agents type: ``/call``,
``/route``...), :mod:`~corecall.conversation.admin_commands` (super admins: ``/authorize``,
``/dnc``, ``/live``...) and :mod:`~corecall.conversation.call_status` (each call's status
message and its buttons). :class:`~corecall.conversation.dialogue.Conversation` owns them,
dispatches text and button presses to them, and holds what they share (the output port,
the edit scheduler, the menus).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from corecall.conversation.callbacks import CallbackData
from corecall.conversation.ports import NO_BUTTONS, Keyboard, UserRef

if TYPE_CHECKING:
    from corecall.agents import AgentAdmin
    from corecall.app import App
    from corecall.calls import CallManager
    from corecall.conversation.dialogue import Conversation
    from corecall.conversation.edits import EditScheduler
    from corecall.conversation.menus import LiveMenu, MenuBook
    from corecall.domain import Agent

#: A command handler: (who, the text after the command or None, when it was sent or None).
CommandHandler = Callable[[UserRef, str | None, _dt.datetime | None], Awaitable[None]]
#: A button handler: (who, the message the button is on, the parsed press) -> a toast or None.
ButtonHandler = Callable[[UserRef, int, CallbackData], Awaitable[str | None]]

#: A route code as typed in ``/route M`` or ``/setroute 42 D``.
ROUTE_CODE_RE = re.compile(r"[A-Za-z0-9]{1,8}")


class Router:
    """One job's part of the dialogue. Subclasses list their commands (by name, without
    the slash) and the button actions they answer (:mod:`corecall.conversation.callbacks`)."""

    def __init__(self, conversation: Conversation) -> None:
        self.conversation = conversation

    def commands(self) -> dict[str, CommandHandler]:
        return {}

    def buttons(self) -> dict[str, ButtonHandler]:
        return {}

    # What the parts share, from the conversation.
    @property
    def app(self) -> App:
        return self.conversation.app

    @property
    def calls(self) -> CallManager:
        return self.conversation.calls

    @property
    def admin(self) -> AgentAdmin:
        return self.conversation.admin

    @property
    def menus(self) -> MenuBook:
        return self.conversation.menus

    @property
    def edits(self) -> EditScheduler:
        return self.conversation.edits

    def is_admin(self, user_id: int) -> bool:
        return self.conversation.is_admin(user_id)

    async def agent(self, user_id: int) -> Agent | None:
        return await self.conversation.agent(user_id)

    async def authorized_agent(self, user: UserRef) -> Agent | None:
        return await self.conversation.authorized_agent(user)

    def actor(self, user: UserRef) -> str:
        return self.conversation.actor(user)

    async def reply(self, user: UserRef, text: str) -> int | None:
        return await self.conversation.send(user.chat_id, text)

    async def send(self, chat_id: int, text: str, buttons: Keyboard = NO_BUTTONS) -> int | None:
        return await self.conversation.send(chat_id, text, buttons)

    def open_menu(
        self, owner: int, kind: str, step: str, choices: tuple[str, ...] = (), *,
        subject: str = "", chat_id: int | None = None, message_id: int | None = None,
    ) -> LiveMenu:  # fmt: skip
        return self.conversation.open_menu(
            owner, kind, step, choices, subject=subject, chat_id=chat_id, message_id=message_id
        )
