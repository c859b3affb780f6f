"""Every DAG in dags/ loads into a real Airflow DagBag, with the task order its docstring promises.

Each DAG's graph is compared whole: its task ids, and every upstream → downstream edge. A leased
DAG runs its steps in one chain between `begin_run` (the setup that takes the warehouse's lease
and hands every task the run) and `end_run` (the teardown that gives it back), so `begin_run` is
also upstream of every other task.
"""

from __future__ import annotations

import pytest

from billing.orchestration import dag_bag

# The steps of each DAG in the order its docstring promises.
STEPS = {
    # the gates stand before every step that issues or moves money; charges, then their webhooks
    "billing_cycle_close": [
        "check_raw_contracts", "build_event_models", "check_closing_events", "rate_draft_invoices",
        "check_draft_invoices", "issue_invoices", "check_ledger", "charge_invoices", "dispatch_webhooks",
    ],
    # the ledger gate runs first: if it fails, nothing is charged
    "charge_retries": ["check_ledger", "retry_failed_charges", "dispatch_webhooks"],
    # usage brought up to date, then rated, then announced (alerts are webhooks)
    "usage_pipeline": ["update_usage", "rate_current_usage", "announce_usage", "dispatch_webhooks"],
}
UNLEASED_STEPS = {
    # any run, re-run or overlap is safe: no lease
    "webhook_dispatch": ["dispatch_webhooks"],
}


def leased_edges(steps: list[str]) -> set[tuple[str, str]]:
    chain = ["begin_run", *steps, "end_run"]
    return set(zip(chain, chain[1:])) | {("begin_run", task_id) for task_id in chain[1:]}


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
    assert edges(dag) == set(zip(steps, steps[1:]))
