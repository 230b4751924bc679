"""``corecall run``: the real bot, Telegram plus the configured trunk drivers.

Start-up order: credentials are checked first (a missing one is a
:class:`~corecall.errors.ConfigError` naming it and its environment variable), then the
store is opened and the trunk drivers are started (an unreachable Asterisk is a clear
:class:`~corecall.errors.TelephonyError`), then Telegram is logged in. Stopping (SIGTERM or
Ctrl-C) stops intake, tells agents with a live call that the call goes on, disconnects from
Telegram and stops the drivers: live calls keep going in Asterisk and every record is kept
(unfinished ones are reconciled on the next start).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

from telethon import TelegramClient, errors

from corecall import systemd
from corecall.app import App
from corecall.calls import CallManager
from corecall.conversation import Conversation
from corecall.errors import ConfigError, CorecallError, TelephonyError
from corecall.heap import freeze_startup_heap, thaw_startup_heap
from corecall.telegram.adapter import attach_handlers

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 5.0
#: Seconds given to Telethon's disconnect on stop.
DISCONNECT_TIMEOUT = 5.0


def check_credentials(app: App) -> None:
    """Raise ConfigError naming every missing Telegram credential and how to set it."""
    bot = app.config.bot
    missing = []
    if not bot.token:
        missing.append("the bot token (CORECALL_BOT_TOKEN or [bot] token; from @BotFather)")
    if not bot.api_id:
        missing.append("the api id (CORECALL_API_ID or [bot] api_id; from my.telegram.org)")
    if not bot.api_hash:
        missing.append("the api hash (CORECALL_API_HASH or [bot] api_hash; from my.telegram.org)")
    where = f" in {app.config.path}" if app.config.path else " in a config file (corecall init)"
    if missing:
        raise ConfigError(
            "cannot start the Telegram bot: missing "
            + "; ".join(missing)
            + f". Set the environment variables or the keys{where}. "
            "To try corecall without Telegram, run `corecall demo`."
        )
    malformed = credential_shape_problems(bot.token, bot.api_hash)
    if malformed:
        raise ConfigError(
            "cannot start the Telegram bot: " + "; ".join(malformed) + f". Set it again{where} "
            "or in the environment (nothing was sent to Telegram)."
        )


#: A bot token as @BotFather gives it: the bot's numeric id, a colon, then (today) 35
#: characters of the URL-safe base64 alphabet (https://core.telegram.org/bots/api#authorizing-your-bot).
_TOKEN_SHAPE = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{30,64}")
#: An api_hash from my.telegram.org: 32 hexadecimal digits.
_API_HASH_SHAPE = re.compile(r"[0-9a-fA-F]{32}")


def credential_shape_problems(token: str, api_hash: str) -> list[str]:
    """What is wrong with the shape of the bot token and api hash, checked before anything
    is sent to Telegram (a malformed token is refused by Telegram only after a connection,
    or not at all when Telegram cannot be reached). The values are never quoted: only their
    length and what is missing."""
    problems = []
    if not _TOKEN_SHAPE.fullmatch(token):
        colon = "" if ":" in token else ", with no colon"
        problems.append(
            "the bot token (CORECALL_BOT_TOKEN or [bot] token) is not shaped like one from "
            "@BotFather: the bot's id in digits, a colon, then 30 to 64 letters, digits, '_' "
            "or '-' (35 in the tokens @BotFather gives today, like 123456789:AAH...); the one "
            f"set is {len(token)} characters long{colon}"
        )
    if not _API_HASH_SHAPE.fullmatch(api_hash):
        problems.append(
            "the api hash (CORECALL_API_HASH or [bot] api_hash) is not 32 hexadecimal digits "
            f"as my.telegram.org shows it; the one set is {len(api_hash)} characters long"
        )
    return problems


def prepare_session_file(path: Path) -> Path:
    """Make sure the session file (it holds the bot's login) is readable by its owner only:
    the directory is created 0700, the file 0600 before Telethon opens it."""
    if path.suffix != ".session":  # Telethon would add it; add it ourselves to chmod the file
        path = path.with_name(path.name + ".session")
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
            os.chmod(path.parent, 0o700)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the Telegram session file: {exc.strerror}",
            path=str(path),
            key="bot.session_path",
        ) from None
    return path


def _pbx_advice(app: App) -> str:
    """What to do when a trunk driver cannot reach its PBX. Driver-neutral: each driver's
    ``problems()`` already names its own PBX and how to fix the connection."""
    drivers = sorted({t.driver for t in app.config.trunks.values()} - {"simulated"})
    used = f" (driver {', '.join(repr(d) for d in drivers)})" if drivers else ""
    return (
        f"Fix the trunks' PBX connection{used}, or set the trunks' driver to \"simulated\" to "
        "run without a PBX."
    )


async def start_calls(app: App, role: str = "run") -> CallManager:
    """Become the one process serving the store's calls (``role``: run, console, demo),
    open the store, start the trunk drivers; clear errors when Asterisk can't be reached
    or a trunk driver did not start."""
    app.claim_serving(role)
    manager = app.call_manager(services=True)
    try:
        await manager.start()
    except BaseException as exc:
        await manager.stop(drain_timeout=1.0)
        if isinstance(exc, CorecallError) and not isinstance(exc, TelephonyError):
            raise
        if not isinstance(exc, TelephonyError | OSError | TimeoutError):
            raise
        raise TelephonyError(
            f"cannot start the trunk drivers: {exc or type(exc).__name__}. {_pbx_advice(app)}"
        ) from None
    # The AMI driver keeps reconnecting in the background instead of failing its start; at
    # start-up a PBX that can't be reached is an error the operator must see now.
    problems = [p for driver in manager.drivers.values() for p in driver.problems()]
    problems += manager.failed_drivers.values()  # named with its plugin and trunks
    if problems:
        await manager.stop(drain_timeout=1.0)
        raise TelephonyError(f"{'; '.join(problems)}. {_pbx_advice(app)}")
    return manager


async def serve(
    app: App,
    client: TelegramClient,
    manager: CallManager,
    *,
    stop: asyncio.Event | None = None,
    conversation_factory: Callable[[App, CallManager], Conversation] = Conversation,
) -> None:
    """Run the bot on an already logged-in ``client`` until it disconnects, ``stop`` is set
    (SIGTERM and SIGINT set it) or a supervised background task fails for good. Stops
    intake, tells live calls' agents that the call goes on, then disconnects and stops the
    trunk drivers without ending calls. In the last case it then raises
    :class:`~corecall.errors.CorecallError` naming the task (``corecall run`` exits 1)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    conversation = conversation_factory(app, manager)
    attach_handlers(client, conversation)
    disconnected = asyncio.ensure_future(client.disconnected)
    stopping = asyncio.ensure_future(stop.wait())
    failed = asyncio.ensure_future(manager.supervisor.wait_failed())
    health = asyncio.create_task(report_health(app, client, manager), name="corecall-health")
    # Telegram is logged in and every driver reported no problem (start_calls): ready.
    links = ", ".join(sorted(f"{d}/{link}" for d, link in _links(manager))) or "none"
    systemd.notify("READY=1", f"STATUS=serving; trunk links up: {links}")
    # What start-up made lives as long as the process: out of the collector's way (heap.py).
    freeze_startup_heap()
    try:
        await asyncio.wait({disconnected, stopping, failed}, return_when=asyncio.FIRST_COMPLETED)
        log.info("stopping: no new commands; live calls continue in the PBX")
        systemd.notify("STOPPING=1", "STATUS=stopping: live calls continue in the PBX")
        conversation.accepting = False
        await conversation.shutdown(SHUTDOWN_TIMEOUT)
    finally:
        thaw_startup_heap()
        health.cancel()
        await asyncio.gather(health, return_exceptions=True)
        for signum in handled:
            loop.remove_signal_handler(signum)
        stopping.cancel()
        failure = failed.result() if failed.done() else None
        failed.cancel()
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT):
                await client.disconnect()
        except TimeoutError:
            log.error("Telegram did not disconnect within %g s; stopping anyway",
                      DISCONNECT_TIMEOUT)  # fmt: skip
        disconnected.cancel()
        await manager.stop()
    if failure is not None:
        raise CorecallError(f"corecall stopped: {failure}")


