"""The demo: a fresh warehouse, the demo catalog, two months of events, two cycle closes, a report."""

from __future__ import annotations

import base64
import os
import secrets
import shlex
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from billing.money import format_minor
from billing.settings import billing_home

CATALOG = Path(__file__).with_name("catalog.yaml")
# The close after each demo month: as_of = period end + the 1 hour grace.
CLOSES = [datetime(2026, 7, 1, 1, tzinfo=UTC), datetime(2026, 8, 1, 1, tzinfo=UTC)]


def run_demo(console: Console) -> None:
    if not console.is_terminal:
        console = Console(width=140)  # NOTE: rich assumes 80 columns when piped; the tables need more
    home = _fresh_demo_home()
    # the demo's receiver listens on loopback, which webhook delivery refuses by default
    os.environ.setdefault("BILLING_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    from billing.catalog import apply_catalog
    from billing.demo.events import write_demo_events
    from billing.loading import load_events
    from billing.orchestration import run_dag
    from billing.schema import init_warehouse
    from billing.warehouse import stop_embedded
    from billing.webhooks.receiver import WebhookReceiver

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    try:
        with WebhookReceiver(secret) as receiver:
            console.print(f"[bold]1.[/] warehouse under {home}, webhook receiver at {receiver.url}")
            init_warehouse()
            apply_catalog(CATALOG)
            apply_catalog(_endpoint_catalog(home, receiver.url, secret))
            events_file = home / "demo_events.csv"
            written = write_demo_events(events_file)
            load_events(events_file, show_progress=False)
            console.print(f"[bold]2.[/] catalog applied, {written} events loaded (duplicates and bad events included)")
            for as_of in CLOSES:
                outcome = run_dag("billing_cycle_close", logical_date=as_of, conf={"as_of": as_of.isoformat()})
                console.print(f"[bold]3.[/] billing_cycle_close as of {as_of:%Y-%m-%d %H:%M}Z: {outcome.state}")
                if not outcome.succeeded:
                    raise SystemExit(f"the run failed in {', '.join(outcome.failed_tasks)}")
            _report(console, receiver)
    finally:
        stop_embedded()
    billing = Path(sys.executable).with_name("billing")
    console.print(
        f"[bold]The dashboard on this warehouse:[/] BILLING_HOME={shlex.quote(str(home))} {shlex.quote(str(billing))}"
        " dashboard", highlight=False, soft_wrap=True,
    )


def _fresh_demo_home() -> Path:
    """The demo runs in BILLING_HOME/demo on its own embedded warehouse, recreated each time."""
    home = billing_home() / "demo"
    os.environ["BILLING_HOME"] = str(home)
    os.environ.pop("BILLING_WAREHOUSE_URL", None)
    from billing.warehouse import stop_embedded

    if home.exists():
        stop_embedded()
        shutil.rmtree(home)
    home.mkdir(parents=True)
    return home


def _endpoint_catalog(home: Path, url: str, secret: str) -> Path:
    path = home / "demo_endpoint.yaml"
    endpoint = {"endpoint_id": "demo_receiver", "url": url, "secret": secret, "enabled": True}
    path.write_text(yaml.safe_dump({"webhook_endpoints": [endpoint]}))
    return path


def _report(console: Console, receiver) -> None:
    from billing.warehouse import connect

    with connect() as connection:
        invoices = connection.execute(INVOICES).fetchall()
        rejected = connection.execute(REJECTED).fetchall()
        duplicates = connection.execute(DUPLICATES).fetchone()
    table = Table(title="Issued invoices")
    for column in ["number", "customer", "period (UTC)", "lines", "total", "status"]:
        table.add_column(column, no_wrap=column != "lines")
    for number, customer, start, end, currency, lines, total, status in invoices:
        shown_lines = "\n".join(f"{text}: {format_minor(amount, currency)}" for text, amount in lines)
        period = f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}"
        table.add_row(number, customer, period, shown_lines, format_minor(total, currency), status)
    console.print(table)
    reasons = Table(title=f"Rejected events ({duplicates[0]} duplicates dropped, {duplicates[1]} conflicting)")
    reasons.add_column("reason")
    reasons.add_column("events", justify="right")
    for reason, count in rejected:
        reasons.add_row(reason, str(count))
    console.print(reasons)
    hooks = Table(title=f"Webhooks the receiver accepted ({len(receiver.accepted)}, signatures verified)")
    hooks.add_column("webhook-id")
    hooks.add_column("type")
    hooks.add_column("invoice")
    for message_id, payload in receiver.accepted:
        data = payload["data"]
        invoice = data.get("invoice", data)
        hooks.add_row(message_id, payload["type"], f"{invoice.get('invoice_number')} {invoice.get('status')}")
    console.print(hooks)


INVOICES = """
select
    invoices.invoice_number,
    invoices.customer_id,
    invoices.period_start,
    invoices.period_end,
    invoices.currency,
    coalesce(
        jsonb_agg(jsonb_build_array(lines.description, lines.amount_minor) order by lines.line_no)
            filter (where lines.line_no is not null),
        '[]'
    ),
    invoices.total_minor,
    invoices.status
from billing.invoices
left join billing.invoice_lines as lines on invoices.invoice_id = lines.invoice_id
group by invoices.invoice_id
order by invoices.invoice_number
"""

REJECTED = """
select reject_reason, count(*) from billing_marts.fct_rejected_usage_events group by 1 order by 2 desc, 1
"""

DUPLICATES = """
select count(*), count(*) filter (where is_conflicting) from billing_marts.fct_usage_event_duplicates
"""
