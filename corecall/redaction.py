"""Secrets never printed or logged: the values to hide, and the filters that hide them.

corecall holds four kinds of secret: the AMI secret of each Asterisk server, the bot token,
the Telegram api hash and the password inside a PostgreSQL DSN (webhook keys, later, join
them through :meth:`Redactor.add`). Each is kept out of output three ways:

* **At the source**: config objects don't show secrets in their ``repr``; error messages
  about a secret name where it came from (the key, the environment variable), never its
  value; the AMI injection guard and the DSN parser don't quote what they refuse.
* **At every output seam**: :class:`RedactingFilter` sits on every logging handler of a
  corecall process (``corecall`` CLI, ``corecall run``, console) and rewrites each record's
  message, arguments, exception text and stack before any handler formats it, so a library's
  log line (the AMI library logs whole actions, Login included, at INFO) cannot carry a secret;
  the CLI runs every error line and traceback it prints through :meth:`Redactor.redact`.
* **In tests**: marker secrets go through every error path and everything printed and
  logged is scanned (``tests/test_secrets.py``).

A secret is replaced by ``***`` wherever it appears: as is, stripped of surrounding
whitespace, as Python's ``repr`` escapes it (``\\r`` for a carriage return) and URL-quoted.
"""

from __future__ import annotations

import logging
import os
import re
import traceback
import urllib.parse
from collections.abc import Iterable, Mapping

from corecall.errors import ConfigError

MASK = "***"
#: Shorter values are not treated as secrets (hiding "a" would mangle every line).
MIN_SECRET_CHARS = 4


class Redactor:
    """The secret values of one process, and :meth:`redact` to hide them in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Hide ``secret`` (and the forms it takes when escaped or quoted) from now on."""
        if not isinstance(secret, str):
            return
        for form in (
            secret,
            secret.strip(),
            repr(secret)[1:-1],
            secret.encode("unicode_escape").decode("ascii"),
            urllib.parse.quote(secret, safe=""),
            urllib.parse.quote_plus(secret),
        ):
            if len(form) >= MIN_SECRET_CHARS:
                self._forms.add(form)

    def add_all(self, secrets: Iterable[str]) -> None:
        for secret in secrets:
            self.add(secret)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***`` (longest forms first)."""
        if not self._forms or not text:
            return text
        for form in sorted(self._forms, key=len, reverse=True):
            if form in text:
                text = text.replace(form, MASK)
        return text


class RedactingFilter(logging.Filter):
    """A handler filter that hides secrets in each record before it is formatted.

    The record's message is rendered (``msg % args``) and redacted, and the exception and
    stack text are formatted and redacted, so formatters and other handlers only ever see the
    redacted text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__("corecall.redaction")
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self.redactor.redact
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what there is, redacted
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(redactor: Redactor, logger: logging.Logger | None = None) -> RedactingFilter:
    """Put a :class:`RedactingFilter` on every handler of ``logger`` (the root logger by
    default; call after logging is configured). Returns the filter (``uninstall`` takes it
    off again)."""
    logger = logger or logging.getLogger()
    filt = RedactingFilter(redactor)
    for handler in logger.handlers:
        if not any(
            isinstance(f, RedactingFilter) and f.redactor is redactor for f in handler.filters
        ):
            handler.addFilter(filt)
    return filt


def uninstall(filt: RedactingFilter, logger: logging.Logger | None = None) -> None:
    for handler in (logger or logging.getLogger()).handlers:
        handler.removeFilter(filt)


