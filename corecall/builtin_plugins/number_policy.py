"""Essential plugin: the default number policy (see :mod:`corecall.numbers`).

Runs last (``trylast``) so a third-party parser can accept a format first; whatever such a
parser accepts is still re-checked by the core for E.164 shape. This plugin cannot be
disabled: it is what refuses emergency, short-code, premium-rate, shared-cost and
not-allowed-country numbers.
"""

from __future__ import annotations

from corecall.domain import NumberVerdict, Route
from corecall.hookspecs import hookimpl
from corecall.numbers import check_number


@hookimpl(trylast=True)
def corecall_parse_number(text: str, route: Route) -> NumberVerdict:
    return check_number(
        text, allowed_regions=route.countries, allow_unlisted_nanp=route.allow_unlisted_nanp
    )
