"""Charging and webhook delivery, fanned out over shards, on invoices issued the real way.

    .venv/bin/python bench/charging.py [--invoices 5000] [--latency-ms 100] [--concurrency 16]
                                       [--shards 1 2 4] [--endpoints 8]

On its own BILLING_HOME (bench/.charging-home, wiped first) and embedded PostgreSQL, stopped at the
end: `billing init`, a catalog from bench/workload.py with enough customers for about --invoices
auto_charge invoices, 20 events per customer inserted into raw, a full rebuild and `issue_invoices`
for the month, and --endpoints webhook endpoints on one verifying receiver process (all untimed).

Then, for each count N of --shards, as the workers of a close run `charge_invoices[k]` and
`dispatch_webhooks[k]` (billing.shards): N processes, one per shard, charge their customers'
invoices (`charge_open_invoices`, sandbox gateway, --concurrency calls in flight each), timed from
the moment all N are ready to the last one's end; then N processes deliver the outbox to their
endpoints (`dispatch_webhooks`), timed the same way. Before each count the charges are undone (the
attempts, the sandbox's ledger and the outbox emptied, the invoices reopened), so every count
charges the same invoices and delivers the same events. Prints, per count, the charges per second
against the ceiling N × concurrency ÷ latency, and the deliveries per second.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import measure  # noqa: E402
import report  # noqa: E402
import workload  # noqa: E402
from run import SEED, Timeline  # noqa: E402

EVENTS_PER_CUSTOMER = 20  # every customer gets events, so no starter invoice totals zero (paid at once)
AUTO_CHARGE_SHARE = 0.9  # workload.customers: 9 customers in 10 pay by auto_charge
SHARD_TIMEOUT_S = 3600

# Undo a count's charges and deliveries: the next count charges the same invoices, delivers the same events
# and posts the same payments (the ledger is emptied: it refuses a delete, and charging does not read it).
UNDO_CHARGES = """
update billing.invoices set status = 'open'
where invoice_id in (select charge_attempts.invoice_id from billing.charge_attempts);
truncate billing.webhook_delivery_attempts, billing.webhook_deliveries, billing.webhook_events,
    billing.charge_attempts, billing.sandbox_gateway_charges, billing.journal_lines, billing.journal_entries;
