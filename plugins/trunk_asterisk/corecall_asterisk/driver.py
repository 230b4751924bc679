"""The trunk driver ``asterisk_ami``: places calls through Asterisk over AMI, one
:class:`~corecall_asterisk.link.AmiLink` per ``[plugins.asterisk_ami.servers.NAME]`` a trunk
uses (its ``[trunks.X]`` keys are :class:`~corecall_asterisk.options.AsteriskTrunkOptions`).

How a call goes: :meth:`AsteriskAmiDriver.originate` builds the Originate
(:func:`~corecall_asterisk.actions.build_originate`), writes it on the trunk's link and waits
(bounded) for Asterisk's reply; from then on the link's
:class:`~corecall_asterisk.tracking.CallTracker` reports the call's progress from its events.
An Originate is never re-sent: a drop or a missing reply leaves the decision to the call's
events or to the reconcile after the reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from corecall.domain import CallState, EndReason, TrunkConfig
from corecall.errors import ConfigError, PbxStartingError, TelephonyError
from corecall.telephony.driver import OriginateRequest, ProgressCallback, TrunkDriver
from corecall_asterisk.actions import (
    CALL_ID_RE,
    agent_uniqueid,
    build_originate,
    check_call_id,
    originate_action_id,
)
from corecall_asterisk.errors import LinkLost
from corecall_asterisk.link import AmiLink, describe_error
from corecall_asterisk.options import (
    AsteriskOptions,
    AsteriskTrunkOptions,
    resolve_server,
    servers_table,
)
from corecall_asterisk.tracking import TrackedCall

if TYPE_CHECKING:
    from corecall.config import Config
    from corecall.domain import CallRecord
    from corecall.supervision import Supervisor

log = logging.getLogger(__name__)


class AsteriskAmiDriver(TrunkDriver):
    """Trunk driver ``asterisk_ami``: places calls through Asterisk over AMI."""

    NAME = "asterisk_ami"
    OPTIONS = AsteriskTrunkOptions

    #: How long :meth:`start` waits for the first login of each server.
    start_wait = 5.0
    #: How long a call is held (seconds) while its Asterisk is starting or restarting, before
    #: it is refused as "starting" (never sent before FullyBooted).
    boot_hold = 3.0

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._links: dict[str, AmiLink] | None = None

    @property
    def links(self) -> dict[str, AmiLink]:
        """One link per server the configured ``asterisk_ami`` trunks name (built on first
        use, once the application gave the driver its plugin's options). Raises
        :class:`~corecall.errors.ConfigError` naming the trunk whose server does not exist."""
        if self._links is None:
            options = self.context.options if self.context is not None else None
            if not isinstance(options, AsteriskOptions):
                options = AsteriskOptions()
            where = str(self.config.path) if self.config.path else None
            links: dict[str, AmiLink] = {}
            for trunk in self.config.trunks.values():
                if trunk.driver != self.NAME:
                    continue
                server = resolve_server(trunk.name, self.trunk_options(trunk), options, path=where)
                if server.name not in links:
                    link = links[server.name] = AmiLink(server, supervisor=self._supervisor())
                    link.state_observer = self.link_state_changed
            self._links = links
        return self._links

    def config_problems(self) -> list[str]:
        try:
            self.links  # noqa: B018 - resolves every asterisk_ami trunk's server
        except ConfigError as exc:
            return [str(exc)]
        return []

    def _supervisor(self) -> Supervisor | None:
        """The application's supervisor (None for a driver outside an application)."""
        try:
            return self.context.app.supervisor if self.context is not None else None
        except ConfigError:
            return None

    async def start(self) -> None:
        await asyncio.gather(
            *(link.start(wait=min(self.start_wait, link.server.action_timeout * 2))
              for link in self.links.values())
        )  # fmt: skip
        for link in self.links.values():
            if not link.is_up:
                log.warning("%s is not reachable yet: %s", link.describe(), link.last_error)

    async def stop(self) -> None:
        await asyncio.gather(*(link.stop() for link in self.links.values()))

    def problems(self) -> list[str]:
        return [
            f"cannot reach {link.describe()}: {link.last_error}. Check that Asterisk is running "
            f"and its AMI is reachable ([{servers_table(link.name)}] {link.server.host}:"
            f"{link.server.port}) and the AMI username and secret "
            f"(CORECALL_AMI_SECRET_{link.name.upper()} or CORECALL_AMI_SECRET)"
            for link in self.links.values()
            if not link.is_up
        ]

    def link_for(self, trunk: TrunkConfig) -> AmiLink:
        server = self.trunk_options(trunk).server
        link = self.links.get(server)
        if link is None:
            raise TelephonyError(
                f"trunk {trunk.name!r} names no configured Asterisk server (server = {server!r})"
            )
        return link

    def _find(self, call_id: str) -> TrackedCall | None:
        key = agent_uniqueid(call_id)
        for link in self.links.values():
            call = link.tracker.calls.get(key)
            if call is not None:
                return call
        return None

    async def wait_ready(self, trunk: TrunkConfig) -> str | None:
        """Hold a call (up to :attr:`boot_hold` seconds) while the trunk's Asterisk is
        starting: logged in but no FullyBooted yet, gone after a ``Shutdown`` that said
        ``Restart: True`` (``core restart``), or the first connection still being made.
        Returns why it is still not ready, or None (ready, or down for another reason, e.g.
        stopped: then :meth:`originate` fails the call at once, as ``trunk_unavailable``)."""
        link = self.link_for(trunk)
        if link.ready:
            return None
        restarting = not link.is_up and link.asterisk_restarting
        if not (link.starting or restarting or link.connecting_first_time):
            return None
        if await link.wait_ready(self.boot_hold):
            return None
        if link.starting:
            return f"{link.describe()} is still starting (logged in, no FullyBooted yet)"
        if not link.is_up and link.asterisk_restarting:
            return f"{link.describe()} is restarting (Shutdown with Restart: True; not back yet)"
        return None  # unreachable for another reason: originate() fails it as before

    async def originate(self, request: OriginateRequest, progress: ProgressCallback) -> None:
        link = self.link_for(request.trunk)
        endpoint = self.trunk_options(request.trunk).endpoint
        payload = build_originate(request, endpoint=endpoint, context=link.server.context)
        if not link.is_up:
            raise TelephonyError(f"{link.describe()} is not connected: {link.last_error}")
        if not link.booted.is_set():
            # Never sent before FullyBooted: Asterisk would answer "Extension does not exist".
            raise PbxStartingError(
                f"{link.describe()} is still starting (no FullyBooted yet); nothing was sent"
            )
        call = TrackedCall(request.call_id, progress, link=link)
        fut = link.write_originate(call, payload)
        try:
            async with asyncio.timeout(link.server.action_timeout):
                reply = await fut
        except LinkLost:
            log.warning(
                "call %s: the AMI link dropped with the Originate in flight; NOT re-sending it, "
                "its fate is decided after the reconnect", request.call_id,
            )  # fmt: skip
            return
        except TimeoutError:
            link.originates.pop(originate_action_id(request.call_id), None)
            log.warning(
                "call %s: no reply to the Originate within %g s; NOT re-sending it, its events "
                "or the reconcile after a reconnect decide it",
                request.call_id, link.server.action_timeout,
            )  # fmt: skip
            return
        if reply.get("Response") != "Success":
            link.tracker.calls.pop(call.key, None)
            raise TelephonyError(
                f"Asterisk {link.name!r} refused the Originate: {reply.get('Message') or reply}"
            )
        call.confirmed = True

    async def hangup(self, call_id: str) -> bool:
        check_call_id(call_id)
        call = self._find(call_id)
        if call is None or call.link is None:
            return False
        if not call.agent_channel and call.state is CallState.DIALING_AGENT:
            # The agent channel may not exist yet: hang up as soon as it shows up, and try now.
            call.hangup_pending = True
        call.hangup_sent = True
        try:
            done = await call.link.hangup(call)
        except (TelephonyError, TimeoutError) as exc:
            log.warning("call %s: hangup failed: %s", call_id, describe_error(exc))
            return call.hangup_pending
        if done:
            call.hangup_pending = False
        return done or call.hangup_pending

    async def reconcile(self, calls: list[CallRecord], progress: ProgressCallback) -> None:
        """Calls a previous run left unfinished: keep tracking those Asterisk still has a
        channel for, end the others as ``unknown``."""
        by_link: dict[str, list[TrackedCall]] = {}
        for record in calls:
            trunk = self.config.trunks.get(record.trunk)
            link = (
                self.links.get(self.trunk_options(trunk).server)
                if trunk is not None and trunk.driver == self.NAME
                else None
            )
            if link is None or not CALL_ID_RE.fullmatch(record.id):
                progress(
                    record.id, CallState.ENDED, EndReason.UNKNOWN,
                    "ended while corecall was down; its Asterisk server is no longer configured",
                )  # fmt: skip
                continue
            call = TrackedCall(record.id, progress, link=link)
            call.state = record.state
            call.answered = record.agent_answered_at is not None
            call.confirmed = True
            call.epoch = -2
            link.tracker.track(call)
            by_link.setdefault(link.name, []).append(call)
        for name, tracked in by_link.items():
            link = self.links[name]
            if link.is_up:
                await link._reconcile_after_connect(link.epoch + 1)
            else:
                log.warning(
                    "%s is down: %d unfinished call(s) will be reconciled when it is back",
                    link.describe(), len(tracked),
                )  # fmt: skip
