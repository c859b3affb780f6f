"""Charging alone (issue 14's goal: ≥ 90% of concurrency ÷ latency), on invoices issued the real way.

    .venv/bin/python bench/charging.py [--invoices 5000] [--latency-ms 100] [--concurrency 16]

On its own BILLING_HOME (bench/.charging-home, wiped first) and embedded PostgreSQL, stopped at the
end: `billing init`, a catalog from bench/workload.py with enough customers for about --invoices
auto_charge invoices, 20 events per customer inserted into raw, a full rebuild and `issue_invoices`
for the month (all untimed), then `charge_open_invoices` with the sandbox gateway, timed. Prints the
charges per second against the ceiling, concurrency ÷ latency.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import report  # noqa: E402
import workload  # noqa: E402
from run import SEED, Timeline  # noqa: E402

EVENTS_PER_CUSTOMER = 20  # every customer gets events, so no starter invoice totals zero (paid at once)
AUTO_CHARGE_SHARE = 0.9  # workload.customers: 9 customers in 10 pay by auto_charge


def issue_month(customer_count: int, timeline: Timeline) -> int:
    """Catalog, events, rebuild and issue; returns the number of open auto_charge invoices."""
    from billing import transform
    from billing.catalog import apply_catalog
    from billing.invoicing import issue_invoices
    from billing.schema import init_warehouse
    from billing.warehouse import connect

    home = Path(os.environ["BILLING_HOME"])
    workload.write_catalog(home / "catalog.yaml", customer_count=customer_count, first_month=timeline.month)
    init_warehouse()
    apply_catalog(home / "catalog.yaml")
    events = workload.month_events_sql(
        tag="m0", count=customer_count * EVENTS_PER_CUSTOMER, seed=SEED, month=timeline.month
    )
    with connect() as connection:
        workload.insert_into_raw(connection, events)
    transform.rebuild(as_of=timeline.close_as_of.isoformat(), grace="1 hour")
    issue_invoices(issued_by_run="bench-charging")
    with connect() as connection:
        return connection.execute(
            "select count(*) from billing.invoices inner join raw.customers using (customer_id)"
            " where status = 'open' and collection_method = 'auto_charge'"
        ).fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=5000, help="auto_charge invoices to charge (about)")
    parser.add_argument("--latency-ms", type=float, default=100, help="sandbox gateway latency per charge")
    parser.add_argument("--concurrency", type=int, default=16, help="BILLING_CHARGE_CONCURRENCY")
    parser.add_argument("--home", default=str(BENCH_DIR / ".charging-home"), help="BILLING_HOME, wiped first")
    args = parser.parse_args(argv)

    home = Path(args.home).resolve()
    os.environ.update(
        BILLING_HOME=str(home),
        BILLING_SANDBOX_LATENCY_MS=str(args.latency_ms),
        BILLING_CHARGE_CONCURRENCY=str(args.concurrency),
    )
    os.environ.pop("BILLING_WAREHOUSE_URL", None)
    from billing.payments.charging import charge_open_invoices
    from billing.payments.sandbox import SandboxGateway
    from billing.warehouse import stop_embedded

    stop_embedded()  # a server left running by an interrupted run
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    timeline = Timeline(1)
    try:
        report.progress("issuing the month …")
        open_invoices = issue_month(math.ceil(args.invoices / AUTO_CHARGE_SHARE), timeline)
        report.progress(f"charging {open_invoices:,} invoices …")
        load = os.getloadavg()[0]
        started = time.perf_counter()
        summary = charge_open_invoices(SandboxGateway(), now=timeline.close_as_of)
        seconds = time.perf_counter() - started
    finally:
        stop_embedded()
    shutil.rmtree(home, ignore_errors=True)

    charges = summary.succeeded + summary.failed
    ceiling = args.concurrency / (args.latency_ms / 1000) if args.latency_ms else math.inf
    print(
        f"{charges:,} charges ({summary.failed} failed) in {seconds:.1f} s = {charges / seconds:.0f} charges/s; "
        f"ceiling {args.concurrency} in flight ÷ {args.latency_ms:g} ms = {ceiling:.0f}/s "
        f"({charges / seconds / ceiling:.0%}); floor {charges / ceiling:.1f} s; "
        f"load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end, {os.cpu_count()} cpus"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
