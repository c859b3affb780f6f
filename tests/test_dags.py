"""Every DAG in dags/ loads into a real Airflow DagBag, with the task order its docstring promises
and its operational settings; a task that fails for good, in a real Airflow run, tells the operator
once (`billing.dag_defaults`), one shard of a mapped task included.

Each DAG's graph is compared whole: its task ids, and every upstream → downstream edge. A leased
DAG runs its steps one after another between `begin_run` (the setup that takes the warehouse's
lease and hands every task the run) and `end_run` (the teardown that gives it back), so `begin_run`
is also upstream of every other task. Each step is downstream of every step before it
(`dag_defaults.in_order`), so a failed step stops all the later ones at once.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from billing import dag_defaults
from billing.orchestration import dag_bag, run_dag
from billing.settings import shards, task_retry_delay
from conftest import query, reset_warehouse
from spine.catalogs import OVERLAPPING_SUBSCRIPTION, TWICE

pytestmark = pytest.mark.slow

DAG_IDS = ["billing_cycle_close", "charge_retries", "stripe_usage_sync", "usage_pipeline", "webhook_dispatch"]
MODEL_BUILDS = {"build_event_models", "rate_draft_invoices", "update_usage", "rate_current_usage"}
RUN_FAILED_EVENTS = (
    "select subject_id, data from billing.webhook_events where event_type = 'billing.run.failed' order by created_at"
)

# The steps of each DAG in the order its docstring promises.
STEPS = {
    # the gates stand before every step that issues or moves money; charges, the PDFs, then their webhooks
    "billing_cycle_close": [
        "check_raw_contracts", "build_event_models", "check_closing_events", "rate_draft_invoices",
        "check_draft_invoices", "issue_invoices", "check_ledger", "charge_invoices", "render_invoice_pdfs",
        "dispatch_webhooks",
    ],
    # the ledger gate runs first: if it fails, nothing is charged or refunded
    "charge_retries": ["check_ledger", "retry_failed_charges", "resume_refunds", "dispatch_webhooks"],
    # usage brought up to date, then rated, then announced (alerts are webhooks)
    "usage_pipeline": ["update_usage", "rate_current_usage", "announce_usage", "dispatch_webhooks"],
    # usage brought up to date, sent, then reconciled with Stripe and gated; the mismatch is a webhook
    "stripe_usage_sync": ["update_usage", "send_usage", "reconcile_usage", "check_stripe_sync", "dispatch_webhooks"],
}
UNLEASED_STEPS = {
    # any run, re-run or overlap is safe: no lease
    "webhook_dispatch": ["dispatch_webhooks"],
}


def leased_edges(steps: list[str]) -> set[tuple[str, str]]:
    in_order = {(earlier, later) for position, earlier in enumerate(steps) for later in steps[position + 1:]}
    lease = {("begin_run", task_id) for task_id in [*steps, "end_run"]} | {(steps[-1], "end_run")}
    return in_order | lease


def edges(dag) -> set[tuple[str, str]]:
    return {(upstream, task.task_id) for task in dag.tasks for upstream in task.upstream_task_ids}


@pytest.fixture(scope="module")
def bag():
    return dag_bag()


def test_dags_folder_has_no_import_errors_and_every_dag_is_checked(bag):
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == set(STEPS) | set(UNLEASED_STEPS)


@pytest.mark.parametrize("dag_id", sorted(STEPS))
def test_leased_dag_runs_its_steps_in_order_inside_the_lease(bag, dag_id):
    dag = bag.dags[dag_id]
    steps = STEPS[dag_id]

    assert set(dag.task_ids) == {"begin_run", *steps, "end_run"}
    assert edges(dag) == leased_edges(steps)
    assert [task.task_id for task in dag.tasks if task.is_setup] == ["begin_run"]
    assert [task.task_id for task in dag.tasks if task.is_teardown] == ["end_run"]


@pytest.mark.parametrize("dag_id", sorted(UNLEASED_STEPS))
def test_unleased_dag_runs_its_steps_in_order(bag, dag_id):
    dag = bag.dags[dag_id]
    steps = UNLEASED_STEPS[dag_id]

    assert set(dag.task_ids) == set(steps)
    assert edges(dag) == set(zip(steps, steps[1:], strict=False))


def test_every_task_retries_twice_times_out_and_announces_its_failure(billing_home):
    bag = dag_bag()
    settings = {
        (dag_id, task.task_id): (task.retries, task.retry_delay, task.execution_timeout, task.retry_policy,
                                 task.on_failure_callback)
        for dag_id in DAG_IDS for task in bag.dags[dag_id].tasks
    }
    assert len(settings) == 12 + 6 + 7 + 6 + 1
    for (dag_id, task_id), (retries, delay, timeout, policy, callbacks) in settings.items():
        expected_timeout = timedelta(hours=4) if task_id in MODEL_BUILDS else timedelta(hours=1)
        # NOTE: a second apart in this suite (conftest.py sets BILLING_TASK_RETRY_DELAY)
        assert (retries, delay, timeout) == (2, timedelta(seconds=1), expected_timeout), (dag_id, task_id)
        # NOTE: a mapped task (one per shard) keeps the callback as given, not in a list
        assert policy is dag_defaults.RETRY_POLICY and callbacks in (
            [dag_defaults.announce_failure], dag_defaults.announce_failure
        ), (dag_id, task_id)
    assert {task_id for (_, task_id), (_, _, timeout, _, _) in settings.items()
            if timeout == timedelta(hours=4)} == MODEL_BUILDS


def shards_and_slots(bag) -> dict[str, tuple]:
    """Each gateway or delivery task's shards (what it is mapped over), pool and pool slots."""
    tasks = [("billing_cycle_close", "charge_invoices"), ("billing_cycle_close", "dispatch_webhooks"),
             ("charge_retries", "retry_failed_charges")]
    return {
        task_id: (len(task.op_kwargs_expand_input.value["shard"]), task.pool, task.pool_slots)
        for dag_id, task_id in tasks
        for task in [bag.dags[dag_id].task_dict[task_id]]
    }


