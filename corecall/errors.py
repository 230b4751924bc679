"""Every error corecall raises on purpose lives here, as one small hierarchy.

The CLI maps them to exit codes (``exit_code``); front ends show ``str(error)``,
which is always written for the person who caused it: what was wrong, what works.
"""

from __future__ import annotations


class CorecallError(Exception):
    """Base of every deliberate corecall error. Never shown with a traceback."""

    exit_code = 1


class ConfigError(CorecallError):
    """The configuration file or environment is wrong. Names file, key and expectation."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None):
        from corecall.fields import show_path

        # A path or key with an escape sequence or bidi control is shown escaped, never raw.
        shown_path = show_path(path) if path else None
        shown_key = show_path(key) if key else None
        path, key, raw_path, raw_key = shown_path, shown_key, path, key
        where = ""
        if path and key:
            where = f"{path}: [{key}] "
        elif path:
            where = f"{path}: "
        elif key:
            where = f"[{key}] "
        super().__init__(f"{where}{message}")
        self.path = raw_path
        self.key = raw_key


class UsageError(CorecallError):
    """The command was used wrongly (bad argument shape)."""

    exit_code = 2


class RefusedError(CorecallError):
    """A request was understood and refused (policy, authorization, limits).

    ``reason`` is a stable machine-readable code; the message is for people.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class NotFoundError(CorecallError):
    """Something named by the user does not exist (agent, route, plugin, call)."""


class AlreadyExistsError(CorecallError):
    """Something the user tried to create exists already."""


class PluginError(CorecallError):
    """A plugin failed to load, registered something twice, or broke a hook contract.

    The message always names the plugin (and its distribution when known).
    """

    def __init__(self, plugin: str, message: str):
        super().__init__(f"plugin {plugin!r}: {message}")
        self.plugin = plugin


class EssentialPluginError(PluginError):
    """Refused: the plugin is essential (e.g. the active store) and cannot be disabled."""


class StoreError(CorecallError):
    """The store could not do what was asked (connection, schema, integrity)."""


class AgentChangedError(CorecallError):
    """A call record was refused because its agent changed after the call was checked: revoked,
    removed, or given another phone, by this process or another (``corecall agents revoke``
    while the bot runs). Raised by the store's ``create_call(..., check_agent=True)``, which
    re-checks the agent in the transaction that writes the record; nothing was written.

    ``agent`` is the agent as the store holds it now (None when removed).
    """

    def __init__(self, message: str, agent=None):
        super().__init__(message)
        self.agent = agent


class TelephonyError(CorecallError):
    """The PBX or trunk could not be reached or refused an action."""


class PbxStartingError(TelephonyError):
    """The phone system is (re)starting and cannot take calls yet; nothing was sent."""


class UnsafeValueError(CorecallError, ValueError):
    """A value that would reach the PBX failed validation (injection guard). Also a
    ``ValueError``, so pure helpers (e.g. the Asterisk config render) can raise it."""
