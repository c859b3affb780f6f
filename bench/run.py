"""The mid-cycle benchmark (issue 5): one generated month through the real pipeline, against a floor.

    .venv/bin/python bench/run.py --quick
    .venv/bin/python bench/run.py [--customers N] [--events N] [--history-months N]
                                  [--history-scale F] [--latency-ms MS] [--warehouse-url URL]

Runs on its own BILLING_HOME (bench/.home, wiped first) and its own embedded PostgreSQL, stopped at
the end; the operator's BILLING_WAREHOUSE_URL is never used unless --warehouse-url names one (it
must hold no events yet). Prints one table and writes the figures to bench/results/<time>.json.
What each step does and what each figure means: bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import measure  # noqa: E402
import report  # noqa: E402
import workload  # noqa: E402
from measure import stopwatch  # noqa: E402

if TYPE_CHECKING:
    import psycopg

FULL = {"customers": 10_000, "events": 10_000_000, "history_months": 12}
QUICK = {"customers": 500, "events": 200_000, "history_months": 2}
SEED = 5
HOURS_PER_MONTH = 720
WEBHOOK_ENDPOINT = "bench_receiver"


@dataclass
class Timeline:
    """Every date of the run, all in the past: the latest month that is over in every zone, and the
    months before it that make up the history.

    The cycle close bills the month alone: the earlier months are added (and the subscriptions
    backdated to their start) only after it, so it issues one invoice per subscription.
    """

    months: int

    def __post_init__(self):
        now = datetime.now(UTC)
        self.month = workload.add_months(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), -1)
        while workload.last_month_end(self.month) + timedelta(hours=4) > now:
            self.month = workload.add_months(self.month, -1)
        self.first_hour = workload.last_month_end(self.month)  # the month is over in every zone
        self.close_as_of = self.first_hour + timedelta(hours=2)  # past every period end + 1 h grace
        self.last_hour = self.close_as_of  # the hour after the close
        self.earlier_months = [workload.add_months(self.month, -k) for k in range(self.months - 1, 0, -1)]
        self.history_start = self.earlier_months[0] if self.earlier_months else self.month

    @staticmethod
    def run_time(hour_start: datetime) -> datetime:
        """When the hourly run after an hour of events runs: every event of that hour is ingested by then."""
        return hour_start + timedelta(hours=1, minutes=10)


@dataclass
class Run:
    args: argparse.Namespace
    home: Path
    timeline: Timeline
    figures: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    load_at_start: float = field(default_factory=lambda: round(os.getloadavg()[0], 2))
    # the webhook endpoint's receiver (steps 5a to 5b) and the connection holding its dispatch lock
    receiver: measure.ReceiverProcess | None = None
    deliveries_held: psycopg.Connection | None = None

    @property
    def data_dir(self) -> Path:
        path = self.home / "data"
        path.mkdir(parents=True, exist_ok=True)
        return path


# ---------------------------------------------------------------------------------------------- steps


def step_catalog(run: Run) -> None:
    """1. Generate the catalog file, `billing init`, then `billing catalog apply` it."""
    from billing.catalog import apply_catalog
    from billing.schema import init_warehouse

    path = run.data_dir / "catalog.yaml"
    subscriptions = workload.write_catalog(path, customer_count=run.args.customers, first_month=run.timeline.month)
    init_warehouse()
    with stopwatch(run.figures, "catalog_apply_s"):
        written = apply_catalog(path)
    run.figures.update(
        customers=written.get("customers", 0), subscriptions=subscriptions,
        plans=written.get("plans", 0), meters=written.get("meters", 0), server=measure.server_facts(),
    )


def step_load_month(run: Run) -> None:
    """2. Generate one month of events as CSV (in PostgreSQL), then load it through the real COPY path."""
    from billing.loading import load_events
    from billing.warehouse import connect

    path = run.data_dir / "month.csv"
    query = workload.month_events_sql(tag="m0", count=run.args.events, seed=SEED, month=run.timeline.month)
    with stopwatch(run.figures, "generate_month_s"), connect() as connection:
        run.figures["month_csv_bytes"] = workload.copy_to_csv(connection, query, path)
    with stopwatch(run.figures, "load_month_s"):
        loaded = load_events(path, show_progress=False)
    run.figures["month_rows"] = loaded.rows
    run.figures["load_rate_rows_per_s"] = round(loaded.rows / run.figures["load_month_s"])
    run.figures["db_bytes_after_load"] = measure.database_bytes()
    if not run.args.keep:
        path.unlink()


def step_full_rebuild(run: Run) -> None:
    """3. Every model from raw (`dbt build --full-refresh`, data tests included), drafts for the month."""
    from billing import transform

    with stopwatch(run.figures, "full_rebuild_s"):
        run.figures["full_rebuild_nodes"] = transform.rebuild(
            as_of=run.timeline.close_as_of.isoformat(),
            grace="1 hour",
        )
    run.figures["db_bytes_after_rebuild"] = measure.database_bytes()


def step_floor(run: Run) -> None:
    """6. The floor: one hand-written statement that dedupes and aggregates the same month."""
    from billing.warehouse import connect

    with stopwatch(run.figures, "floor_s"), connect() as connection:
        rows = connection.execute(FLOOR_SQL).fetchall()
    run.figures["floor_groups"] = len(rows)


def step_event_models(run: Run) -> None:
    """6b. The event models alone from raw, against the floor: dedupe, validate, attribute and aggregate
    per period (`transform.rebuild_usage`, no data tests)."""
    from billing import transform

    with stopwatch(run.figures, "event_models_s"):
        run.figures["event_models_nodes"] = transform.rebuild_usage(
            as_of=run.timeline.close_as_of.isoformat(), grace="1 hour"
        )


# First ingested copy per reference (the pipeline's tie-breakers), then per customer × meter.
FLOOR_SQL = """
select customer_id, event_name, count(*) as count_events, sum(value) as total_value
from (
    select distinct on (reference) reference, customer_id, event_name, value
    from raw.usage_events
    order by reference, ingested_at, occurred_at nulls last, raw_row_id
) as first_ingested
group by customer_id, event_name
"""


def step_hourly(run: Run, *, label: str, hour_start: datetime, tag: str) -> None:
    """4. An idle hourly run, then one more hour of events loaded and the usage_pipeline DAG timed."""
    from billing.loading import load_events
    from billing.warehouse import connect

    idle = _run_dag("usage_pipeline", hour_start)
    run.figures[f"hourly_{label}_idle_s"] = idle["seconds"]

    path = run.data_dir / f"{tag}.csv"
    count = max(1, round(run.args.events / HOURS_PER_MONTH))
    query = workload.hour_events_sql(tag=tag, count=count, seed=SEED, start=hour_start)
    with connect() as connection:
        workload.copy_to_csv(connection, query, path)
    with stopwatch(run.figures, f"hourly_{label}_load_s"):
        run.figures[f"hourly_{label}_rows"] = load_events(path, show_progress=False).rows

    outcome = _run_dag("usage_pipeline", Timeline.run_time(hour_start))
    run.figures[f"hourly_{label}_s"] = outcome["seconds"]
    run.figures[f"hourly_{label}_tasks"] = outcome["tasks"]
    run.figures[f"hourly_{label}_update"] = measure.task_result("usage_pipeline", outcome["run_id"], "update_usage")
    run.figures[f"hourly_{label}_raw_rows"] = measure.raw_event_rows()


def step_webhook_endpoint(run: Run) -> None:
    """5a. A verifying receiver in its own process, registered as the one webhook endpoint through the
    catalog; its deliveries are held (the bench holds its dispatch lock), so that the hourly run and
    the close fan every event out to it, but leave the sending to step 5b."""
    import psycopg
    from billing.warehouse import warehouse_url
    from billing.webhooks.dispatch import lock_endpoint
    from billing.webhooks.sign import new_secret

    run.receiver = measure.ReceiverProcess(new_secret())
    run.deliveries_held = psycopg.connect(warehouse_url(), autocommit=True)
    if not lock_endpoint(run.deliveries_held, WEBHOOK_ENDPOINT):
        raise RuntimeError(f"the dispatch lock of endpoint {WEBHOOK_ENDPOINT} is taken")
    _apply_webhook_endpoint(run, enabled=True)


def step_webhook_delivery(run: Run) -> None:
    """5b. dispatch_webhooks() sends what the hourly run and the close fanned out to the endpoint, timed;
    every delivery must reach the receiver once, verified, in the order of its events."""
    from billing.webhooks import dispatch_webhooks

    _release_deliveries(run)
    try:
        expected = measure.deliveries_in_order(WEBHOOK_ENDPOINT)
        with stopwatch(run.figures, "webhook_delivery_s"):
            summary = dispatch_webhooks()
        received = run.receiver.received()
        run.figures.update(
            webhook_deliveries=summary.delivered,
            webhook_delivery_rate_per_s=round(summary.delivered / run.figures["webhook_delivery_s"]),
            webhook_dispatch_summary=summary.__dict__,
            webhook_receiver_verified=len(received.accepted),
            webhook_receiver_rejected=received.rejected,
            webhook_receiver_cpu_s=received.cpu_s,
            webhook_delivered_in_order=received.accepted == expected,
        )
    finally:
        _apply_webhook_endpoint(run, enabled=False)  # NOTE: the later hourly runs deliver nothing
    if not (summary.delivered == len(expected) == len(received.accepted) and received.accepted == expected):
        raise RuntimeError(
            f"{len(expected):,} deliveries fanned out, {summary.delivered:,} delivered, {len(received.accepted):,} "
            f"verified by the receiver ({received.rejected:,} rejected), in order: {received.accepted == expected}"
        )


def _apply_webhook_endpoint(run: Run, *, enabled: bool) -> None:
    """Upsert the endpoint of the bench's receiver through the catalog, as an operator does
    (`billing catalog apply`)."""
    import yaml
    from billing.catalog import apply_catalog

    endpoint = {"endpoint_id": WEBHOOK_ENDPOINT, "url": run.receiver.url, "secret": run.receiver.secret,
                "enabled": enabled}
    path = run.data_dir / "webhook_endpoint.yaml"
    path.write_text(yaml.safe_dump({"webhook_endpoints": [endpoint]}))
    apply_catalog(path)


def _release_deliveries(run: Run) -> None:
    if run.deliveries_held is not None:
        run.deliveries_held.close()
        run.deliveries_held = None


def step_cycle_close(run: Run) -> None:
    """5. billing_cycle_close for the month: drafts, gates, issue, charge (sandbox latency), webhooks."""
    outcome = _run_dag("billing_cycle_close", run.timeline.close_as_of)
    run.figures["cycle_close_s"] = outcome["seconds"]
    run.figures["cycle_close_tasks"] = outcome["tasks"]
    run.figures.update(measure.cycle_close_counts())


def step_history(run: Run) -> None:
    """4b. The months before the month, inserted straight into raw with the subscriptions backdated to
    their start, then caught up by a full rebuild (timed, but not one of the figures)."""
    from billing import transform
    from billing.catalog import apply_catalog
    from billing.warehouse import connect

    timeline = run.timeline
    count = round(run.args.events * run.args.history_scale)
    _check_disk_for(run, rows=count * len(timeline.earlier_months))
    path = run.data_dir / "catalog_backdated.yaml"
    workload.write_catalog(path, customer_count=run.args.customers, first_month=timeline.history_start)
    apply_catalog(path)
    with stopwatch(run.figures, "history_insert_s"), connect() as connection:
        inserted = sum(
            workload.insert_into_raw(
                connection,
                workload.month_events_sql(tag=f"m{k}", count=count, seed=SEED + k, month=month),
            )
            for k, month in enumerate(timeline.earlier_months, start=1)
        )
    run.figures["history_rows_inserted"] = inserted
    with stopwatch(run.figures, "history_rebuild_s"):
        transform.rebuild(as_of=Timeline.run_time(timeline.last_hour).isoformat(), grace="1 hour")
    run.figures["history_raw_rows"] = measure.raw_event_rows()
    run.figures["db_bytes_after_history"] = measure.database_bytes()


def _check_disk_for(run: Run, *, rows: int) -> None:
    """Refuse a history that would fill the disk (estimated from this run's bytes per row, ×2 for the
    rebuild's copies of each model being built next to the old ones)."""
    if run.args.warehouse_url:
        return
    per_row = run.figures["db_bytes_after_rebuild"] / run.figures["month_rows"]
    needed = per_row * rows * 2
    free = shutil.disk_usage(run.home).free
    run.figures["history_estimated_bytes"] = round(per_row * rows)
    if needed > free * 0.9:
        fits = run.args.history_scale * free * 0.9 / needed
        raise RuntimeError(
            f"the history needs about {needed / 1e9:.0f} GB ({rows:,} rows × {per_row:.0f} bytes × 2), "
            f"{free / 1e9:.0f} GB are free: use --history-scale {fits:.2f} or fewer --history-months"
        )


def _run_dag(dag_id: str, logical_date: datetime) -> dict:
    """Run a DAG through Airflow in this process and time it; a failed run raises."""
    from billing.orchestration import run_dag

    timing: dict = {}
    with stopwatch(timing, "seconds"):
        outcome = run_dag(dag_id, logical_date=logical_date)
    tasks = measure.task_seconds(dag_id, outcome.run_id)
    if not tasks:
        # NOTE: a logical date before the DAG's start_date makes a run with no task at all
        raise RuntimeError(f"{dag_id} ran no task for {logical_date.isoformat()} (before the DAG's start_date?)")
    if not outcome.succeeded:
        messages = "; ".join(f"{task}: {message}" for task, message in outcome.failure_messages.items())
        raise RuntimeError(
            f"{dag_id} failed in {', '.join(outcome.failed_tasks)}: {messages} (log: {outcome.log_path})"
        )
    return {"seconds": timing["seconds"], "run_id": outcome.run_id, "tasks": tasks}


# ---------------------------------------------------------------------------------------- the run


def run_steps(run: Run) -> None:
    """The steps in order. A failed step is recorded; what needs its result is skipped."""
    timeline = run.timeline
    essential = [("catalog", step_catalog), ("load_month", step_load_month), ("full_rebuild", step_full_rebuild)]
    for name, step in essential:
        if not _attempt(run, name, step):
            return
    _attempt(run, "floor", step_floor)
    _attempt(run, "event_models", step_event_models)
    _warm_up_airflow()
    endpoint = _attempt(run, "webhook_endpoint", step_webhook_endpoint)
    _attempt(run, "hourly_1_month", lambda r: step_hourly(r, label="1m", hour_start=timeline.first_hour, tag="h1"))
    if _attempt(run, "cycle_close", step_cycle_close) and endpoint:
        _attempt(run, "webhook_delivery", step_webhook_delivery)
    _stop_receiver(run)
    if timeline.earlier_months and _attempt(run, "history", step_history):
        _attempt(
            run,
            "hourly_history",
            lambda r: step_hourly(r, label="history", hour_start=timeline.last_hour, tag="h2"),
        )


def _attempt(run: Run, name: str, step) -> bool:
    report.progress(f"{name} …")
    try:
        step(run)
    except Exception as error:  # a benchmark reports what it could measure
        run.errors[name] = f"{type(error).__name__}: {error}"
        report.progress(f"{name} failed: {run.errors[name]}")
        traceback.print_exc(file=sys.stderr)
        return False
    finally:
        # NOTE: a process's peak cannot be reset: this is the running peak after each step
        run.figures.setdefault("peak_rss_bytes", {})[name] = measure.peak_rss_bytes()
    return True


def _stop_receiver(run: Run) -> None:
    _release_deliveries(run)
    if run.receiver is not None:
        run.receiver.stop()
        run.receiver = None


def _warm_up_airflow() -> None:
    """Airflow's one-time set-up (metadata DB migration, imports) is not part of any timed run."""
    from billing.orchestration import dag_bag

    dag_bag()


def prepare(args: argparse.Namespace) -> Run:
    """A fresh BILLING_HOME and the environment of the run (the sandbox gateway with its latency)."""
    home = Path(args.home).resolve()
    os.environ["BILLING_HOME"] = str(home)
    os.environ["BILLING_PAYMENT_GATEWAY"] = "sandbox"
    os.environ["BILLING_SANDBOX_LATENCY_MS"] = str(args.latency_ms)
    os.environ["BILLING_CHARGE_CONCURRENCY"] = str(args.charge_concurrency)
    os.environ["BILLING_GATEWAY_POOL_SLOTS"] = str(args.charge_concurrency)  # a charging task holds that many
    os.environ["BILLING_WEBHOOK_ALLOW_HOSTS"] = "127.0.0.1"  # the receiver of step 5b listens there
    for name in ("BILLING_WAREHOUSE_URL", "BILLING_DAGS_FOLDER", "BILLING_QUALITY_CONFIG"):
        os.environ.pop(name, None)
    if args.warehouse_url:
        os.environ["BILLING_WAREHOUSE_URL"] = args.warehouse_url
    _stop_warehouse(args)  # a server left running there by an interrupted run
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    if args.warehouse_url:
        _refuse_used_warehouse()
    return Run(args=args, home=home, timeline=Timeline(args.history_months))


def _refuse_used_warehouse() -> None:
    from billing.warehouse import connect

    with connect() as connection:
        if connection.execute("select to_regclass('raw.usage_events')").fetchone()[0] is not None:
            if connection.execute("select exists (select from raw.usage_events)").fetchone()[0]:
                raise SystemExit(
                    "--warehouse-url: that warehouse already holds events; the benchmark needs an empty one"
                )


def _stop_warehouse(args: argparse.Namespace) -> None:
    if not args.warehouse_url:
        from billing.warehouse import stop_embedded

        stop_embedded()


def finish(run: Run) -> None:
    """Stop the receiver and the embedded server; remove the home (tens of GB at full size) unless kept
    or a step failed."""
    _stop_receiver(run)
    _stop_warehouse(run.args)
    if run.args.keep or run.errors:
        report.progress(f"kept {run.home} (Airflow log: {run.home / 'airflow' / 'logs' / 'runs.log'})")
    else:
        shutil.rmtree(run.home, ignore_errors=True)


def parameters(run: Run) -> dict:
    args, timeline = run.args, run.timeline
    return {
        "preset": "quick" if args.quick else "custom" if _is_custom(args) else "full",
        "customers": args.customers,
        "events_per_month": args.events,
        "history_months": args.history_months,
        "history_scale": args.history_scale,
        "latency_ms": args.latency_ms,
        "charge_concurrency": args.charge_concurrency,
        "month": timeline.month.date().isoformat(),
        "history_start": timeline.history_start.date().isoformat(),
        "close_as_of": timeline.close_as_of.isoformat(),
        "warehouse": "external" if args.warehouse_url else "embedded",
        "cpus": os.cpu_count(),
        # NOTE: other processes on the machine (a test suite) slow every figure; this shows it
        "load_average_at_start": run.load_at_start,
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "python": sys.version.split()[0],
        "git": _git_revision(),
    }


def _is_custom(args: argparse.Namespace) -> bool:
    return any(getattr(args, key) != value for key, value in FULL.items())


def _git_revision() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{commit}{'+dirty' if dirty else ''}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"small preset: {QUICK['customers']} customers, {QUICK['events']:,} events, "
                             f"{QUICK['history_months']} months (a few minutes)")
    parser.add_argument("--customers", type=int,
                        help=f"customers, one subscription each (default {FULL['customers']:,})")
    parser.add_argument("--events", type=int, help=f"raw event rows per month (default {FULL['events']:,})")
    parser.add_argument("--history-months", type=int,
                        help=f"months of events behind the second hourly run, the month included "
                             f"(default {FULL['history_months']})")
    parser.add_argument("--history-scale", type=float, default=1.0,
                        help="events of each earlier history month, as a fraction of --events (default 1.0)")
    parser.add_argument("--latency-ms", type=float, default=100,
                        help="sandbox gateway latency per charge (default 100)")
    parser.add_argument("--charge-concurrency", type=int, default=64,
                        help="charges in flight during the close (BILLING_CHARGE_CONCURRENCY; default 64)")
    parser.add_argument("--warehouse-url", help="an empty PostgreSQL database to use instead of the embedded one")
    parser.add_argument("--home", default=str(BENCH_DIR / ".home"),
                        help="BILLING_HOME of the run, wiped first (default bench/.home)")
    parser.add_argument("--keep", action="store_true", help="keep the home, its warehouse files and CSVs after the run")
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.customers < 1 or args.events < HOURS_PER_MONTH or args.history_months < 1:
        parser.error(f"need --customers >= 1, --events >= {HOURS_PER_MONTH}, --history-months >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = prepare(args)
    started = datetime.now(UTC)
    try:
        run_steps(run)
    finally:
        finish(run)
    results = {
        "started_at": started.isoformat(),
        "parameters": parameters(run),
        "figures": run.figures,
        "errors": run.errors,
    }
    report.print_table(results)
    path = report.save(results, BENCH_DIR / "results", started)
    report.progress(f"figures written to {path.relative_to(BENCH_DIR.parent)}")
    return 1 if run.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