def _links(manager: CallManager) -> list[tuple[str, str]]:
    return [(name, link) for name, d in manager.drivers.items() for link in d.link_states]


def health_report(app: App, client: TelegramClient, manager: CallManager) -> dict:
    """What ``corecall health`` reads: each part's state and the problems."""
    parts: dict[str, bool] = {"telegram": bool(client.is_connected())}
    try:
        app.store.schema_version()
        parts["store"] = True
    except CorecallError:
        parts["store"] = False
    for name, driver in manager.drivers.items():
        for link, up in sorted(driver.link_states.items()):
            parts[f"link {name}/{link}"] = up
    problems = [p for driver in manager.drivers.values() for p in driver.problems()]
    problems += list(manager.failed_drivers.values())
    problems += [f"{part} is down" for part, up in parts.items() if not up]
    if manager.services is not None:  # e.g. metrics off: its port was taken
        problems += manager.services.problems()
    return {"parts": parts, "problems": problems}


async def report_health(app: App, client: TelegramClient, manager: CallManager) -> None:
    """Rewrite ``<data_dir>/health.json`` every few seconds while the bot runs."""
    path = systemd.health_path(app.config.data_dir)
    while True:
        try:
            report = await asyncio.to_thread(health_report, app, client, manager)
            await asyncio.to_thread(systemd.write_health, path, report)
        except OSError as exc:
            log.error("cannot write the health report %s: %s", path, exc)
        await asyncio.sleep(systemd.HEALTH_INTERVAL)


