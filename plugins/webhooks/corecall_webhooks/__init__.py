"""corecall plugin: signed webhooks for every call state change and admin action.

Every event is written to the store's outbox before it is sent, then POSTed as JSON to each
``[plugins.webhooks] urls`` entry, signed with HMAC-SHA256 (see :mod:`.signing`), retried with
backoff until the receiver accepts it, in order. ``corecall webhooks list|test|redeliver``
show and manage the outbox. See docs/operations.md.
"""

from __future__ import annotations

from corecall.hookspecs import hookimpl
from corecall.services import Service
from corecall_webhooks.service import WebhookOptions, WebhookService

NAME = "webhooks"


def options_for(app) -> WebhookOptions:
    """The plugin's parsed ``[plugins.webhooks]`` options."""
    return app.plugin_options(NAME) or WebhookOptions()


class Webhooks(Service):
    """Runs the outbox writer, the audit follower and one deliverer per URL."""

    NAME = NAME

    def __init__(self, app) -> None:
        super().__init__(app)
        self.options = options_for(app)
        self.delivery: WebhookService | None = None

    async def start(self) -> None:
        problems = self.options.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.delivery = WebhookService(self.app.store, self.options, run_in_store=self.run_in_store)
        await self.delivery.start()

    async def stop(self) -> None:
        if self.delivery is not None:
            await self.delivery.stop()

    @hookimpl
    def corecall_call_state_changed(self, call, previous) -> None:
        if self.delivery is not None:
            self.delivery.call_state_changed(call, previous)

    def problems(self) -> list[str]:
        return self.options.problems()


@hookimpl
def corecall_plugin_options():
    return WebhookOptions


@hookimpl
def corecall_register_services(registry) -> None:
    registry.register(Webhooks)


@hookimpl
def corecall_register_commands(cli, context) -> None:
    from corecall_webhooks.commands import webhooks_group

    cli.add_typer(webhooks_group(context), name="webhooks")


__all__ = ["NAME", "WebhookOptions", "WebhookService", "Webhooks"]