def test_charging_and_delivery_are_mapped_over_the_shards_and_gateway_tasks_share_a_pool(monkeypatch):
    # by default: one shard, charging 16 calls at once in a pool of 16
    assert shards_and_slots(dag_bag()) == {
        "charge_invoices": (1, "billing_gateway", 16),
        "dispatch_webhooks": (1, "default_pool", 1),
        "retry_failed_charges": (1, "billing_gateway", 16),
    }

    monkeypatch.setenv("BILLING_SHARDS", "4")
    monkeypatch.setenv("BILLING_CHARGE_CONCURRENCY", "8")
    monkeypatch.setenv("BILLING_GATEWAY_POOL_SLOTS", "32")
    bag = dag_bag()
    assert bag.dags["billing_cycle_close"].task_dict["charge_invoices"].op_kwargs_expand_input.value == {"shard": [
        {"index": 0, "count": 4}, {"index": 1, "count": 4}, {"index": 2, "count": 4}, {"index": 3, "count": 4},
    ]}
    # one slot per call in flight: 4 shard tasks of 8 fill the pool of 32
    assert shards_and_slots(bag) == {
        "charge_invoices": (4, "billing_gateway", 8),
        "dispatch_webhooks": (4, "default_pool", 1),
        "retry_failed_charges": (4, "billing_gateway", 8),
    }

    # a task never holds more slots than the pool has (the scheduler would never start it)
    monkeypatch.setenv("BILLING_CHARGE_CONCURRENCY", "64")
    assert shards_and_slots(dag_bag())["charge_invoices"] == (4, "billing_gateway", 32)

    monkeypatch.setenv("BILLING_SHARDS", "0")
    refused = "BILLING_SHARDS: expected a whole number of at least 1, got '0'"
    with pytest.raises(ValueError, match=refused):
        shards()
    with pytest.raises(LookupError) as parsed:
        run_dag("billing_cycle_close", logical_date=AS_OF)
    assert f"billing_cycle_close.py: ValueError: {refused}\n" in f"{parsed.value}\n"


def test_a_retry_waits_a_minute_unless_the_operator_says_otherwise(monkeypatch):
    monkeypatch.delenv("BILLING_TASK_RETRY_DELAY")
    assert task_retry_delay() == timedelta(minutes=1)
    monkeypatch.setenv("BILLING_TASK_RETRY_DELAY", "5m")
    assert task_retry_delay() == timedelta(minutes=5)