def check_secret(value: str, source: str) -> str:
    """Refuse a secret with control characters, naming where it came from, never its value
    (a CRLF env file leaves a CR at the end of every value)."""
    bad = next((c for c in value if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        raise ConfigError(
            f"{source} contains a control character (U+{ord(bad):04X}); secrets can't contain "
            "CR, LF, NUL or other control characters. A file with Windows line ends (CRLF) "
            "leaves a CR at the end of each value: convert it (dos2unix) and set it again."
        )
    return value


#: Environment variables holding secrets (``CORECALL_AMI_SECRET_<SERVER>`` too).
SECRET_VARIABLES = ("CORECALL_BOT_TOKEN", "CORECALL_API_HASH", "CORECALL_AMI_SECRET",
                    "CORECALL_POSTGRES_DSN")  # fmt: skip


#: Ends of ``CORECALL_PLUGINS_<NAME>_<KEY>`` variables whose key names a secret.
_SECRET_SUFFIXES = ("_SECRET", "_KEY", "_TOKEN", "PASSWORD")


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The secret values in the environment, before (or without) a config file."""
    environ = os.environ if environ is None else environ
    values = []
    for name, value in environ.items():
        if name == "CORECALL_POSTGRES_DSN":
            values.append(dsn_password(value) or "")
        elif name in SECRET_VARIABLES or name.startswith("CORECALL_AMI_SECRET_"):
            values.append(value)
        elif name.startswith("CORECALL_PLUGINS_") and name.endswith(_SECRET_SUFFIXES):
            values.append(value)  # a plugin's secret by the environment rule
        elif name.startswith("CORECALL_"):
            values += url_credentials(value)  # e.g. a receiver URL with user:password@
    return [v for v in values if v]


_KV_PASSWORD_RE = re.compile(r"(?:^|\s)password\s*=\s*(?:'((?:[^'\\]|\\.)*)'?|(\S+))")


#: Query parameters that carry a credential in a URL (``?token=…``, ``&api_key=…``).
_SECRET_QUERY_KEYS = re.compile(
    r"(?i)^(?:.*[_-])?(?:token|secret|key|password|passwd|pwd|sig|signature|auth|apikey)$"
)


#: A URL inside a text (a config value, a log line, an httpx error).
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def url_credentials(text: str) -> list[str]:
    """The credentials written into the URLs in ``text``: the password of a URL's user-info
    (``https://user:PASSWORD@host/``) and the values of secret-named query parameters
    (``?token=…``, ``&api_key=…``, ``&sig=…``). ``[]`` when ``text`` holds no such URL.

    Any configured string can be a URL with a credential in it (a webhook receiver with Basic
    auth, a DSN); :meth:`corecall.config.Config.secrets` feeds these to the redactor and
    :func:`mask_url` shows the text without them.
    """
    found: list[str] = []
    for match in _URL_RE.finditer(text):
        url = match.group(0)
        try:
            parts = urllib.parse.urlsplit(url)
            if parts.password:
                found += [parts.password, urllib.parse.unquote(parts.password)]
            pairs = urllib.parse.parse_qsl(parts.query)
        except ValueError:
            found += [p for p in [dsn_password(url)] if p]
            continue
        found += [value for key, value in pairs if _SECRET_QUERY_KEYS.match(key)]
    return list(dict.fromkeys(v for v in found if v))


def mask_url(text: str) -> str:
    """``text`` with every credential :func:`url_credentials` finds in its URLs replaced by
    ``***`` (``https://user:***@host/hook?token=***``); anything else unchanged."""
    for credential in sorted(url_credentials(text), key=len, reverse=True):
        for form in {credential, urllib.parse.quote(credential, safe=""),
                     urllib.parse.quote_plus(credential)}:  # fmt: skip
            text = text.replace(form, MASK)
    return text


def dsn_password(dsn: str) -> str | None:
    """The password inside a PostgreSQL DSN (URL or key=value form), or None."""
    if not dsn:
        return None
    if "://" in dsn:
        try:
            return urllib.parse.urlsplit(dsn).password
        except ValueError:
            head = dsn.split("://", 1)[1].rsplit("@", 1)[0]
            return head.split(":", 1)[1] if ":" in head and "@" in dsn else None
    match = _KV_PASSWORD_RE.search(dsn)
    return (match[1] or match[2]) if match else None
