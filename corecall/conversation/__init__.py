"""The bot's dialogue, shared by every front end (Telegram, the console, the demo).

* :class:`Conversation` — commands, menus, buttons, confirmations, refusals, live status.
* :class:`OutputPort` — what a front end implements to show messages (send, edit).
* :class:`UserRef`, :class:`Button` — who is talking; an inline button.
* :mod:`~corecall.conversation.callbacks` — the button data format.
* :class:`EditScheduler` — per-chat coalescing of message edits.
* :mod:`~corecall.conversation.texts` — every sentence the bot says.
"""

from corecall.conversation.dialogue import Conversation
from corecall.conversation.edits import EditScheduler
from corecall.conversation.ports import (
    NO_BUTTONS,
    Button,
    Keyboard,
    MessageGone,
    OutputPort,
    RateLimited,
    UserRef,
)

__all__ = [
    "NO_BUTTONS",
    "Button",
    "Conversation",
    "EditScheduler",
    "Keyboard",
    "MessageGone",
    "OutputPort",
    "RateLimited",
    "UserRef",
]
