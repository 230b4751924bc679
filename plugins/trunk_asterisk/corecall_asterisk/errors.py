"""Errors of the AMI link (both are :class:`~corecall.errors.TelephonyError`)."""

from __future__ import annotations

from corecall.errors import TelephonyError


class LinkLost(TelephonyError):
    """The AMI connection dropped before Asterisk answered an action."""


class AmiLoginError(TelephonyError):
    """Asterisk refused the login (wrong username/secret, or this host is not permitted)."""
