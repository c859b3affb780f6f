"""Small helpers the benchmark steps share: a stopwatch, warehouse counts, Airflow's own records."""

from __future__ import annotations

import json
import multiprocessing
import resource
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from billing.settings import billing_home
from billing.warehouse import connect


@contextmanager
def stopwatch(figures: dict, key: str) -> Iterator[None]:
    """Store the block's wall-clock seconds in `figures[key]` (not when it raises)."""
    started = time.perf_counter()
    yield
    figures[key] = round(time.perf_counter() - started, 3)


def peak_rss_bytes() -> int:
    """The largest resident set this process has had so far (VmHWM): dbt and the DAGs' tasks run in it."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # NOTE: Linux counts in KiB


@dataclass(frozen=True)
class Received:
    """What the receiver accepted (webhook-ids in arrival order), rejected, and its CPU seconds."""

    accepted: list[str]
    rejected: int
    cpu_s: float


class ReceiverProcess:
    """billing's WebhookReceiver, which verifies every signature with `standardwebhooks`, started in a
    process of its own, so that it takes no GIL turns from the dispatcher. `url` is its endpoint URL."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        context = multiprocessing.get_context("spawn")  # NOTE: not fork: this process runs threads
        self._pipe, theirs = context.Pipe()
        self._process = context.Process(target=_serve_webhooks, args=(secret, theirs), daemon=True)
        self._process.start()
        self.url: str = self._pipe.recv()

    def received(self) -> Received:
        """What it has received so far."""
        self._pipe.send("report")
        return self._pipe.recv()

    def stop(self) -> None:
        self._pipe.send("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()


def _serve_webhooks(secret: str, pipe) -> None:
    """The receiver process: serve until told to stop, answering each "report" with a Received."""
    from billing.webhooks import WebhookReceiver

    with WebhookReceiver(secret) as receiver:
        started = _cpu_seconds()
        pipe.send(receiver.url)
        while pipe.recv() == "report":
            accepted = [webhook_id for webhook_id, _ in list(receiver.accepted)]
            pipe.send(Received(accepted, receiver.rejected, round(_cpu_seconds() - started, 3)))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def scalar(sql: str, *params):
    return row(sql, *params)[0]


def row(sql: str, *params) -> tuple:
    with connect() as connection:
        return connection.execute(sql, params).fetchone()


def database_bytes() -> int:
    return scalar("select pg_database_size(current_database())")


def raw_event_rows() -> int:
    return scalar("select count(*) from raw.usage_events")


def server_facts() -> dict:
    with connect() as connection:
        facts = {"postgres": connection.execute("select version()").fetchone()[0].split(" on ")[0]}
        for setting in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather", "max_wal_size"):
            facts[setting] = connection.execute(f"show {setting}").fetchone()[0]
    return facts


def cycle_close_counts() -> dict:
    with connect() as connection:
        invoices = dict(connection.execute("select status, count(*) from billing.invoices group by 1").fetchall())
        charges = dict(connection.execute("select status, count(*) from billing.charge_attempts group by 1").fetchall())
        webhooks = dict(
            connection.execute("select event_type, count(*) from billing.webhook_events group by 1").fetchall()
        )
    return {
        "invoices_issued": sum(invoices.values()),
        "invoices_by_status": invoices,
        "charges_by_status": charges,
        "webhook_events_enqueued": sum(webhooks.values()),
        "webhook_events_by_type": webhooks,
    }


def deliveries_in_order(endpoint_id: str) -> list[str]:
    """The ids of the events fanned out to the endpoint, in the order it must get them (oldest first)."""
    with connect() as connection:
        rows = connection.execute(
            "select events.event_id from billing.webhook_deliveries as deliveries"
            " inner join billing.webhook_events as events on deliveries.event_id = events.event_id"
            " where deliveries.endpoint_id = %s order by events.created_at, events.event_id",
            (endpoint_id,),
        ).fetchall()
    return [event_id for (event_id,) in rows]


def task_seconds(dag_id: str, run_id: str) -> dict[str, float]:
    """Each task's duration in a DAG run, from Airflow's metadata DB (in the benchmark's home); a mapped
    task's is its shards' together (in-process, they run one after another)."""
    with _airflow_db() as database:
        rows = database.execute(
            "select task_id, sum(duration) from task_instance where dag_id = ? and run_id = ?"
            " group by task_id order by min(start_date)",
            (dag_id, run_id),
        ).fetchall()
    return {task_id: round(duration or 0.0, 3) for task_id, duration in rows}


def task_result(dag_id: str, run_id: str, task_id: str):
    """A task's return value (its XCom), or None."""
    with _airflow_db() as database:
        row = database.execute(
            "select value from xcom where dag_id = ? and run_id = ? and task_id = ? and key = 'return_value'",
            (dag_id, run_id, task_id),
        ).fetchone()
    if row is None:
        return None
    value = row[0]
    while isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value


@contextmanager
def _airflow_db() -> Iterator[sqlite3.Connection]:
    database = sqlite3.connect(billing_home() / "airflow" / "airflow.db")
    try:
        yield database
    finally:
        database.close()