"""


def fresh_home(args) -> Path:
    """`args.home`, wiped, as BILLING_HOME of an embedded warehouse (never the operator's), with the
    sandbox's latency, the calls in flight and the local receiver allowed; returns it."""
    from billing.warehouse import stop_embedded

    home = Path(args.home).resolve()
    os.environ.update(
        BILLING_HOME=str(home),
        BILLING_SANDBOX_LATENCY_MS=str(args.latency_ms),
        BILLING_CHARGE_CONCURRENCY=str(args.concurrency),
        BILLING_WEBHOOK_ALLOW_HOSTS="127.0.0.1",  # the receiver listens there
    )
    os.environ.pop("BILLING_WAREHOUSE_URL", None)
    stop_embedded()  # a server left running by an interrupted run
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    return home


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


def add_endpoints(receiver: measure.ReceiverProcess, event_types: dict[str, list[str] | None]) -> None:
    """An endpoint per id, with its event types (None: every type), every one at the receiver (one
    secret: every path is its endpoint)."""
    import yaml
    from billing.catalog import apply_catalog

    path = Path(os.environ["BILLING_HOME"]) / "endpoints.yaml"
    path.write_text(yaml.safe_dump({"webhook_endpoints": [
        {"endpoint_id": endpoint_id, "url": f"{receiver.url}{endpoint_id}", "secret": receiver.secret,
         "event_types": types}
        for endpoint_id, types in event_types.items()
    ]}))
    apply_catalog(path)


def fan_out(job: str, shards: int, now: datetime) -> tuple[float, list[dict]]:
    """`job` ("charge" or "deliver") in one process per shard; the seconds from all ready to all done,
    and each shard's summary."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(shards + 1)
    results = context.Queue()
    processes = [context.Process(target=_shard_task, args=(job, index, shards, now, ready, results))
                 for index in range(shards)]
    for process in processes:
        process.start()
    ready.wait(timeout=SHARD_TIMEOUT_S)
    started = time.perf_counter()
    summaries = [results.get(timeout=SHARD_TIMEOUT_S) for _ in processes]
    seconds = time.perf_counter() - started
    for process in processes:
        process.join()
    failed = [summary["error"] for summary in summaries if "error" in summary]
    if failed:
        raise RuntimeError(f"{job}: " + "; ".join(failed))
    return seconds, summaries


def _shard_task(job: str, index: int, shards: int, now: datetime, ready, results) -> None:
    """One shard's task, in a process of its own: imports and a first connection, then the others
    are waited for, then the job; its summary (or error) goes to `results`."""
    from billing.payments.charging import charge_open_invoices
    from billing.payments.sandbox import SandboxGateway
    from billing.shards import Shard
    from billing.warehouse import connect
    from billing.webhooks.dispatch import dispatch_webhooks

    with connect():
        pass
    ready.wait(timeout=SHARD_TIMEOUT_S)
    shard = Shard(index, shards)
    try:
        if job == "charge":
            summary = charge_open_invoices(SandboxGateway(), now=now, shard=shard)
        else:
            summary = dispatch_webhooks(shard=shard)
        results.put(summary.__dict__)
    except Exception as error:  # reported by the parent, which waits for every shard
        results.put({"error": f"shard {index}: {type(error).__name__}: {error}"})


def measure_shards(shards: int, *, open_invoices: int, receiver: measure.ReceiverProcess, endpoints: int,
                   args, now: datetime) -> str:
    """Charge and deliver with `shards` processes; one line of figures. Raises unless every invoice was
    charged once and every event delivered once to every endpoint, its signature verified."""
    from billing.warehouse import connect

    with connect() as connection:
        connection.execute(UNDO_CHARGES)
        per_shard = connection.execute(
            "select count(*) from unnest(%s::text[]) as endpoint_id group by billing.shard_of(endpoint_id, %s)",
            ([f"e{index}" for index in range(endpoints)], shards),
        ).fetchall()
    load = os.getloadavg()[0]
    charge_s, charged = fan_out("charge", shards, now)
    charges = sum(summary["succeeded"] + summary["failed"] for summary in charged)
    if charges != open_invoices or measure.scalar("select count(*) from billing.sandbox_gateway_charges") != charges:
        raise RuntimeError(f"{shards} shards: {charges:,} charges for {open_invoices:,} invoices")
    verified_before = len(receiver.received().accepted)
    deliver_s, delivered = fan_out("deliver", shards, now)
    deliveries = sum(summary["delivered"] for summary in delivered)
    expected = measure.scalar("select count(*) * %s from billing.webhook_events", endpoints)
    received = receiver.received()
    verified = len(received.accepted) - verified_before
    if not deliveries == expected == verified or received.rejected:
        raise RuntimeError(f"{shards} shards: {deliveries:,} deliveries of {expected:,}, {verified:,} verified,"
                           f" {received.rejected} rejected")

    ceiling = shards * args.concurrency / (args.latency_ms / 1000) if args.latency_ms else math.inf
    rate = charges / charge_s
    return (
        f"{shards} shard{'s' if shards > 1 else ''}: {charges:,} charges in {charge_s:.1f} s = {rate:.0f}/s, "
        f"ceiling {shards} × {args.concurrency} in flight ÷ {args.latency_ms:g} ms = {ceiling:.0f}/s "
        f"({rate / ceiling:.0%}); {deliveries:,} deliveries to {endpoints} endpoint{'s' if endpoints > 1 else ''} "
        f"({'/'.join(str(count) for (count,) in per_shard)} per shard) in {deliver_s:.1f} s = "
        f"{deliveries / deliver_s:.0f}/s; load average {load:.1f} → {os.getloadavg()[0]:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=5000, help="auto_charge invoices to charge (about)")
    parser.add_argument("--latency-ms", type=float, default=100, help="sandbox gateway latency per charge")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight per shard")
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4], help="shard counts to measure")
    parser.add_argument("--endpoints", type=int, default=8, help="webhook endpoints, all at one local receiver")
    parser.add_argument("--home", default=str(BENCH_DIR / ".charging-home"), help="BILLING_HOME, wiped first")
    args = parser.parse_args(argv)

    home = fresh_home(args)
    from billing.warehouse import stop_embedded
    from billing.webhooks.sign import new_secret

    timeline = Timeline(1)
    receiver = measure.ReceiverProcess(new_secret())
    try:
        report.progress("issuing the month …")
        open_invoices = issue_month(math.ceil(args.invoices / AUTO_CHARGE_SHARE), timeline)
        add_endpoints(receiver, {f"e{index}": None for index in range(args.endpoints)})
        for shards in args.shards:
            report.progress(f"{open_invoices:,} invoices over {shards} shards …")
            print(measure_shards(shards, open_invoices=open_invoices, receiver=receiver, endpoints=args.endpoints,
                                 args=args, now=timeline.close_as_of), flush=True)
    finally:
        receiver.stop()
        stop_embedded()
    shutil.rmtree(home, ignore_errors=True)
    print(f"{os.cpu_count()} cpus; every invoice charged once, every delivery verified by the receiver")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
