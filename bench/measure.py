"""Small helpers the benchmark steps share: a stopwatch, warehouse counts, Airflow's own records."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from billing.settings import billing_home
from billing.warehouse import connect


@contextmanager
def stopwatch(figures: dict, key: str) -> Iterator[None]:
    """Store the block's wall-clock seconds in `figures[key]` (not when it raises)."""
    started = time.perf_counter()
    yield
    figures[key] = round(time.perf_counter() - started, 3)


def scalar(sql: str, *params):
    with connect() as connection:
        return connection.execute(sql, params).fetchone()[0]


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


def task_seconds(dag_id: str, run_id: str) -> dict[str, float]:
    """Each task's duration in a DAG run, from Airflow's metadata DB (in the benchmark's home)."""
    with _airflow_db() as database:
        rows = database.execute(
            "select task_id, duration from task_instance where dag_id = ? and run_id = ? order by start_date",
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
