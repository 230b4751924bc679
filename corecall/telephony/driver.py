"""The trunk-driver contract: how the core asks a PBX (real or simulated) to place calls.

A driver class is registered through ``corecall_register_trunk_drivers`` and keyed by its
``NAME``; the core builds one instance per driver name in use and passes each call's trunk
in the :class:`OriginateRequest`, so one driver can serve several trunks (and, for the AMI
driver, several Asterisk servers).

The driver reports progress by calling the ``progress`` callback it is given: plain
function calls, in order, on the event loop thread. The core's state machine ignores
repeated or backward moves, so a driver may report what it sees without bookkeeping.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs

from corecall.domain import CallState, EndReason, TrunkConfig, is_e164
from corecall.errors import UnsafeValueError

if TYPE_CHECKING:
    from corecall.config import Config
    from corecall.context import PluginContext
    from corecall.domain import CallRecord


class ProgressCallback(Protocol):
    def __call__(
        self, call_id: str, state: CallState, reason: EndReason | None = None, detail: str = ""
    ) -> None: ...


def _e164(_inst, attribute, value):
    if not is_e164(value):
        raise UnsafeValueError(f"{attribute.name} must be + and digits only, got {value!r}")


def _call_id(_inst, attribute, value):
    if not (
        isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value)
    ):
        raise UnsafeValueError(f"{attribute.name} must be 32 lower-case hex characters")


#: Values of a route's ``confirm`` option.
CONFIRM_MODES = ("key", "none")


def _seconds(low: int, high: int):
    def check(_inst, attribute, value):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise UnsafeValueError(f"{attribute.name} must be {low}-{high} seconds, got {value!r}")

    return check


@attrs.frozen
class OriginateRequest:
    """Everything a driver needs to place one bridged call.

    Construction validates every field that could reach a PBX: numbers are ``+`` and digits
    only, the call id is 32 hex characters; anything else raises
    :class:`~corecall.errors.UnsafeValueError`. Numbers read back from the store pass
    through here too, so a tampered row cannot inject anything.
    """

    call_id: str = attrs.field(validator=_call_id)
    agent_phone: str = attrs.field(validator=_e164)
    target: str = attrs.field(validator=_e164)
    caller_id: str = attrs.field(validator=_e164)
    trunk: TrunkConfig
    agent_ring_timeout: int = 30
    target_ring_timeout: int = 45
    #: ``"key"``: once the agent's phone answers, tell the agent whom they are calling and
    #: dial the target only after they press 1 on that phone (the only key ever read, and
    #: only on the agent's leg); ``"none"``: dial the target as soon as the phone answers.
    confirm: str = attrs.field(default="key", validator=attrs.validators.in_(CONFIRM_MODES))
    #: Seconds to wait for the key after the prompt (once more after a wrong key).
    confirm_timeout: int = attrs.field(default=10, validator=_seconds(1, 120))
    #: The caller ID the agent's phone is shown (E.164): an operator-owned number, the
    #: route's ``caller_id`` unless the route says otherwise (``agent_leg_caller_id``).
    agent_caller_id: str = attrs.field(validator=_e164)

    @agent_caller_id.default
    def _agent_caller_id_default(self) -> str:
        return self.caller_id


class TrunkDriver(abc.ABC):
    """Base class for trunk drivers. Subclasses set ``NAME`` and implement the methods.

    ``OPTIONS`` (optional) is the options class (:mod:`corecall.options`) for the keys of a
    ``[trunks.X]`` table naming this driver, other than ``driver``; the application validates
    each such table against it and passes the instance as ``request.trunk.options``.
    """

    NAME: ClassVar[str]
    OPTIONS: ClassVar[type | None] = None

    #: The registering plugin's context (its ``[plugins.NAME]`` options as
    #: ``context.options``, the store), set by the application right after construction and
    #: before :meth:`start`; ``None`` for a driver built by hand.
    context: PluginContext | None = None

    def __init__(self, config: Config) -> None:
        self.config = config
        #: Set by the core: tells the plugins (corecall_link_state_changed).
        self.link_observer: Callable[[str, str, bool], None] | None = None
        #: link -> up, as last reported with :meth:`link_state_changed` (``corecall health``).
        self.link_states: dict[str, bool] = {}

    def link_state_changed(self, link: str, up: bool) -> None:
        """Report that the connection ``link`` (e.g. an Asterisk server's name) went up
        (ready to carry calls) or down; the plugins hear it as
        ``corecall_link_state_changed(driver=NAME, link, up)``. Call it on the event loop."""
        self.link_states[link] = up
        if self.link_observer is not None:
            self.link_observer(getattr(self, "NAME", type(self).__name__), link, up)

    @classmethod
    def trunk_options(cls, trunk: TrunkConfig) -> Any:
        """``trunk.options`` as an ``OPTIONS`` instance; a raw dict (a trunk built by hand,
        e.g. in a test) is validated on the spot (ConfigError on a mistake)."""
        if cls.OPTIONS is None or isinstance(trunk.options, cls.OPTIONS):
            return trunk.options
        from corecall.options import parse_options

        raw = trunk.options if isinstance(trunk.options, dict) else {}
        return parse_options(cls.OPTIONS, raw, table_name=f"trunks.{trunk.name}", path=None,
                             environ={}).value  # fmt: skip

    async def start(self) -> None:
        """Connect (if the driver needs to). Called once before the first call."""

    async def stop(self) -> None:
        """Disconnect. Live calls are left to finish in the PBX."""

    def config_problems(self) -> list[str]:
        """What is wrong in the configuration as this driver reads it, found without
        connecting to anything (e.g. a trunk naming a PBX server that is not configured): one
        sentence each, naming the file and key. ``corecall config show`` refuses a
        configuration with such problems (exit 1); the default finds none."""
        return []

    def problems(self) -> list[str]:
        """What stops this driver from placing calls right now, one sentence each (empty
        when it can). ``corecall run`` refuses to start while there are problems at start-up;
        a driver that reconnects in the background reports its unreachable PBXs here."""
        return []

    async def wait_ready(self, trunk: TrunkConfig) -> str | None:
        """Called before a call on ``trunk`` is recorded and placed. A driver whose PBX is
        starting or restarting may hold the call here for a few seconds; it returns None when
        the call may go out now (or when it will fail anyway, as :meth:`originate` reports),
        else one sentence saying why the PBX cannot take calls yet. The core then refuses the
        call ("the phone system is starting, try again in a moment"): nothing is dialed and
        nothing is recorded. The default is always ready."""
        return None

    @abc.abstractmethod
    async def originate(self, request: OriginateRequest, progress: ProgressCallback) -> None:
        """Start the call and return once the PBX accepted the request.

        Later progress (agent ringing, answered, target ringing, connected, ended) is reported
        through ``progress``. Raise :class:`~corecall.errors.TelephonyError` when the PBX
        cannot be reached; the core then ends the call as ``trunk_unavailable``. Never retry
        an originate on your own: a call must never be placed twice.
        """

    @abc.abstractmethod
    async def hangup(self, call_id: str) -> bool:
        """Hang up a live call. Return False when the driver knows no such live call."""

    async def reconcile(self, calls: list[CallRecord], progress: ProgressCallback) -> None:
        """After a restart: report the fate of calls that were live on this driver's trunks.

        The default knows nothing and ends them as ``unknown``; drivers that can ask the PBX
        (the AMI driver) do better.
        """
        for call in calls:
            progress(call.id, CallState.ENDED, EndReason.UNKNOWN, "outcome unknown after restart")
