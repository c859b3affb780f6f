"""The `billing` command line: set up the warehouse, load the catalog and events, run the DAGs."""

from __future__ import annotations

import gc
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import typer
from rich.console import Console
from typer.core import TyperGroup

from billing.quality.commands import app as quality_app
from billing.settings import DEFAULT_GRACE
from billing.webhooks.commands import app as webhooks_app


class _Commands(TyperGroup):
    """Every command (sub-commands too: they run inside this) tells a warehouse that stops it in one
    line, exit 1, instead of a traceback: unreachable, not set up, out of date (billing.warehouse); and
    so does Stripe refusing the API key (billing.payments.stripe_gateway)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as error:
            from billing.payments.stripe_gateway import refused_key_line
            from billing.warehouse import warehouse_error_line

            if (line := warehouse_error_line(error) or refused_key_line(error)) is None:
                raise
            fail(line)


app = typer.Typer(help="Warehouse-native usage billing.", no_args_is_help=True, pretty_exceptions_enable=False,
                  cls=_Commands)
catalog_app = typer.Typer(help="The catalog: meters, plans, customers, subscriptions, endpoints.", no_args_is_help=True)
load_app = typer.Typer(help="Load raw data into the warehouse.", no_args_is_help=True)
events_app = typer.Typer(
    help="raw.usage_events' months (one partition per month of ingestion): detach old ones, attach them again.",
    no_args_is_help=True,
)
warehouse_app = typer.Typer(help="The warehouse PostgreSQL.", no_args_is_help=True)
invoices_app = typer.Typer(help="Issued invoices: list, show, pdf, void.", no_args_is_help=True)
analyst_app = typer.Typer(
    help="Read-only logins for analysts and BI tools: they read the marts in billing_marts and nothing else.",
    no_args_is_help=True,
)
app.add_typer(catalog_app, name="catalog")
app.add_typer(load_app, name="load")
app.add_typer(events_app, name="events")
app.add_typer(warehouse_app, name="warehouse")
app.add_typer(invoices_app, name="invoices")
credit_notes_app = typer.Typer(help="Credit notes (SPEC §13): correct an issued invoice; refund, credit or reduce.",
                               no_args_is_help=True)
app.add_typer(credit_notes_app, name="credit-notes")
app.add_typer(analyst_app, name="analyst")
stripe_app = typer.Typer(help="The usage sync to Stripe Meters of the plans Stripe invoices (SPEC §16).",
                         no_args_is_help=True)
app.add_typer(stripe_app, name="stripe")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(quality_app, name="quality")

console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def init() -> None:
    """Create or upgrade schemas `raw` and `billing` and everything the pipeline needs."""
    from billing.schema import InitRefused, init_warehouse

    try:
        init_warehouse()
    except InitRefused as error:
        fail(str(error))
    console.print("warehouse ready: schemas raw and billing are up to date")


@catalog_app.command("apply")
def catalog_apply(file: Path) -> None:
    """Validate FILE.yaml, then upsert it; nothing is written if anything is invalid."""
    from billing.catalog import CatalogError, apply_catalog

    try:
        written = apply_catalog(file)
    except CatalogError as error:
        fail(str(error))
    console.print("catalog applied: " + ", ".join(f"{count} {table}" for table, count in written.items()))


@load_app.command("events")
def load_events(file: Path) -> None:
    """Load FILE (CSV with a header, or JSON Lines) into raw.usage_events, all or nothing."""
    from billing.loading import LoadError, load_events

    try:
        result = load_events(file, show_progress=sys.stderr.isatty())
    except LoadError as error:
        fail(f"{file}: refused, nothing loaded: {error}")
    console.print(f"loaded {result.rows} events from {file}", highlight=False, soft_wrap=True)
    if month := result.month_without_partition:
        errors.print(
            f"note: raw.usage_events has no partition for {month:%Y-%m} and only its owner can create one:"
            " this month's events wait in raw.usage_events_default (billed the same) until the owner runs"
            " `billing init`", highlight=False, soft_wrap=True,
        )


@events_app.command("detach")
def events_detach(month: str = typer.Argument(..., help="YYYY-MM: the month of ingestion.")) -> None:
    """Detach a month of raw events, once ended and processed; billing goes on as before.

    \b
    Its partition stays as the table raw.usage_events_YYYY_MM: dump it, drop it when you like.
    While it is detached the models are never rebuilt from raw (docs/incremental.md).
    """
    from billing.raw_events import PartitionError, detach_month

    try:
        rows = detach_month(_month(month))
    except PartitionError as error:
        fail(str(error))
    console.print(f"detached {month}: {rows} events, now the table raw.usage_events_{month.replace('-', '_')}")


@events_app.command("attach")
def events_attach(month: str = typer.Argument(..., help="YYYY-MM: a month detached before.")) -> None:
    """Attach a detached month's table raw.usage_events_YYYY_MM to raw.usage_events again."""
    from billing.raw_events import PartitionError, attach_month

    try:
        rows = attach_month(_month(month))
    except PartitionError as error:
        fail(str(error))
    console.print(f"attached {month}: {rows} events")


