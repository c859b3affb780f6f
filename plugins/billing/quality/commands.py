"""`billing quality …`: run a gate by hand, read its results, acknowledge a known anomaly.

Registered by the main CLI as `billing quality`; importing this module is cheap (Great
Expectations is imported only by the commands that build or run a gate).
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from billing.settings import DEFAULT_GRACE

app = typer.Typer(help="Data-quality gates: run, results, acknowledgements, configuration.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


def _fail(message: str, code: int = 1) -> None:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _window(as_of: str, grace: str):
    from billing.window import ClosingWindow

    try:
        return ClosingWindow.parse(as_of, grace)
    except ValueError as error:
        _fail(str(error), code=2)


@app.command("acknowledge")
def acknowledge(
    gate: str = typer.Option(
        ..., "--gate", help="Gate name: raw_contracts, closing_events, draft_invoices, ledger, stripe_sync."
    ),
    check: str = typer.Option(..., "--check", help="The failed check to let through (as named in the failure)."),
    as_of: str = typer.Option(..., "--as-of", help="The window: the run's as_of, as shown in the failure (ISO 8601)."),
    reason: str = typer.Option(..., "--reason", help="Why this anomaly is known and acceptable."),
    by: str = typer.Option(None, "--by", help="Who acknowledges (default: BILLING_OPERATOR or the OS user)."),
    grace: str = typer.Option(DEFAULT_GRACE, "--grace", help="The run's grace, to list the gate's checks."),
) -> None:
    """Let CHECK of GATE pass for the run with this AS_OF only; recorded with who, why and when."""
    from billing.quality.acknowledgements import acknowledge as record
    from billing.quality.billing_gates import gate_for

    window = _window(as_of, grace)
    try:
        known = [item.name for item in gate_for(gate, window).checks]
    except ValueError as error:
        _fail(str(error), code=2)
    if check not in known:
        _fail(f"gate {gate} has no check {check!r} (its checks: {', '.join(known)})", code=2)
    try:
        note = record(gate=gate, check_name=check, as_of=window.as_of, reason=reason, by=by)
    except ValueError as error:
        _fail(str(error), code=2)
    console.print(
        f"acknowledged {note.gate}.{note.check_name} for as_of {note.as_of.isoformat()}"
        f" by {note.acknowledged_by}: {note.reason}", highlight=False,
    )


@app.command("acknowledgements")
def acknowledgements(gate: str = typer.Option(None, "--gate", help="Only this gate.")) -> None:
    """List acknowledgements, newest window first."""
    from billing.quality.acknowledgements import list_acknowledgements

    table = Table("gate", "check", "as_of", "by", "at", "reason")
    for note in list_acknowledgements(gate):
        table.add_row(note.gate, note.check_name, note.as_of.isoformat(), note.acknowledged_by,
                      note.acknowledged_at.isoformat(timespec="seconds"), note.reason)
    console.print(table)


@app.command("check")
def check(
    gate: str = typer.Argument(..., help="raw_contracts, closing_events, draft_invoices, ledger or stripe_sync."),
    as_of: str = typer.Option(..., "--as-of", help="The window's logical time (ISO 8601; UTC if no offset)."),
    grace: str = typer.Option(DEFAULT_GRACE, "--grace"),
) -> None:
    """Run one gate now on the warehouse as it is (e.g. after fixing data, before clearing the task)."""
    from billing.quality import run_gate
    from billing.quality.billing_gates import gate_for

    window = _window(as_of, grace)
    try:
        result = run_gate(gate_for(gate, window), run_label=f"manual as_of={window.as_of.isoformat()}")
    except ValueError as error:
        _fail(str(error), code=2)
    for failure in result.acknowledged:
        console.print(f"[yellow]acknowledged[/] {failure.describe()}", highlight=False)
    if not result.success:
        _fail(f"gate {gate} failed:\n  " + "\n  ".join(failure.describe() for failure in result.failures))
    console.print(f"gate {gate} passed")


@app.command("results")
def results(
    gate: str = typer.Option(None, "--gate", help="Only this gate."),
    failed: bool = typer.Option(False, "--failed", help="Only failed (or acknowledged) expectations."),
    limit: int = typer.Option(50, "--limit"),
) -> None:
    """The latest stored results (billing.quality_results), newest first."""
    from billing.warehouse import connect

    with connect() as connection:
        rows = connection.execute(
            "select checked_at, run_label, gate, check_name, expectation, success, acknowledged, observed"
            " from billing.quality_results"
            " where (%(gate)s::text is null or gate = %(gate)s) and (not %(failed)s or not success)"
            " order by checked_at desc, gate, check_name limit %(limit)s",
            {"gate": gate, "failed": failed, "limit": limit},
        ).fetchall()
    table = Table("checked_at", "run", "gate", "check", "expectation", "verdict", "observed")
    for checked_at, run_label, gate_name, check_name, expectation, success, acked, observed in rows:
        verdict = "pass" if success else ("acknowledged" if acked else "FAIL")
        table.add_row(checked_at.isoformat(timespec="seconds"), run_label, gate_name, check_name, expectation,
                      verdict, json.dumps(observed, default=str)[:200])
    console.print(table)


@app.command("config")
def config() -> None:
    """Print the thresholds in force (the file's values over the defaults) and where they came from."""
    from billing.quality.config import QualityConfigError, config_path, load_quality_config

    try:
        loaded = load_quality_config()
    except QualityConfigError as error:
        _fail(str(error))
    source = str(loaded.path) if loaded.path else f"defaults (no {config_path()})"
    console.print(f"# from {source}", highlight=False)
    console.print_json(json.dumps(loaded.closing_events.model_dump(), default=str))
