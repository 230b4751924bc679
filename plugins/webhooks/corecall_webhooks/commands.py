"""``corecall webhooks list|test|redeliver``: the outbox, seen and handled from the shell."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import typer

from corecall.cli.common import console, limit_option, print_json
from corecall.domain import utcnow
from corecall.errors import CorecallError
from corecall.fields import echo, one_line
from corecall.redaction import mask_url
from corecall_webhooks import events
from corecall_webhooks.service import (
    ANSWER_MAX_CHARS,
    INTERNAL_DESTINATION,
    USER_AGENT,
    WebhookOptions,
    post_within,
    tls_context,
)
from corecall_webhooks.signing import (
    EVENT_COUNT_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    sign,
)


def webhooks_group(context) -> typer.Typer:
    """The ``corecall webhooks`` commands, reaching the application through the plugin's
    ``context`` (options and store loaded on first use)."""
    group = typer.Typer(
        help="Signed webhooks: the outbox, test deliveries, redelivery.",
        no_args_is_help=True,
        # "\b": click prints the paragraph as is (the core's help pages do the same).
        epilog="\b\nExamples:\n  corecall webhooks list\n  corecall webhooks test\n"
        "  corecall webhooks redeliver call-6f1c09d2b7e84c53a1f0e2d4c6b8a9e2-8",
    )

    def options() -> WebhookOptions:
        return context.options or WebhookOptions()

    @group.command("list")
    def list_command(
        pending: bool = typer.Option(False, "--pending", help="Only events not delivered yet."),
        limit: int = limit_option(
            50, "How many events, newest first (0: the counts only).", least=0
        ),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """The outbox, newest first: event id, URL, state, tries, last error."""
        list_(context.store, options(), pending=pending, limit=limit, as_json=as_json)

    @group.command("test")
    def test_command() -> None:
        """POST a signed webhook.test event to every URL now and show each answer (exit 1
        when one did not answer 2xx). Nothing is written to the outbox."""
        test(options())

    @group.command("redeliver")
    def redeliver_command(
        event_ids: list[str] = typer.Argument(..., metavar="EVENT_ID...", help="Ids to send."),
        url: str = typer.Option(None, "--url", help="Only to this URL (default: every URL)."),
    ) -> None:
        """Send events again: they become pending, due now, and the running corecall
        delivers them first (exit 1 when an id is not in the outbox)."""
        redeliver(context.store, options(), event_ids, url)

    return group


def list_(store, options: WebhookOptions, *, pending: bool, limit: int, as_json: bool) -> None:
    """The outbox, newest first: event id, URL, state, tries, last error."""
    messages = [m for m in store.outbox_list(pending_only=pending, limit=limit + 1)
                if m.destination != INTERNAL_DESTINATION][:limit]  # fmt: skip
    if as_json:
        print_json([
            {"seq": m.seq, "event_id": m.event_id, "url": mask_url(m.destination), "type": m.topic,
             "created_at": m.created_at, "delivered_at": m.delivered_at,
             "attempts": m.attempts, "next_attempt_at": m.next_attempt_at,
             "last_error": mask_url(one_line(m.last_error, ANSWER_MAX_CHARS)),
             "event": json.loads(m.body)}
            for m in messages
        ])  # fmt: skip
        return
    counts = store.outbox_counts()
    counts.pop(INTERNAL_DESTINATION, None)
    for url in options.urls or sorted(counts):
        waiting, done = counts.get(url, (0, 0))
        console.print(f"{mask_url(url)}: {waiting} pending, {done} delivered")
    if not options.urls:
        console.print(NO_URLS)
    if not messages and limit > 0:  # --limit 0 asks for the counts alone
        console.print("(the outbox is empty)" if not pending else "(nothing pending)")
    for m in messages:
        status = (
            f"delivered {m.delivered_at:%Y-%m-%d %H:%M:%S}" if m.delivered_at
            else f"pending, {m.attempts} failed tries, next {m.next_attempt_at:%H:%M:%S}"
        )  # fmt: skip
        line = f"{m.event_id}  {m.topic}  {m.destination}  {status}"
        if m.last_error and not m.delivered_at:
            line += f"  last error: {one_line(m.last_error, ANSWER_MAX_CHARS)}"  # stored earlier
        console.print(mask_url(line))  # a receiver URL may carry user:password@ or ?token=


#: Said by every command that needs a receiver when none is configured.
NO_URLS = (
    'no webhook URLs are configured: add urls = ["https://receiver.example/corecall"] '
    "and a secret under [plugins.webhooks] in the configuration file (or set "
    "CORECALL_PLUGINS_WEBHOOKS_URLS)"
)


def test(options: WebhookOptions) -> None:
    """POST a signed ``webhook.test`` event to every URL now and show each answer.

    Exit code 1 when a receiver did not answer 2xx. Nothing is written to the outbox."""
    problems = options.problems()
    if problems:
        raise CorecallError("; ".join(problems))
    if not options.urls:
        # Not a usage error (exit 2 means the command line was wrong): the configuration
        # has nothing to test.
        raise CorecallError(NO_URLS + "; nothing was sent")
    event = {
        "id": f"test-{uuid.uuid4().hex}", "type": "webhook.test",
        "occurred_at": utcnow().isoformat(), "sequence": 0,
        "data": {"message": "corecall webhook test"},
    }  # fmt: skip
    body = events.batch_body([events.encode(event)]).encode("utf-8")
    answers = asyncio.run(_post_to_each(options, body, str(event["id"])))
    failed = 0
    for url, ok, answer, took in answers:
        line = f"{'ok' if ok else 'FAILED'}  {url}  {answer}  ({took:.0f} ms)"
        console.print(mask_url(line))
        failed += not ok
    if failed:
        raise typer.Exit(1)


async def _post_to_each(
    options: WebhookOptions, body: bytes, event_id: str
) -> list[tuple[str, bool, str, float]]:
    """(url, ok, answer, milliseconds) for each URL, one after the other, each request
    bounded by ``options.timeout`` as the deliverer's are."""
    answers = []
    async with httpx.AsyncClient(
        follow_redirects=False, timeout=options.timeout, verify=tls_context()
    ) as client:
        for url in options.urls:
            headers = {
                "Content-Type": "application/json", "User-Agent": USER_AGENT,
                SIGNATURE_HEADER: sign(options.secret, body),
                IDEMPOTENCY_HEADER: events.batch_key([event_id]), EVENT_COUNT_HEADER: "1",
            }  # fmt: skip
            started = time.perf_counter()
            ok, answer = await post_within(client, url, body, headers, options.timeout)
            answers.append((url, ok, answer, (time.perf_counter() - started) * 1000))
    return answers


def redeliver(store, options: WebhookOptions, event_ids: list[str], url: str | None) -> None:
    """Send events again (delivered or not): they become pending, due now, and the running
    corecall delivers them first. Exit code 1 when an id is not in the outbox, or ``url``
    is not a configured receiver (nothing would ever deliver to it); nothing is changed
    then."""
    if url is not None and url not in options.urls:
        configured = ", ".join(mask_url(u) for u in options.urls) if options.urls else None
        raise CorecallError(
            f"--url {echo(mask_url(url))} is not a configured receiver, so nothing would "
            "deliver to it; " + (f"configured: {configured}" if configured else NO_URLS)
        )
    known = {m.event_id for m in store.outbox_list(url, limit=100_000)}
    missing = [e for e in event_ids if e not in known]
    if missing:  # refused as a whole: nothing is queued again
        shown = ", ".join(echo(m) for m in missing)
        raise CorecallError(
            f"not in the outbox: {shown} (see corecall webhooks list); nothing was queued again"
        )
    changed = store.outbox_redeliver(event_ids, destination=url)
    console.print(f"{changed} deliveries queued again")


__all__ = ["webhooks_group"]
