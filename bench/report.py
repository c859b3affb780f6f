"""The benchmark's one table (rich) and its JSON file."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console(stderr=True)


def progress(message: str) -> None:
    console.log(message)


def save(results: dict, folder: Path, started: datetime) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return path


def print_table(results: dict) -> None:
    figures, parameters = results["figures"], results["parameters"]
    table = Table(title=_title(parameters), title_justify="left")
    table.add_column("step")
    table.add_column("figure", justify="right")
    table.add_column("detail")
    for row in rows(figures, parameters):
        table.add_row(*row)
    for step, error in results["errors"].items():
        table.add_row(f"[red]{step} failed[/red]", "—", error[:300])
    # NOTE: piped output would be cut to 80 columns
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def rows(f: dict, p: dict) -> list[tuple[str, str, str]]:
    """(step, figure, detail) for every figure measured; steps that did not run are left out."""
    out = []

    def add(key: str, step: str, figure, detail: str = "") -> None:
        if key not in f:
            return
        try:
            out.append((step, figure(), detail() if callable(detail) else detail))
        except (KeyError, TypeError, ZeroDivisionError) as error:  # a step that stopped half-way
            out.append((step, "?", f"incomplete: {error!r}"))

    add("catalog_apply_s", "1 catalog apply", lambda: _s(f["catalog_apply_s"]),
        lambda: f"{f['customers']:,} customers/subscriptions, {f['plans']} plans, {f['meters']} meters")
    add("generate_month_s", "2 generate month (CSV)", lambda: _s(f["generate_month_s"]),
        lambda: f"{_gb(f['month_csv_bytes'])} file; not part of the pipeline")
    add("load_rate_rows_per_s", "2 COPY load rate", lambda: f"{f['load_rate_rows_per_s']:,} events/s",
        lambda: f"{f['month_rows']:,} rows in {_s(f['load_month_s'])} (billing.loading.load_events)")
    add("full_rebuild_s", "3 full rebuild", lambda: _s(f["full_rebuild_s"]),
        lambda: f"dbt build --full-refresh, {f['full_rebuild_nodes']} nodes; "
                f"{round(f['month_rows'] / f['full_rebuild_s']):,} events/s")
    add("hourly_1m_idle_s", "4 hourly, no new events", lambda: _s(f["hourly_1m_idle_s"]),
        "usage_pipeline DAG after the rebuild: the fixed cost")
    _hourly(add, f, "1m", "4 hourly, 1 month of history")
    add("cycle_close_s", "5 cycle close", lambda: _s(f["cycle_close_s"]),
        lambda: f"{f['invoices_issued']:,} invoices issued, charges {_counts(f['charges_by_status'])}, "
                f"{f['webhook_events_enqueued']:,} webhooks enqueued; sandbox {p['latency_ms']:g} ms × "
                f"{p['charge_concurrency']} in flight")
    for task, seconds in f.get("cycle_close_tasks", {}).items():
        out.append((f"  {task}", _s(seconds), ""))
    if f.get("cycle_close_tasks", {}).get("charge_invoices"):
        charges = sum(f["charges_by_status"].values())
        rate = charges / f["cycle_close_tasks"]["charge_invoices"]
        ceiling = p["charge_concurrency"] * 1000 / p["latency_ms"] if p["latency_ms"] else None
        out.append(("5 charging", f"{rate:,.0f} charges/s",
                    f"{charges:,} charges in the charge_invoices task"
                    + (f"; {rate / ceiling:.0%} of {p['charge_concurrency']} in flight ÷ {p['latency_ms']:g} ms"
                       if ceiling else "")))
    add("webhook_delivery_rate_per_s", "5b webhook delivery",
        lambda: f"{f['webhook_delivery_rate_per_s']:,} deliveries/s",
        lambda: f"{f['webhook_deliveries']:,} signed deliveries (every event of the hourly run and the close) in "
                f"{_s(f['webhook_delivery_s'])} to one local endpoint; the receiver, in its own process, verified "
                f"{f['webhook_receiver_verified']:,} (in order: {f['webhook_delivered_in_order']}) with "
                f"{f['webhook_receiver_cpu_s'] / max(f['webhook_receiver_verified'], 1) * 1000:.2f} ms CPU each")
    add("history_rebuild_s", f"4 history: {p['history_months']} months in raw",
        lambda: f"{f['history_raw_rows']:,} rows",
        lambda: f"+{f['history_rows_inserted']:,} inserted in {_s(f['history_insert_s'])}; caught up by a "
                f"full rebuild in {_s(f['history_rebuild_s'])} (not a figure); DB {_gb(f['db_bytes_after_history'])}")
    add("hourly_history_idle_s", "4 hourly, no new events", lambda: _s(f["hourly_history_idle_s"]),
        f"with {p['history_months']} months of history")
    _hourly(add, f, "history", f"4 hourly, {p['history_months']} months of history")
    add("floor_s", "6 floor (one SQL statement)", lambda: _s(f["floor_s"]),
        lambda: f"dedupe first ingested per reference + sum/count per customer × meter over the month: "
                f"{f['floor_groups']:,} groups")
    add("event_models_s", "6b event models from raw", lambda: _s(f["event_models_s"]),
        lambda: f"dedupe, validate, attribute, aggregate per period: {f['event_models_nodes']} models, no tests")
    add("floor_s", "[bold]event models / floor[/bold]", lambda: _ratio(f.get("event_models_s"), f["floor_s"]),
        "goal ≤ 2×")
    add("floor_s", "[bold]full rebuild / floor[/bold]", lambda: _ratio(f.get("full_rebuild_s"), f["floor_s"]),
        "goal ≤ 4×")
    add("hourly_history_s", "hourly: history / 1 month",
        lambda: _ratio(f["hourly_history_s"], f.get("hourly_1m_s")), "≈ 1 when the cost follows the new events")
    add("peak_rss_bytes", "peak RSS (benchmark process)", lambda: _gb(max(f["peak_rss_bytes"].values())),
        lambda: "running peak after each step, dbt and every DAG task included: "
                + " · ".join(f"{step} {_gb(size)}" for step, size in f["peak_rss_bytes"].items()))
    add("db_bytes_after_rebuild", "database size", lambda: _gb(f["db_bytes_after_rebuild"]),
        lambda: f"after load + rebuild of one month ({_gb(f['db_bytes_after_load'])} after the load alone); "
                f"≈ {f['db_bytes_after_rebuild'] / f['month_rows']:.0f} bytes per raw row")
    return out


def _hourly(add, f: dict, label: str, step: str) -> None:
    update = f.get(f"hourly_{label}_update") or {}
    add(f"hourly_{label}_s", step, lambda: _s(f[f"hourly_{label}_s"]),
        lambda: f"{f[f'hourly_{label}_rows']:,} new rows (loaded in {_s(f[f'hourly_{label}_load_s'])}); "
                f"ledger rows processed {update.get('ledger_rows_processed', '?')}, "
                f"rebuilt from raw: {update.get('rebuilt_from_raw', '?')}; tasks: "
                + ", ".join(f"{task} {_s(seconds)}" for task, seconds in f[f"hourly_{label}_tasks"].items()))


def _title(p: dict) -> str:
    return (f"billing benchmark ({p['preset']}): {p['customers']:,} customers, {p['events_per_month']:,} events/month, "
            f"{p['history_months']} history months × {p['history_scale']:g}, month {p['month']}, "
            f"{p['cpus']} CPUs, load average {p['load_average_at_start']}→{p['load_average_at_end']}, git {p['git']}")


def _s(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds >= 10 else f"{seconds:.2f} s"


def _gb(size: int) -> str:
    return f"{size / 1e9:.2f} GB"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    return f"{numerator / denominator:.1f}×" if numerator and denominator else "—"


def _counts(counts: dict) -> str:
    return ", ".join(f"{count:,} {status}" for status, count in sorted(counts.items())) or "none"