async def _run(app: App) -> None:
    check_credentials(app)
    bot = app.config.bot
    session = prepare_session_file(app.config.session_path)
    app.store  # noqa: B018 - open (and migrate) the store before anything else
    manager = await start_calls(app)
    client = TelegramClient(str(session), bot.api_id, bot.api_hash, connection_retries=2)
    try:
        try:
            with _quiet_telethon():
                await client.start(bot_token=bot.token)
        except (errors.AccessTokenInvalidError, errors.AccessTokenExpiredError) as exc:
            raise ConfigError(
                f"Telegram refused the bot token ({type(exc).__name__}); get a valid one from "
                "@BotFather and set CORECALL_BOT_TOKEN or [bot] token"
            ) from None
        except errors.ApiIdInvalidError:
            raise ConfigError(
                "Telegram refused the api id / api hash pair; copy both from my.telegram.org "
                "into CORECALL_API_ID and CORECALL_API_HASH (or [bot] api_id / api_hash)"
            ) from None
        except (OSError, ConnectionError, EOFError, TimeoutError) as exc:
            raise CorecallError(_unreachable(client, exc)) from None
        os.chmod(session, 0o600)  # in case Telethon re-created it
        # From now on FloodWait reaches corecall, which waits and coalesces status edits.
        client.flood_sleep_threshold = 0
        if not bot.super_admins:
            log.warning("no [bot] super_admins configured: nobody can use admin commands")
        me = await client.get_me()
        log.info("corecall bot @%s is running", getattr(me, "username", "?"))
    except BaseException:
        await client.disconnect()
        await manager.stop()
        raise
    await serve(app, client, manager)


def _unreachable(client: TelegramClient, exc: BaseException) -> str:
    """One line: which Telegram server could not be reached, what happened, what to check."""
    session = client.session
    where = f"{getattr(session, 'server_address', '?')}:{getattr(session, 'port', '?')}"
    if isinstance(exc, EOFError):  # asyncio.IncompleteReadError: something else answered
        what = (
            "the connection was closed before Telegram answered, so something that is not "
            "Telegram (a proxy, firewall or captive portal) is answering on that address"
        )
    elif isinstance(exc, TimeoutError):
        what = "no answer in time"
    else:
        what = str(exc) or type(exc).__name__
    return (
        f"cannot reach Telegram's servers at {where}: {what}. Check that this machine can "
        "open TCP connections to Telegram (port 443, no intercepting proxy or firewall); "
        "--verbose shows Telethon's connection log."
    )


class _quiet_telethon:
    """Telethon logs each failed connection attempt as a warning; while corecall decides
    what to say about it, they stay out of the way (unless --verbose/--debug)."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("telethon")
        self._level = self._logger.level
        if not logging.getLogger().isEnabledFor(logging.INFO):
            self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc_info) -> None:
        self._logger.setLevel(self._level)


def run_bot(app: App) -> None:
    """``corecall run``: blocks until SIGTERM/SIGINT or Telegram disconnects for good."""
    asyncio.run(_run(app))
