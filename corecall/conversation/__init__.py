"""The bot's dialogue, shared by every front end (Telegram, the console, the demo).

* :class:`Conversation` — checks every input and hands it to the part that owns it:
  :mod:`~corecall.conversation.agent_commands`, :mod:`~corecall.conversation.admin_commands`,
  :mod:`~corecall.conversation.call_status` (each a :class:`~corecall.conversation.router.Router`);
  ``/live`` is :mod:`~corecall.conversation.live_view`.
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
