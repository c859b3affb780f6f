"""`billing webhooks …`: see deliveries and endpoints, replay an event, rotate a secret.

Secrets never reach the output, except the new one `rotate` prints once (alone on stdout, so a
script can capture it; everything else goes to stderr). Every failure is one clear line on stderr
and a non-zero exit: 1 for a refused operation, 2 for a malformed argument.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    help="Webhook deliveries and endpoints: list, replay, endpoints, rotate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    dead_lettered = "dead_lettered"


@app.command("list")
def list_events(
    status: DeliveryStatus = typer.Option(None, "--status", help="Only deliveries in this status."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many events, latest first."),
) -> None:
    """Latest events, one row per endpoint delivery: status, attempts, next attempt, last error."""
    from billing.webhooks.listing import list_deliveries

    rows = list_deliveries(status=status.value if status else None, limit=limit)
    if not rows:
        _stderr().print("no webhook events" + (f" with a {status.value} delivery" if status else ""))
        return
    table = Table(title="Webhook events and their deliveries (latest first)")
    columns = ("event", "type", "created", "endpoint", "status", "attempts", "next attempt / delivered", "last error")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            escape(row.event_id),
            escape(row.event_type),
            _when(row.created_at),
            escape(row.endpoint_id or "—"),
            _delivery_status(row),
            "" if row.attempt_count is None else str(row.attempt_count),
            _when({"delivered": row.delivered_at, "pending": row.next_attempt_at}.get(row.status)),
            escape(row.last_error or ""),
        )
    _stdout().print(table)


@app.command("replay")
def replay(
    event_id: str = typer.Argument(..., help="The event's id (its webhook-id, msg_…)."),
    endpoint_id: str = typer.Option(None, "--endpoint", help="Only to this endpoint."),
) -> None:
    """Send EVENT_ID again: its deliveries go back to pending, due now, same webhook-id."""
    from billing.webhooks.errors import WebhookError
    from billing.webhooks.replay import replay_event

    try:
        result = replay_event(event_id, endpoint_id=endpoint_id)
    except WebhookError as error:
        _fail(str(error))
    out = _stderr()
    out.print(
        f"event {escape(event_id)} queued again for: {escape(', '.join(result.endpoint_ids))}"
        " (sent by the next dispatch)"
    )
    if result.held_endpoint_ids:
        out.print(f"held until enabled again (disabled endpoint): {escape(', '.join(result.held_endpoint_ids))}")


@app.command("endpoints")
def endpoints() -> None:
    """Every endpoint: URL, enabled, event types, delivery counts, rotation overlap. Never a secret."""
    from billing.webhooks.listing import list_endpoints

    rows = list_endpoints()
    if not rows:
        _stderr().print("no webhook endpoints (add them under webhook_endpoints in the catalog)")
        return
    table = Table(title="Webhook endpoints")
    for column in ("endpoint", "url", "enabled", "event types", "pending", "delivered", "dead-lettered",
                   "last delivered", "previous secret until"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            escape(row.endpoint_id),
            escape(row.url),
            "yes" if row.enabled else "[red]no[/]",
            escape(", ".join(row.event_types)) if row.event_types is not None else "all",
            str(row.pending),
            str(row.delivered),
            str(row.dead_lettered),
            _when(row.last_delivered_at),
            (_when(row.previous_secret_valid_until) or "until removed") if row.has_previous_secret else "",
        )
    _stdout().print(table)


@app.command("rotate")
def rotate(
    endpoint_id: str = typer.Argument(..., help="The endpoint whose secret to replace."),
    overlap: str = typer.Option(
        "24h", "--overlap", help="How long the old secret still signs (1h, 2d; 0h: not at all)."
    ),
) -> None:
    """Give ENDPOINT_ID a new secret and print it once; the old one signs too during the overlap."""
    from billing.webhooks.errors import WebhookError
    from billing.webhooks.rotate import rotate_secret
    from billing.window import parse_duration

    try:
        parse_duration(overlap)
    except ValueError as error:
        _fail(f"--overlap: {error}", code=2)
    try:
        rotation = rotate_secret(endpoint_id, overlap=overlap)
    except WebhookError as error:
        _fail(str(error))
    out = _stderr()
    out.print(f"new secret for endpoint {escape(endpoint_id)} (shown once; give it to the receiver now):")
    # NOTE: the secret alone on stdout, unstyled, so `$(billing webhooks rotate …)` captures it.
    typer.echo(rotation.secret)
    if rotation.previous_valid_until is not None:
        out.print(f"the old secret also signs deliveries until {_when(rotation.previous_valid_until)}")
    else:
        out.print("the old secret no longer signs deliveries")
    if rotation.ended_earlier_overlap:
        out.print("[yellow]note:[/] the secret before the old one, still in its overlap, is no longer valid")
    out.print(
        "if this endpoint comes from a catalog file, put the new secret there too: "
        "applying the file again would restore the old one"
    )


def _fail(message: str, code: int = 1) -> NoReturn:
    _stderr().print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _delivery_status(row) -> str:
    if row.endpoint_id is None:
        return "awaiting fan-out" if row.fanned_out_at is None else "no endpoint subscribed"
    if row.status == "pending" and row.endpoint_enabled is False:
        return "pending (endpoint disabled)"
    if row.status == "pending" and row.endpoint_enabled is None:
        return "pending (endpoint removed)"
    styled = {"delivered": "[green]delivered[/]", "dead_lettered": "[red]dead_lettered[/]"}
    return styled.get(row.status, escape(row.status))


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _stdout() -> Console:
    # NOTE: rich assumes 80 columns when piped; these tables need more.
    console = Console()
    return console if console.is_terminal else Console(width=200)


def _stderr() -> Console:
    console = Console(stderr=True)
    return console if console.is_terminal else Console(stderr=True, width=200)