def test_the_dags_share_one_dispatch_webhooks_task(billing_home):
    bag = dag_bag()
    callables = {bag.dags[dag_id].task_dict["dispatch_webhooks"].python_callable for dag_id in DAG_IDS}
    assert callables == {dag_defaults.dispatch_webhooks.function}
    builds = {bag.dags[dag_id].task_dict["update_usage"].python_callable for dag_id in ("usage_pipeline",
                                                                                         "stripe_usage_sync")}
    assert builds == {dag_defaults.update_usage.function}


# A failed gate, in a real close: the raw contracts are broken (two active subscriptions at once).
AS_OF = datetime(2026, 7, 1, 1, tzinfo=UTC)
GATE_HINT = (
    "Fix the data and clear this task to re-run the gate; or, for a known anomaly of this window only:"
    " billing quality acknowledge --gate raw_contracts --check subscriptions__one_active_subscription_per_customer"
    " --as-of 2026-07-01T01:00:00+00:00 --reason '…'"
)


def tries(billing_home: Path, dag_id: str, run_id: str, task_id: str) -> int:
    """How many times Airflow ran a task of a run (its metadata, as the scheduler would read it)."""
    with sqlite3.connect(billing_home / "airflow" / "airflow.db") as airflow:
        [(try_number,)] = airflow.execute(
            "select try_number from task_instance where dag_id = ? and run_id = ? and task_id = ?",
            (dag_id, run_id, task_id),
        ).fetchall()
    return try_number


def test_a_failed_gate_is_not_retried_and_is_announced_once(warehouse, billing_home, tmp_path):
    from billing.catalog import apply_catalog
    from billing.warehouse import connect

    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(TWICE)
    apply_catalog(tmp_path / "catalog.yaml")
    with connect() as connection:
        connection.execute(OVERLAPPING_SUBSCRIPTION)

    stopped = run_dag("billing_cycle_close", logical_date=AS_OF, conf={"as_of": AS_OF.isoformat()})
    again = run_dag("billing_cycle_close", logical_date=AS_OF, conf={"as_of": AS_OF.isoformat()})

    assert stopped.failed_tasks == again.failed_tasks == ("check_raw_contracts",)
    assert stopped.run_id != again.run_id  # in-process, a re-run is a new Airflow run of the same date
    assert tries(billing_home, "billing_cycle_close", again.run_id, "check_raw_contracts") == 1
    [(subject, data)] = query(RUN_FAILED_EVENTS)
    assert subject == "billing_cycle_close/2026-07-01T01:00:00+00:00/check_raw_contracts"
    error = data.pop("error")
    assert data == {
        "dag_id": "billing_cycle_close", "run_id": stopped.run_id, "as_of": "2026-07-01T01:00:00+00:00",
        "task_id": "check_raw_contracts", "action": GATE_HINT,
    }
    assert error.startswith(
        "GateFailed: gate raw_contracts failed: check subscriptions__one_active_subscription_per_customer:"
    )
    assert "\n" not in error
    assert (f"billing_cycle_close run {again.run_id} failed in check_raw_contracts: {error}. To do: {GATE_HINT}"
            in again.log_path.read_text())
    assert query("select count(*) from billing.invoices") == [(0,)]
    # every task after the gate is marked upstream_failed in one pass (dag_defaults.in_order): the
    # in-process run waits its one second once, for the teardown, not once a task
    waits = [line for line in again.log_path.read_text().splitlines()
             if "No tasks to run" in line and again.run_id in line]
    assert len(waits) == 1, waits


# The project's operational settings on a throwaway DAG (retries a second apart in this suite).
PROBE_DAG = '''
import time
from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task

from billing.dag_defaults import DEFAULT_ARGS


@dag(dag_id="probe", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False,
     default_args=DEFAULT_ARGS)
def probe():
    @task(execution_timeout=timedelta(seconds=2))
    def work():
        context = get_current_context()
        conf, try_number = context["dag_run"].conf, context["ti"].try_number
        with open(conf["out"], "a") as out:
            out.write(f"{try_number}\\n")
        if conf["fail"] == "first_try" and try_number == 1:
            raise ConnectionError("the warehouse went away")
        if conf["fail"] == "always":
            raise RuntimeError(f"broken on try {try_number}\\nsecond line")
        if conf["fail"] == "hang":
            time.sleep(30)

    work()


probe()
'''
PROBE_DATE = datetime(2024, 5, 1, tzinfo=UTC)