def _month(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        fail(f"{text!r} is not a month: expected YYYY-MM", code=2)


@app.command("close-cycles")
def close_cycles(
    as_of: str = typer.Option(..., "--as-of", help="Logical time of the close (ISO 8601; UTC if no offset)."),
    grace: str = typer.Option(DEFAULT_GRACE, "--grace", help="Close periods with as_of >= end + grace (1h, 30m, 2d)."),
) -> None:
    """Run the billing_cycle_close DAG through Airflow for AS_OF."""
    from billing.window import ClosingWindow

    try:
        window = ClosingWindow.parse(as_of, grace)
    except ValueError as error:
        fail(str(error), code=2)
    _run("billing_cycle_close", window.as_of, conf=window.as_dict())


@app.command()
def run(
    dag_id: str,
    logical_date: str = typer.Option(None, "--logical-date", help="ISO 8601 (default: now)."),
) -> None:
    """Run any of the project's DAGs through Airflow for a logical time (never in the future)."""
    from billing.window import parse_timestamp, refuse_future

    try:
        moment = refuse_future(parse_timestamp(logical_date)) if logical_date else datetime.now(UTC)
    except ValueError as error:
        fail(str(error), code=2)
    _run(dag_id, moment, conf={})


@app.command()
def rebuild(
    as_of: str = typer.Option(None, "--as-of", help="Logical time (ISO 8601; default now)."),
    grace: str = typer.Option(DEFAULT_GRACE, "--grace"),
) -> None:
    """Rebuild every model from raw (dbt build --full-refresh); same results as the hourly path."""
    from billing import runs, transform
    from billing.window import ClosingWindow

    try:
        window = ClosingWindow.parse(as_of or datetime.now(UTC), grace)
    except ValueError as error:
        fail(str(error), code=2)
    with console.status("rebuilding every model from raw (waiting for any run in progress first)"):
        try:
            with runs.exclusive("billing rebuild", window.as_of.isoformat()):
                nodes = transform.rebuild(**window.as_dict())
        except (transform.TransformFailed, runs.RunLeaseBusy) as error:
            fail(str(error))
    console.print(f"rebuilt {nodes} dbt nodes from raw")


@app.command()
def backfill(
    start: str = typer.Option(..., "--from", help="First moment to close periods at (ISO 8601)."),
    end: str = typer.Option(..., "--to", help="Last moment (ISO 8601); not in the future."),
    grace: str = typer.Option(DEFAULT_GRACE, "--grace", help="Close periods with moment >= end + grace."),
) -> None:
    """Close every period that became closable between --from and --to, in order, through Airflow."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from billing import backfill as backfills
    from billing.runs import RunLeaseBusy
    from billing.window import ClosingWindow, parse_timestamp

    try:
        first, window = parse_timestamp(start), ClosingWindow.parse(end, grace)
        with console.status(f"finding the periods that became closable from {first.isoformat()} to"
                            f" {window.as_of.isoformat()}"):
            closes = backfills.plan(first, window.as_of, grace=window.grace)
    except (ValueError, RunLeaseBusy) as error:
        fail(str(error), code=2 if isinstance(error, ValueError) else 1)
    if not closes:
        console.print("backfill: nothing to run (every period closable in that range is invoiced)")
        return
    console.print(
        f"backfill: {len(closes)} close(s) of billing_cycle_close, {sum(close.periods for close in closes)}"
        f" period(s), from {closes[0].at:%Y-%m-%d %H:%M} to {closes[-1].at:%Y-%m-%d %H:%M} UTC", highlight=False,
    )
    for close in closes:
        console.print(f"  {close.at:%Y-%m-%d %H:%M} UTC: {close.periods} period(s) of {close.customers}"
                      " customer(s)", highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("backfilling", total=len(closes))

        def report(close, outcome) -> None:
            progress.console.print(f"{close.at:%Y-%m-%d %H:%M} UTC: {outcome.run_id} {outcome.state}", highlight=False)
            progress.advance(bar)

        outcomes = _following_runs(lambda: backfills.backfill(closes, grace=window.grace, on_run=report))
    if not outcomes[-1].succeeded:
        _fail_run(outcomes[-1], prefix=f"backfill stopped after {len(outcomes) - 1} of {len(closes)} close(s): ")
    console.print(f"backfill done: {len(outcomes)} close(s)")


@app.command()
def demo() -> None:
    """Bill the worked examples end to end on a fresh demo warehouse and show the results."""
    from billing.demo.run import run_demo

    run_demo(console)


@invoices_app.command("list")
def invoices_list(
    status: str = typer.Option(None, help="open, paid, payment_failed, uncollectible or void."),
    customer: str = typer.Option(None, help="Only this customer's invoices."),
    limit: int = typer.Option(50, help="At most this many, newest first."),
) -> None:
    """List issued invoices, newest first; then drafts held back from issue and re-rated differences no
    invoice can carry."""
    from rich.table import Table

    from billing.invoice_admin import held_drafts, list_invoices, unbilled_adjustments

    table = Table("number", "customer", "period start (UTC)", "period end (UTC)", "total", "status")
    for invoice in list_invoices(status=status, customer_id=customer, limit=limit):
        table.add_row(
            invoice["invoice_number"], invoice["customer_id"], f"{invoice['period_start']:%Y-%m-%d %H:%M}",
            f"{invoice['period_end']:%Y-%m-%d %H:%M}", _money(invoice["total_minor"], invoice["currency"]),
            invoice["status"],
        )
    console.print(table)
    for draft in held_drafts(customer_id=customer):
        console.print(
            f"[yellow]held draft {draft['invoice_id']} ({draft['customer_id']}, {draft['subscription_id']},"
            f" period {draft['period_start']:%Y-%m-%d %H:%M} to {draft['period_end']:%Y-%m-%d %H:%M}):"
            f" {draft['hold_reason']}[/] (billing_marts.fct_draft_invoices)",
            highlight=False, soft_wrap=True,
        )
    for adjustment in unbilled_adjustments(customer_id=customer):
        console.print(
            f"[yellow]unbilled adjustment to {adjustment['original_invoice_number']}"
            f" ({adjustment['customer_id']}): {_money(adjustment['amount_minor'], adjustment['currency'])},"
            f" {adjustment['reason']}[/] (billing_marts.fct_unbilled_adjustments)",
            highlight=False, soft_wrap=True,
        )


@stripe_app.command("sync-status")
def stripe_sync_status() -> None:
    """Per subscription: meter events sent, calls pending, hours corrected and unsynced; then each
    unsynced hour with its reason."""
    from billing.stripe_sync import sync_status

    subscriptions, hours = sync_status()
    for row in subscriptions:
        console.print(
            f"{row['subscription_id']}: sent {row['sent']}, pending {row['pending']}, corrected {row['corrected']},"
            f" unsynced {row['unsynced']}; last answer {row['last_sent_at'] or 'never'}",
            highlight=False, soft_wrap=True,
        )
    for hour in hours:
        console.print(
            f"[yellow]unsynced {hour['subscription_id']} {hour['event_name']} {hour['hour_start']:%Y-%m-%d %H:%M}Z:"
            f" warehouse {hour['warehouse_quantity']}, Stripe {hour['stripe_quantity']}: {hour['reason']}[/]",
            highlight=False, soft_wrap=True,
        )
    if not subscriptions and not hours:
        console.print("nothing synced to Stripe yet")


@invoices_app.command("show")
def invoices_show(invoice: str = typer.Argument(..., help="Invoice id or number.")) -> None:
    """Show an invoice with its lines and charge attempts."""
    from rich.table import Table

    from billing.invoice_admin import InvoiceNotFound, show_invoice

    try:
        detail = show_invoice(invoice)
    except InvoiceNotFound as error:
        fail(str(error))
    head = detail.invoice
    console.print(
        f"[bold]{head['invoice_number']}[/] ({head['invoice_id']}) {head['customer_id']} / {head['subscription_id']}"
        f"\nperiod {head['period_start']:%Y-%m-%d %H:%M} → {head['period_end']:%Y-%m-%d %H:%M} UTC,"
        f" issued {head['issued_at']:%Y-%m-%d %H:%M}, status {head['status']}", highlight=False,
    )
    lines = Table("#", "kind", "description", "quantity", "included", "amount")
    for line in detail.lines:
        lines.add_row(str(line["line_no"]), line["kind"], line["description"], _plain(line["quantity"]),
                      _plain(line["included_units"]),
                      # an inclusive tax line: contained in the other lines, not added (SPEC §12)
                      ("" if line["adds_to_total"] else "incl. ") + _money(line["amount_minor"], head["currency"]))
    lines.add_row("", "", "[bold]total[/]", "", "", f"[bold]{_money(head['total_minor'], head['currency'])}[/]")
    console.print(lines)
    if head["reverse_charge"]:
        console.print("reverse charge: no tax charged; the customer accounts for it")
    for attempt in detail.attempts:
        console.print(f"charge attempt {attempt['attempt_no']}: {attempt['status']} {attempt['failure_code'] or ''}")


@invoices_app.command("pdf")
def invoices_pdf(
    invoice: str = typer.Argument(..., help="Invoice id or number."),
    output: Path = typer.Option(None, "--output", "-o", help="The file to write (default: the invoice's stored PDF)."),
) -> None:
    """Render an invoice as it stands now (paid amounts, a VOID mark) to its stored PDF or to -o FILE."""
    from billing.invoice_admin import InvoiceNotFound
    from billing.invoice_pdfs import write_invoice_pdf

    try:
        pdf = write_invoice_pdf(invoice, output=output)
    except InvoiceNotFound as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot write {error.filename or output}: {error.strerror}")
    console.print(f"{pdf.invoice_number}: {pdf.path}" + ("" if pdf.written else " (unchanged)"), highlight=False)


@invoices_app.command("void")
def invoices_void(
    invoice: str = typer.Argument(..., help="Invoice id or number."),
    reason: str = typer.Option(..., "--reason", help="Why (kept on the webhook event)."),
) -> None:
    """Void an unpaid invoice (operator action); sends billing.invoice.voided."""
    from billing.invoice_admin import InvoiceNotFound, VoidNotAllowed, void_invoice

    try:
        voided = void_invoice(invoice, reason=reason)
    except (InvoiceNotFound, VoidNotAllowed) as error:
        fail(str(error))
    console.print(f"{voided['invoice_number']} voided")


@credit_notes_app.command("create")
def credit_notes_create(
    invoice: str = typer.Argument(..., help="Invoice id or number."),
    amount: str = typer.Option(None, "--amount", help="The whole note, tax included, in major units (49.00)."),
    line: list[str] = typer.Option(None, "--line", help="N=X: X (major units, before tax) off invoice line N."),
    reason: str = typer.Option(..., "--reason", help="duplicate, fraudulent, order_change or product_unsatisfactory."),
    method: str = typer.Option(..., "--method", help="refund, credit (a grant) or reduce (an unpaid invoice)."),
    memo: str = typer.Option(None, "--memo", help="Free text kept on the note."),
    key: str = typer.Option(
        None, "--idempotency-key",
        help="Names the note: the same key never makes a second one (default: invoice, amounts, reason, method).",
    ),
) -> None:
    """Create a credit note on an issued invoice; running the same command again creates nothing new."""
    from billing.credit_notes import CreditNoteRefused, RefundsUnresolved, create_credit_note
    from billing.invoice_admin import InvoiceNotFound

    try:
        result = create_credit_note(invoice, amount=amount, line_amounts=_line_amounts(line), reason=reason,
                                    method=method, memo=memo, key=key)
    except (InvoiceNotFound, CreditNoteRefused, RefundsUnresolved, ValueError) as error:
        fail(str(error))
    note, refund = result.credit_note, result.refund
    outcome = f"; refund {refund['status']} {refund['gateway_refund_id'] or refund['failure_code']}" if refund else ""
    console.print(
        f"{note['credit_note_number']} ({note['credit_note_id']}) on {note['invoice_number']}:"
        f" {_money(note['amount_minor'], note['currency'])}, {note['method']}, {note['reason']}"
        + ("" if result.created else " (already created)") + outcome,
        highlight=False, soft_wrap=True,
    )


def _line_amounts(pairs: list[str] | None) -> dict[int, str] | None:
    amounts: dict[int, str] = {}
    for pair in pairs or []:
        number, sep, value = pair.partition("=")
        if not sep or not number.strip().isdigit() or int(number) in amounts:
            fail(f"--line {pair}: expected N=X, one per invoice line (e.g. --line 2=10.00)")
        amounts[int(number)] = value
    return amounts or None


@credit_notes_app.command("list")
def credit_notes_list(
    invoice: str = typer.Option(None, "--invoice", help="Only this invoice's (id or number)."),
    customer: str = typer.Option(None, "--customer", help="Only this customer's."),
) -> None:
    """List credit notes, newest first."""
    from rich.table import Table

    from billing.credit_notes import list_credit_notes

    table = Table("number", "invoice", "customer", "amount", "method", "reason", "refund", "created (UTC)")
    for note in list_credit_notes(invoice=invoice, customer_id=customer):
        table.add_row(note["credit_note_number"], note["invoice_number"], note["customer_id"],
                      _money(note["amount_minor"], note["currency"]), note["method"], note["reason"],
                      note["refund_status"] or "", f"{note['created_at']:%Y-%m-%d %H:%M}")
    console.print(table)


@credit_notes_app.command("show")
def credit_notes_show(credit_note: str = typer.Argument(..., help="Credit note id or number.")) -> None:
    """Show a credit note with the invoice lines it credits and its refund."""
    from rich.table import Table

    from billing.credit_notes import CreditNoteNotFound, show_credit_note

    try:
        detail = show_credit_note(credit_note)
    except CreditNoteNotFound as error:
        fail(str(error))
    note, currency = detail.credit_note, detail.credit_note["currency"]
    console.print(
        f"[bold]{note['credit_note_number']}[/] ({note['credit_note_id']}) on {note['invoice_number']},"
        f" {note['customer_id']}: {note['method']}, {note['reason']}, created {note['created_at']:%Y-%m-%d %H:%M}"
        f" by {note['created_by']}" + (f"\nmemo: {note['memo']}" if note["memo"] else ""),
        highlight=False, soft_wrap=True,
    )
    lines = Table("#", "invoice line", "kind", "amount")
    for line in detail.lines:
        lines.add_row(str(line["line_no"]), str(line["invoice_line_no"]), line["kind"],
                      _money(line["amount_minor"], currency))
    lines.add_row("", "", "[bold]total[/]", f"[bold]{_money(note['amount_minor'], currency)}[/]")
    console.print(lines)
    if refund := detail.refund:
        console.print(f"refund {refund['refund_id']}: {refund['status']}"
                      f" {refund['gateway_refund_id'] or refund['failure_code'] or ''}", highlight=False)


@app.command()
def docs(
    port: int = typer.Option(8080, help="Port to serve the docs on (127.0.0.1)."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="--no-serve: generate the docs only."),
) -> None:
    """Generate the dbt docs (models, marts, metrics, exposures, the warehouse's catalog) and serve them."""
    from billing import transform

    target = transform.generate_docs()
    console.print(f"dbt docs generated in {target}")
    if serve:
        console.print(f"serving them on http://127.0.0.1:{port} (Ctrl-C stops)")
        transform.serve_docs(port)


@app.command("mf", add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def metricflow(context: typer.Context) -> None:
    """MetricFlow's `mf` against the warehouse: `billing mf query --metrics revenue --group-by metric_time__month`."""
    from billing.metrics import run_mf

    raise typer.Exit(run_mf(context.args))


@app.command()
def usage(customer_id: str) -> None:
    """Usage so far this period, its cost, included units left and the projected period amount."""
    from rich.table import Table

    from billing.usage_report import current_usage

    rows = _current_period_rows(current_usage, customer_id)
    table = Table("meter", "used", "included left", "so far", "projected", title=_current_period_title(rows[0]))
    for row in rows:
        table.add_row(
            row["display_name"], _plain(row["quantity"]), _plain(row["included_units_left"]),
            _money(row["amount_minor"], row["currency"]), _money(row["projected_amount_minor"], row["currency"]),
        )
    console.print(table)


@app.command()
def entitlements(customer_id: str) -> None:
    """Usage limits this period (SPEC §15), per meter: used, limit, remaining, behavior, state."""
    from rich.table import Table

    from billing.usage_report import entitlements as customer_entitlements

    rows = _current_period_rows(customer_entitlements, customer_id)
    table = Table("meter", "used", "limit", "remaining", "behavior", "state", title=_current_period_title(rows[0]))
    for row in rows:
        table.add_row(row["display_name"], _plain(row["usage"]), _plain(row["usage_limit"]) or "none",
                      _plain(row["remaining"]), row["limit_behavior"], row["state"])
    console.print(table)


def _current_period_rows(read, customer_id: str) -> list[dict]:
    """A usage mart's rows for the customer, or one line saying why there are none."""
    from billing.usage_report import UsageNotReported

    try:
        rows = read(customer_id)
    except UsageNotReported as error:
        fail(str(error))
    if not rows:
        fail(f"customer '{customer_id}' has no active subscription with a plan charge (as of the last pipeline run)")
    return rows


def _current_period_title(first: dict) -> str:
    return (f"{first['customer_id']} · {first['subscription_id']} · {first['period_start']:%Y-%m-%d %H:%M} → "
            f"{first['period_end']:%Y-%m-%d %H:%M} UTC · as of {first['as_of']:%Y-%m-%d %H:%M}")


@analyst_app.command("add")
def analyst_add(
    name: str = typer.Argument(..., help="The login's name: lower-case letters, digits and _."),
    rotate: bool = typer.Option(False, "--rotate", help="The login exists: give it a new password."),
) -> None:
    """Create a login in the read-only role billing_analyst with a generated password; print its URL.

    \b
    The password is shown once (--rotate issues a new one). Give the URL to:
      psql:      psql 'postgresql://NAME:PASSWORD@HOST:PORT/billing'
      Metabase:  a PostgreSQL database: its host, port, database, user, password
      Superset:  postgresql+psycopg2://NAME:PASSWORD@HOST:PORT/billing
    The embedded warehouse picks its port when it starts: `billing warehouse url`.
    """
    from billing.analysts import AnalystError, add_analyst

    try:
        url = add_analyst(name, rotate=rotate)
    except AnalystError as error:
        fail(str(error))
    console.print(f"analyst {name} is ready; its URL (the password is shown only here):", highlight=False)
    print(url)


@app.command()
def dashboard(
    port: int = typer.Option(8501, "--port", help="Serve on HOST:PORT."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="The address to listen on (0.0.0.0: every interface, as in a container)."
    ),
) -> None:
    """Serve the web dashboard (Revenue, Receivables, Customer, Data quality) until interrupted.

    It reads the marts as its own analyst login, billing_dashboard.
    The login is made on first start; its password is kept in BILLING_HOME/dashboard.
    """
    from billing.analysts import AnalystError
    from billing.dashboard import serve

    try:
        serve(port, host=host)
    except AnalystError as error:
        fail(str(error))


@warehouse_app.command("url")
def warehouse_url() -> None:
    """Print the warehouse URL (starting the embedded server if needed)."""
    from billing.warehouse import warehouse_url

    console.print(warehouse_url(), highlight=False)


@warehouse_app.command("psql")
def warehouse_psql() -> None:
    """Open psql on the warehouse."""
    from billing.warehouse import psql_command

    command = psql_command()
    os.execvp(command[0], command)


@warehouse_app.command("stop")
def warehouse_stop() -> None:
    """Stop the embedded server (a no-op for BILLING_WAREHOUSE_URL)."""
    from billing.warehouse import stop_embedded

    console.print("embedded warehouse stopped" if stop_embedded() else "no embedded warehouse running")


def _money(amount_minor: int | None, currency: str) -> str:
    """An amount for people; null is an amount beyond what one line holds (var max_amount_minor)."""
    from billing.money import format_minor

    return "out of range" if amount_minor is None else format_minor(amount_minor, currency)


def _plain(value) -> str:
    return "" if value is None else f"{value.normalize():f}"


def _run(dag_id: str, logical_date: datetime, *, conf: dict) -> None:
    from billing.orchestration import run_dag

    with console.status(f"running {dag_id} for {logical_date.isoformat()} through Airflow"):
        outcome = _following_runs(lambda: run_dag(dag_id, logical_date=logical_date, conf=conf))
    if not outcome.succeeded:
        _fail_run(outcome)
    console.print(f"{dag_id} run {outcome.run_id}: success")


def _following_runs(runner):
    """Call `runner`, which runs DAGs through Airflow; each error becomes one line."""
    from billing.airflow_api import AirflowApiError
    from billing.orchestration import MetadataBusy

    try:
        return runner()
    except LookupError as error:
        fail(str(error), code=2)
    except (AirflowApiError, MetadataBusy) as error:
        fail(str(error))
    finally:
        # NOTE: skips the ~2.5 s final garbage collection of Airflow's objects at exit.
        gc.freeze()


def _fail_run(outcome, prefix: str = "") -> None:
    """One line per failed task with its error, then the tasks that did not run."""
    details = "".join(f"\n  {task}: {message}" for task, message in outcome.failure_messages.items())
    if outcome.not_run:
        details += f"\n  did not run: {', '.join(outcome.not_run)}"
    fail(
        f"{prefix}{outcome.dag_id} run {outcome.run_id} failed{details}"
        + (f"\n(full log: {outcome.log_path})" if outcome.log_path else "")
    )
