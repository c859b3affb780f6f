"""A close of 100k subscriptions under the real scheduler on Celery workers, per fan-out setting (issue 15).

    .venv/bin/python bench/celery_close.py [--subscriptions 100000] [--events-per-subscription 2]
        [--latency-ms 100] [--concurrency 16] [--setting SHARDS:WORKERS:POOL_SLOTS ...]

On its own BILLING_HOME (bench/.celery-home, wiped first) and embedded PostgreSQL, stopped at the
end (untimed set-up): `billing init`, a catalog of --subscriptions customers from bench/workload.py
whose subscriptions start one month per --setting back, that many months of events inserted into
raw, and two webhook endpoints on one verifying receiver process (one for the invoices' events,
one for the charges': every event is delivered once).

Then, for each --setting in turn (the default: 1 shard on 2 workers with a pool of 16 slots, then 4
shards on 4 workers with 64), the next month is closed on docker-compose.yml's Airflow as processes
(bench/celery_cluster.py) with BILLING_SHARDS, that many Celery workers (one task at a time each) and
the gateway pool's size set: `billing close-cycles --as-of` triggers `billing_cycle_close` through the
REST API and follows it, as an operator would. The sandbox gateway answers each charge after
--latency-ms; each charging task has --concurrency calls in flight (BILLING_CHARGE_CONCURRENCY).

Reports per setting: the close's wall clock, every task instance's duration and worker (Airflow's
metadata and Celery results), charges per second over the charging tasks against the ceiling
min(shards × concurrency, pool) ÷ latency, and deliveries per second. Fails unless every invoice
that needs a charge has exactly one charge attempt and one sandbox charge, and every webhook event
was delivered once, its signature verified by the receiver. Writes bench/results/<start>-celery.json
and a table to stdout and <start>-celery.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import measure  # noqa: E402
import report  # noqa: E402
import workload  # noqa: E402
from celery_cluster import DAG_ID, running_cluster  # noqa: E402
from charging import add_endpoints, fresh_home  # noqa: E402
from run import SEED, Timeline  # noqa: E402

DEFAULT_SETTINGS = ("1:2:16", "4:4:64")
MAX_CONNECTIONS = 300
# Each endpoint's event types: together every type, each once.
ENDPOINT_EVENT_TYPES = {
    "e0": ["billing.invoice.generated", "billing.invoice.uncollectible", "billing.invoice.voided",
           "billing.subscriber_overage", "billing.subscriber_usage", "billing.events.rejected", "billing.run.failed"],
    "e1": ["billing.charge.succeeded", "billing.charge.failed"],
}
# Every invoice that needs a charge (auto_charge, something to pay) with its attempts and the
# sandbox's charges for them: exactly one each, however many shards and workers.
CHARGED_ONCE = """
select count(*) as invoices,
    count(*) filter (where attempts = 1 and gateway_charges = 1) as charged_once,
    coalesce(sum(attempts), 0) as attempts