# A leased DAG whose last task is mapped over three shards; the shards in conf["failing"] always fail.
PROBE_SHARDS_DAG = '''
import pendulum
from airflow.sdk import dag, get_current_context, task

from billing.dag_defaults import DEFAULT_ARGS
from billing.runs import lease_tasks, leased


@dag(dag_id="probe_shards", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False,
     default_args=DEFAULT_ARGS)
def probe_shards():
    begin_run, end_run = lease_tasks(last_task_id="work")

    @task
    @leased
    def work(run: dict, shard: int):
        conf = get_current_context()["dag_run"].conf
        with open(conf["out"], "a") as out:
            out.write(f"{shard}\\n")
        if shard in conf["failing"]:
            raise RuntimeError(f"shard {shard} broke")

    run = begin_run()
    work.partial(run=run).expand(shard=[0, 1, 2]) >> end_run(run).as_teardown(setups=run)


probe_shards()
'''


@pytest.fixture(scope="module")
def probe_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dags")
    (folder / "probe.py").write_text(PROBE_DAG)
    (folder / "probe_shards.py").write_text(PROBE_SHARDS_DAG)
    return folder


def run_probe(folder: Path, out: Path, fail: str):
    return run_dag("probe", logical_date=PROBE_DATE, conf={"out": str(out), "fail": fail}, dags_folder=folder)


def test_a_task_that_heals_on_its_retry_succeeds_unannounced(warehouse, probe_folder, tmp_path):
    reset_warehouse()
    out = tmp_path / "tries.txt"

    outcome = run_probe(probe_folder, out, "first_try")

    assert outcome.succeeded, outcome
    assert out.read_text().split() == ["1", "2"]
    assert query(RUN_FAILED_EVENTS) == []


def test_a_task_that_keeps_failing_is_tried_three_times_then_announced_once(warehouse, probe_folder, tmp_path):
    reset_warehouse()
    out = tmp_path / "tries.txt"

    failed = run_probe(probe_folder, out, "always")
    again = run_probe(probe_folder, out, "always")

    assert (failed.failed_tasks, again.failed_tasks) == (("work",), ("work",))
    assert out.read_text().split() == ["1", "2", "3"] * 2
    assert query(RUN_FAILED_EVENTS) == [("probe/2024-05-01T00:00:00+00:00/work", {
        "dag_id": "probe", "run_id": failed.run_id, "as_of": "2024-05-01T00:00:00+00:00", "task_id": "work",
        "error": "RuntimeError: broken on try 3",
        "action": "fix the cause, then clear work (or re-run the run): every task is idempotent",
    })]


def test_a_task_past_its_timeout_fails_at_once_and_is_announced(warehouse, probe_folder, tmp_path):
    reset_warehouse()
    out = tmp_path / "tries.txt"

    hung = run_probe(probe_folder, out, "hang")

    assert hung.failed_tasks == ("work",)
    assert out.read_text().split() == ["1"]
    [(_, data)] = query(RUN_FAILED_EVENTS)
    assert data["error"].startswith("AirflowTaskTimeout: Timeout, PID: ")
    assert data["action"] == (
        "work ran past its timeout (0:00:02): find what it waited on (a lock, a slow query), then clear it"
    )


def test_a_shard_that_keeps_failing_fails_the_run_alone_and_is_announced_by_its_index(
    warehouse, probe_folder, tmp_path
):
    reset_warehouse()
    out = tmp_path / "shards.txt"

    def run_shards(failing: list[int]):
        conf = {"out": str(out), "failing": failing}
        return run_dag("probe_shards", logical_date=PROBE_DATE, conf=conf, dags_folder=probe_folder)

    failed = run_shards([1])
    assert (failed.failed_tasks, failed.not_run) == (("work",), ())
    assert sorted(out.read_text().split()) == ["0", "1", "1", "1", "2"]  # shard 1 tried three times
    assert query(RUN_FAILED_EVENTS) == [("probe_shards/2024-05-01T00:00:00+00:00/work[1]", {
        "dag_id": "probe_shards", "run_id": failed.run_id, "as_of": "2024-05-01T00:00:00+00:00", "task_id": "work[1]",
        "error": "RuntimeError: shard 1 broke",
        "action": "fix the cause, then clear work[1] (or re-run the run): every task is idempotent",
    })]

    assert run_shards([]).succeeded
    # the lease's record: a run succeeded only if every shard of its last task did
    assert query("select outcome from billing.runs order by requested_at") == [("failed",), ("succeeded",)]
