"""billing_cycle_close on two Celery workers issues what the in-process run issues.

The session's Airflow (tests/airflow_cluster.py) is docker-compose.yml's team deployment as
processes: Redis, the scheduler, the dag-processor, the api-server and two Celery workers,
`celery@worker-1` and `celery@worker-2`, one task at a time each. June of the worked examples
(tests/spine: six subscriptions in USD and JPY, one in Tokyo's time, duplicates, a conflicting copy
in a later load and one event per reject reason) is closed twice from the same raw data: in this
process with `dag.test()`, then under the scheduler, triggered and followed through the REST API as
`billing close-cycles` does against a team's Airflow. Both issue the same invoices, lines and
charges, and the scheduler's run spread its tasks over both workers: each task's Celery result
(in the metadata database) names the worker that ran it.

June closes at 2026-07-01 01:00Z (grace 1 hour); no other scheduler test uses that logical date.
Runtime: about 20 s in-process and 30-55 s under the scheduler on 2 busy cores.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import psutil
import pytest
from billing import airflow_api
from billing.catalog import apply_catalog
from billing.loading import load_events
from conftest import query, reset_warehouse, run_dag
from spine.events import june_events, late_duplicates, write_csv

# The session's Airflow components and its `airflow` fixture: a plugin, so that the scheduler
# modules share one session fixture, its assertions rewritten as pytest does for a plugin's.
pytest_plugins = ["airflow_cluster"]
pytest.register_assert_rewrite("airflow_cluster")
from airflow_cluster import DAG_ID, UTC, WORKERS, AirflowCluster, point_billing_at  # noqa: E402

pytestmark = [pytest.mark.scheduler, pytest.mark.slow]

CATALOG = Path(__file__).parent / "spine" / "catalog.yaml"
AS_OF = datetime(2026, 7, 1, 1, tzinfo=UTC)
CONF = {"as_of": AS_OF.isoformat(), "grace": "1 hours"}  # what `billing close-cycles` sends


def test_a_close_on_two_celery_workers_issues_the_invoices_of_the_in_process_run(
    airflow: AirflowCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_june(tmp_path)
    run_dag(DAG_ID, AS_OF.isoformat(), **CONF)  # in this process: BILLING_AIRFLOW_API_URL is not set
    in_process = ledger()
    assert len(in_process["invoices"]) == 6, in_process

    load_june(tmp_path)
    point_billing_at(airflow, monkeypatch)
    outcome = airflow_api.run_dag(DAG_ID, logical_date=AS_OF, conf=CONF)

    assert outcome.succeeded, f"{outcome}\n{airflow.log_tails()}"
    assert ledger() == in_process
    # Pro Heavy, by hand: $99 base fee + (25,000 − 10,000 included calls) × $0.01 = $249.00;
    # numbered second, after Tokyo's June, which ends 9 hours before UTC's
    assert query(
        "select invoice_number, total_minor, status, kind, quantity::text, amount_minor"
        " from billing.invoices join billing.invoice_lines using (invoice_id)"
        " where subscription_id = 's_heavy' order by line_no"
    ) == [("INV-000002", 24_900, "open", "base_fee", "1", 9_900),
          ("INV-000002", 24_900, "open", "usage", "25000", 15_000)]

    ran_on = airflow.workers_of(outcome.run_id)
    assert set(ran_on.values()) == {f"celery@{worker}" for worker in WORKERS}, ran_on  # and no None
    # the compose file's init step set the pool that caps gateway calls (BILLING_GATEWAY_POOL_SLOTS)
    assert airflow.sql("select slots from slot_pool where pool = 'billing_gateway'") == [(16,)]


def load_june(folder: Path) -> None:
    """An empty warehouse with the worked examples' catalog and June's events, in two loads."""
    reset_warehouse()
    apply_catalog(CATALOG)
    load_events(write_csv(folder / "june.csv", june_events()), show_progress=False)
    load_events(write_csv(folder / "late.csv", late_duplicates()), show_progress=False)


def ledger() -> dict[str, list[tuple]]:
    """What a close issues, without what differs from run to run (ids, run ids, clock times)."""
    return {
        "invoices": query(
            "select invoice_number, subscription_id, period_start, period_end, currency, subtotal_minor,"
            " total_minor, status from billing.invoices order by invoice_number"
        ),
        "lines": query(
            "select invoice_number, line_no, kind, event_name, quantity, amount_minor from billing.invoice_lines"
            " join billing.invoices using (invoice_id) order by invoice_number, line_no"
        ),
        "charges": query(
            "select invoice_number, attempt_no, attempts.amount_minor, attempts.status, failure_code, attempted_for"
            " from billing.charge_attempts as attempts join billing.invoices using (invoice_id)"
            " order by invoice_number, attempt_no"
        ),
    }


def test_each_worker_imports_the_libraries_of_the_billing_tasks_once_at_its_start(airflow: AirflowCluster) -> None:
    for worker in WORKERS:
        mapped = {region.path for region in psutil.Process(airflow.processes[worker].pid).memory_maps()}
        # Great Expectations (billing.celery_worker) imports pandas, which nothing else of a worker
        # does: its compiled modules are in the worker's memory, for every task it forks to inherit.
        assert any("/pandas/_libs/" in path for path in mapped), f"{worker} did not import billing.celery_worker"