from (
    select invoices.invoice_id, count(charge_attempts.idempotency_key) as attempts,
        count(sandbox_gateway_charges.idempotency_key) as gateway_charges
    from billing.invoices
    inner join raw.customers using (customer_id)
    left join billing.charge_attempts using (invoice_id)
    left join billing.sandbox_gateway_charges using (idempotency_key)
    where customers.collection_method = 'auto_charge' and invoices.total_minor > 0
    group by invoices.invoice_id
) as per_invoice
"""


def parse_setting(text: str) -> dict[str, int]:
    try:
        shards, workers, pool = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected SHARDS:WORKERS:POOL_SLOTS, e.g. 4:4:64") from None
    return {"shards": shards, "workers": workers, "pool_slots": pool}


def set_up(args, months: list[datetime]) -> None:
    """Catalog, events for every month, the endpoints: untimed."""
    from billing.catalog import apply_catalog
    from billing.schema import init_warehouse
    from billing.warehouse import connect, stop_embedded

    with connect(autocommit=True) as connection:
        # NOTE: the default 100 is too few for 4 charging tasks × 16 calls in flight, each holding a
        # connection, beside Airflow's own on the same server (docs/scaling.md §2.1).
        connection.execute(f"alter system set max_connections = {MAX_CONNECTIONS}")
    stop_embedded()  # the setting takes effect at the next start, by the next connection
    home = Path(os.environ["BILLING_HOME"])
    workload.write_catalog(home / "catalog.yaml", customer_count=args.subscriptions, first_month=months[0])
    init_warehouse()
    apply_catalog(home / "catalog.yaml")
    with connect() as connection:
        for index, month in enumerate(months):
            workload.insert_into_raw(connection, workload.month_events_sql(
                tag=f"m{index}", count=args.subscriptions * args.events_per_subscription, seed=SEED, month=month))


def close_month(args, setting: dict[str, int], as_of: datetime, home: Path, receiver) -> dict:
    """One close on a cluster of its own with `setting`; its figures. Raises unless charged once and delivered once."""
    from billing.warehouse import warehouse_url

    os.environ.update(BILLING_SHARDS=str(setting["shards"]), BILLING_GATEWAY_POOL_SLOTS=str(setting["pool_slots"]))
    workers = [f"worker-{index + 1}" for index in range(setting["workers"])]
    verified_before = len(receiver.received().accepted)
    with running_cluster(home, warehouse_url(), workers=workers, worker_concurrency=1, settings={}) as airflow:
        load_before = os.getloadavg()
        started = time.perf_counter()
        completed = subprocess.run(
            [str(Path(sys.executable).with_name("billing")), "close-cycles", "--as-of", as_of.isoformat()],
            capture_output=True, text=True, env={
                **os.environ, "BILLING_AIRFLOW_API_URL": airflow.api_url, "BILLING_AIRFLOW_USERNAME": "billing",
                "BILLING_AIRFLOW_PASSWORD": airflow.passwords["billing"], "BILLING_AIRFLOW_RUN_TIMEOUT": "7200",
            },
        )
        wall_s = time.perf_counter() - started
        load_after = os.getloadavg()
        [run] = [run for run in airflow.dag_runs() if run["logical_date"] == as_of]
        tasks = airflow.task_instances(run["run_id"])
        if completed.returncode != 0:
            raise RuntimeError(f"billing close-cycles exited {completed.returncode}:\n{completed.stdout}"
                               f"\n{completed.stderr}\n{airflow.diagnostics([])}")
        dag_run = airflow.sql("select start_date, end_date from dag_run where run_id = %s and dag_id = %s",
                              run["run_id"], DAG_ID)[0]
    charging = [task for task in tasks if task["task_id"] == "charge_invoices"]
    delivering = [task for task in tasks if task["task_id"] == "dispatch_webhooks"]
    charge_s = _span_s(charging)
    charges = measure.scalar("select count(*) from billing.charge_attempts where attempted_for = %s", as_of)
    needed, charged_once, attempts = measure.row(CHARGED_ONCE)
    if charged_once != needed or attempts != needed:
        raise RuntimeError(f"{needed:,} invoices to charge: {charged_once:,} charged once, {attempts:,} attempts")
    delivered = measure.scalar("select count(*) from billing.webhook_deliveries where status = 'delivered'")
    events = measure.scalar("select count(*) from billing.webhook_events")
    received = receiver.received()
    if not delivered == events == len(received.accepted) or received.rejected:
        raise RuntimeError(f"{events:,} events, {delivered:,} delivered, {len(received.accepted):,} verified,"
                           f" {received.rejected} rejected")
    in_flight = min(setting["shards"] * args.concurrency, setting["pool_slots"])
    ceiling = in_flight / (args.latency_ms / 1000)
    return {
        **setting, "charge_concurrency": args.concurrency, "as_of": as_of.isoformat(), "run_id": run["run_id"],
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in load_after],
        "close_cli_s": round(wall_s, 1), "dag_run_s": round((dag_run[1] - dag_run[0]).total_seconds(), 1),
        "invoices_issued": measure.scalar(  # the month's: its periods end within a day of as_of
            "select count(*) from billing.invoices where period_end > %s", as_of - timedelta(days=2)),
        "charges": charges, "charging_s": round(charge_s, 1), "charges_per_s": round(charges / charge_s, 1),
        "ceiling_per_s": round(ceiling), "of_ceiling": round(charges / charge_s / ceiling, 3),
        "deliveries": len(received.accepted) - verified_before, "delivery_s": round(_span_s(delivering), 1),
        "workers_used": sorted({task["worker"] for task in tasks if task["worker"]}),
        "tasks": [_task_figures(task) for task in tasks],
    }


def _span_s(tasks: list[dict]) -> float:
    """From the first task instance's start to the last one's end."""
    return (max(task["end"] for task in tasks) - min(task["start"] for task in tasks)).total_seconds()


def _task_figures(task: dict) -> dict:
    return {
        "task": task["task_id"] + (f"[{task['map_index']}]" if task["map_index"] >= 0 else ""),
        "worker": (task["worker"] or "").removeprefix("celery@"), "state": task["state"],
        "queued_s": round((task["start"] - task["queued"]).total_seconds(), 1) if task["queued"] else None,
        "duration_s": round(task["duration"], 2),
    }


def table(results: list[dict], title: str) -> str:
    lines = [title, "", "| setting | close (CLI) | DAG run | invoices | charging | of the ceiling | delivery |",
             "|---|---|---|---|---|---|---|"]
    for result in results:
        lines.append(
            f"| {result['shards']} shard(s), {result['workers']} workers, pool {result['pool_slots']},"
            f" {result['charge_concurrency']} in flight per task | {result['close_cli_s']} s | {result['dag_run_s']} s"
            f" | {result['invoices_issued']:,} | {result['charges']:,} in {result['charging_s']} s ="
            f" {result['charges_per_s']:.0f}/s | {result['of_ceiling']:.0%} of {result['ceiling_per_s']}/s"
            f" | {result['deliveries']:,} in {result['delivery_s']} s |"
        )
    for result in results:
        lines += ["", f"{result['shards']} shard(s) on {result['workers']} workers, load average"
                  f" {result['load_average_before'][0]} → {result['load_average_after'][0]}:", "",
                  "| task | worker | waited in queue | duration |", "|---|---|---|---|"]
        lines += [f"| {task['task']} | {task['worker']} | {task['queued_s']} s | {task['duration_s']} s |"
                  for task in result["tasks"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=100_000, help="customers, one subscription each")
    parser.add_argument("--events-per-subscription", type=int, default=2, help="raw events per month, on average")
    parser.add_argument("--latency-ms", type=float, default=100, help="sandbox gateway latency per charge")
    parser.add_argument("--concurrency", type=int, default=16, help="charges in flight per charging task")
    parser.add_argument("--setting", type=parse_setting, nargs="+", dest="settings",
                        default=[parse_setting(text) for text in DEFAULT_SETTINGS],
                        help="SHARDS:WORKERS:POOL_SLOTS, one close each (default: 1:2:16 4:4:64)")
    parser.add_argument("--home", default=str(BENCH_DIR / ".celery-home"), help="BILLING_HOME, wiped first")
    args = parser.parse_args(argv)

    home = fresh_home(args)
    from billing.warehouse import stop_embedded
    from billing.webhooks.sign import new_secret

    start = datetime.now(UTC)
    timeline = Timeline(len(args.settings))
    months = [*timeline.earlier_months, timeline.month]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=BENCH_DIR).stdout.strip()
    title = (f"billing_cycle_close on Celery workers: {args.subscriptions:,} subscriptions,"
             f" {args.events_per_subscription} events each, sandbox {args.latency_ms:g} ms per charge,"
             f" {os.cpu_count()} CPUs, git {commit}, {start:%Y-%m-%d %H:%M}Z")
    stem = BENCH_DIR / "results" / f"{start:%Y%m%dT%H%M%SZ}-celery"
    receiver = measure.ReceiverProcess(new_secret())
    results = []
    try:
        report.progress(f"{args.subscriptions:,} subscriptions, {len(months)} months of events …")
        set_up(args, months)
        add_endpoints(receiver, ENDPOINT_EVENT_TYPES)
        for index, (setting, month) in enumerate(zip(args.settings, months, strict=True)):
            report.progress(f"closing {month:%Y-%m} with {setting} …")
            results.append(close_month(args, setting, workload.last_month_end(month) + timedelta(hours=2),
                                       home / f"airflow-{index}", receiver))
            # written after each setting, so that a later one's failure keeps the earlier figures
            stem.with_suffix(".json").write_text(json.dumps({"title": title, "results": results}, indent=2,
                                                            default=str))
            stem.with_suffix(".txt").write_text(table(results, title) + "\n")
    finally:
        receiver.stop()
        stop_embedded()
    print(table(results, title))
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
