"""The Telegram front end (Telethon).

* :func:`attach_handlers` — attach the bot to any ``TelegramClient`` (no login needed).
* :func:`run_bot` — ``corecall run``: log in and serve until SIGTERM.
"""

from corecall.telegram.adapter import TelegramPort, attach_handlers
from corecall.telegram.runner import run_bot

__all__ = ["TelegramPort", "attach_handlers", "run_bot"]
