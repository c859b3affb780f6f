"""A close spread over three shards (billing.shards): each invoice charged once, by its customer's
shard; a gateway failure in one shard does not hold up the others; a cleared shard charges and sends
nothing again; every webhook endpoint gets its events once, in order, from its own shard.

`billing.shard_of(key, 3)`, worked out once with the warehouse's function:

    shard 0  customers dee, gus (pm_card_visa), invoiced (request_payment)   endpoint crm (every type)
    shard 1  customers hal (pm_card_visa), flaky (pm_card_timeoutOnce)       endpoint finance (charges)
    shard 2  customers ada (pm_card_visa), bea (pm_card_chargeDeclined)      no endpoint

Every customer has one subscription of `usage_usd` ($0.001 a call) from June 2026 and 1,000 × n
calls in June (dee 1, gus 2, hal 3, flaky 4, ada 5, bea 6, invoiced 7): invoices of 100 × n cents.
The sandbox loses flaky's first response: `charge_invoices[1]` fails its first try (hal is charged
by then) and its retry re-sends flaky's attempt with the same key.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from billing.catalog import apply_catalog
from billing.loading import load_events
from billing.webhooks.receiver import WebhookReceiver
from billing.webhooks.sign import new_secret
from conftest import query, reset_warehouse, run_dag

from spine.catalogs import USAGE_PLAN
from spine.events import usage, write_csv

pytestmark = pytest.mark.slow

DAG_ID = "billing_cycle_close"
CLOSE = "2026-07-01T01:00:00Z"
# NOTE: a logical date of this module's alone: another module's run of the close for the same date
# (its DAG version has one shard) makes Airflow warn of two serialized DAGs for one run.
LOGICAL_DATE = "2026-07-01T01:30:00Z"
CUSTOMERS = {  # customer: (payment method, thousands of calls)
    "dee": ("pm_card_visa", 1),
    "gus": ("pm_card_visa", 2),
    "hal": ("pm_card_visa", 3),
    "flaky": ("pm_card_timeoutOnce", 4),
    "ada": ("pm_card_visa", 5),
    "bea": ("pm_card_chargeDeclined", 6),
    "invoiced": (None, 7),
}
CHARGE_EVENTS = ["billing.charge.succeeded", "billing.charge.failed"]
SECRETS = {"crm": new_secret(), "finance": new_secret()}


def catalog(receiver: WebhookReceiver) -> str:
    return USAGE_PLAN + yaml.safe_dump({
        "customers": [
            {"customer_id": name, "name": name, "currency": "USD",
             **({"collection_method": "auto_charge", "payment_method_id": method} if method
                else {"collection_method": "request_payment"})}
            for name, (method, _) in CUSTOMERS.items()
        ],
        "subscriptions": [
            {"subscription_id": f"s_{name}", "customer_id": name, "plan_id": "usage_usd",
             "started_at": "2026-06-01T00:00:00Z"}
            for name in CUSTOMERS
        ],
        "webhook_endpoints": [
            {"endpoint_id": "crm", "url": receiver.url_for("crm"), "secret": SECRETS["crm"]},
            {"endpoint_id": "finance", "url": receiver.url_for("finance"), "secret": SECRETS["finance"],
             "event_types": CHARGE_EVENTS},
        ],
    })


@pytest.fixture(scope="module")
def receiver():
    with WebhookReceiver(SECRETS) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def closed(warehouse, receiver, tmp_path_factory):
    """The June close, in this process, spread over three shards."""
    reset_warehouse()
    folder = tmp_path_factory.mktemp("shards")
    (folder / "catalog.yaml").write_text(catalog(receiver))
    apply_catalog(folder / "catalog.yaml")
    events = [row for name, (_, thousands) in CUSTOMERS.items()
              for row in usage(name, "api_call", [1_000 * thousands], "2026-06-10", name)]
    load_events(write_csv(folder / "june.csv", events), show_progress=False)
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("BILLING_SHARDS", "3")  # read whenever the DAGs are parsed, in this module
        yield run_dag(DAG_ID, LOGICAL_DATE, as_of=CLOSE)


def test_the_rule_puts_the_customers_and_endpoints_where_the_docstring_says(closed):
    assert query(
        "select billing.shard_of(key, 3), array_agg(key order by key) from unnest(%s::text[]) as key group by 1"
        " order by 1",
        [*CUSTOMERS, "crm", "finance"],
    ) == [(0, ["crm", "dee", "gus", "invoiced"]), (1, ["finance", "flaky", "hal"]), (2, ["ada", "bea"])]


def test_each_invoice_is_charged_once_by_its_customers_shard(closed, billing_home):
    assert query(
        "select invoices.customer_id, invoices.total_minor, invoices.status, count(attempts.*),"
        " sum(attempts.amount_minor), string_agg(attempts.status, ',')"
        " from billing.invoices left join billing.charge_attempts as attempts using (invoice_id)"
        " group by 1, 2, 3 order by 2"
    ) == [
        ("dee", 100, "paid", 1, 100, "succeeded"),
        ("gus", 200, "paid", 1, 200, "succeeded"),
        ("hal", 300, "paid", 1, 300, "succeeded"),
        ("flaky", 400, "paid", 1, 400, "succeeded"),
        ("ada", 500, "paid", 1, 500, "succeeded"),
        ("bea", 600, "payment_failed", 1, 600, "failed"),
        ("invoiced", 700, "open", 0, None, None),
    ]
    assert query("select amount_minor from billing.sandbox_gateway_charges order by 1") == [
        (100,), (200,), (300,), (400,), (500,), (600,),
    ]
    assert task_results(billing_home, closed.run_id, "charge_invoices") == {
        0: {"succeeded": 2, "failed": 0},
        1: {"succeeded": 1, "failed": 0},  # the retry: flaky; hal was charged by the first try
        2: {"succeeded": 1, "failed": 1},
    }


def test_a_gateway_failure_in_one_shard_does_not_stop_the_others(closed, billing_home):
    # flaky's lost response failed the first try of shard 1 alone; shards 0 and 2 charged on theirs
    assert tries(billing_home, closed.run_id, "charge_invoices") == {0: 1, 1: 2, 2: 1}
    assert "ChargesUnresolved: outcome unknown, will be resumed with the same key" in closed.log_path.read_text()


def test_every_endpoint_gets_its_events_once_in_order_from_its_own_shard(closed, receiver, billing_home):
    received = {endpoint: [event_id for event_id, _ in accepted]
                for endpoint, accepted in receiver.accepted_by_endpoint.items()}
    assert {endpoint: sorted(_summary(payload) for _, payload in accepted)
            for endpoint, accepted in receiver.accepted_by_endpoint.items()} == {
        "crm": sorted([
            *[("billing.invoice.generated", name) for name in CUSTOMERS],
            *[("billing.charge.succeeded", name) for name in ["dee", "gus", "hal", "flaky", "ada"]],
            ("billing.charge.failed", "bea"),
        ]),
        "finance": sorted([
            *[("billing.charge.succeeded", name) for name in ["dee", "gus", "hal", "flaky", "ada"]],
            ("billing.charge.failed", "bea"),
        ]),
    }
    for endpoint, event_ids in received.items():
        assert event_ids == [event_id for (event_id,) in query(
            "select event_id from billing.webhook_deliveries where endpoint_id = %s"
            " order by event_created_at, event_id", endpoint,
        )], endpoint
    assert task_results(billing_home, closed.run_id, "dispatch_webhooks") == {
        0: {"delivered": 13, "failed": 0, "dead_lettered": 0, "pending": 0, "endpoints_disabled": 0},
        1: {"delivered": 6, "failed": 0, "dead_lettered": 0, "pending": 0, "endpoints_disabled": 0},
        2: {"delivered": 0, "failed": 0, "dead_lettered": 0, "pending": 0, "endpoints_disabled": 0},
    }


def test_a_cleared_shard_charges_and_sends_nothing_again(closed, receiver, billing_home):
    before = _snapshot()
    delivered = len(receiver.accepted)

    rerun = clear_and_resume(closed.run_id, [("charge_invoices", 0), ("dispatch_webhooks", 0)])

    # Airflow clears the run's setup and teardown with them: the run takes the lease again
    assert rerun == {
        ("begin_run", -1): "success", ("charge_invoices", 0): "success", ("dispatch_webhooks", 0): "success",
        ("end_run", -1): "success",
    }
    assert task_results(billing_home, closed.run_id, "charge_invoices")[0] == {"succeeded": 0, "failed": 0}
    assert task_results(billing_home, closed.run_id, "dispatch_webhooks")[0]["delivered"] == 0
    assert _snapshot() == before
    assert len(receiver.accepted) == delivered
    assert query("select dag_id, outcome from billing.runs order by requested_at") == [
        (DAG_ID, "succeeded"), (DAG_ID, "succeeded"),
    ]


def clear_and_resume(run_id: str, task_instances: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """Clear task instances of a finished in-process run, as an operator does in Airflow's UI, then
    run what was cleared as the scheduler would (dag.test()'s loop, on this run instead of a new
    one); returns (task id, map index) -> state of what ran."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.sdk import DagRunState, TaskInstanceState
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from billing.orchestration import dag_bag
    from sqlalchemy import select

    dag = dag_bag().dags[DAG_ID]
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    cleared = scheduler_dag.clear(task_ids=task_instances, run_id=run_id, dag_run_state=DagRunState.RUNNING)
    assert cleared, f"nothing to clear in {run_id}"
    session = settings.Session()
    dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id))
    dag_run.dag = scheduler_dag
    ran = {}
    while dag_run.state == DagRunState.RUNNING:
        session.expire_all()
        schedulable, _ = dag_run.update_state(session=session)
        for ti in schedulable:
            ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        for ti in schedulable:
            _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
            ran[(ti.task_id, ti.map_index)] = ti
    session.expire_all()
    return {key: ti.state for key, ti in ran.items()}


def task_results(billing_home: Path, run_id: str, task_id: str) -> dict[int, dict]:
    """Each shard's return value (its XCom), by map index."""
    rows = _airflow(billing_home, "select map_index, value from xcom where dag_id = ? and run_id = ?"
                    " and task_id = ? and key = 'return_value'", run_id, task_id)
    return {map_index: _json(value) for map_index, value in rows}


def tries(billing_home: Path, run_id: str, task_id: str) -> dict[int, int]:
    return dict(_airflow(billing_home, "select map_index, try_number from task_instance where dag_id = ?"
                         " and run_id = ? and task_id = ?", run_id, task_id))


def _airflow(billing_home: Path, sql: str, run_id: str, task_id: str) -> list[tuple]:
    with sqlite3.connect(billing_home / "airflow" / "airflow.db") as airflow:
        return airflow.execute(sql, (DAG_ID, run_id, task_id)).fetchall()


def _json(value):
    while isinstance(value, (str, bytes)):
        value = json.loads(value)
    return value


def _summary(payload: dict) -> tuple[str, str]:
    data = payload["data"]
    return payload["type"], data.get("invoice", data)["customer_id"]


def _snapshot() -> dict:
    return {
        "attempts": query("select idempotency_key, invoice_id, status, resolved_at from billing.charge_attempts"
                          " order by 1"),
        "sandbox_charges": query("select idempotency_key, created_at from billing.sandbox_gateway_charges order by 1"),
        "invoices": query("select invoice_id, status from billing.invoices order by 1"),
        "events": query("select event_id from billing.webhook_events order by 1"),
        "deliveries": query("select event_id, endpoint_id, status, attempt_count from billing.webhook_deliveries"
                            " order by 1, 2"),
    }
