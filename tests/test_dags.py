"""Every DAG file in dags/ imports cleanly into a real Airflow DagBag."""

from __future__ import annotations

from billing.orchestration import dag_bag


def test_dags_folder_has_no_import_errors(billing_home):
    bag = dag_bag()
    assert bag.import_errors == {}
    assert "billing_cycle_close" in bag.dags
    close = bag.dags["billing_cycle_close"]
    assert [task.task_id for task in close.topological_sort()] == [
        "begin_run", "check_raw_contracts", "build_event_models", "check_closing_events",
        "rate_draft_invoices", "check_draft_invoices", "issue_invoices", "check_ledger", "charge_invoices",
        "dispatch_webhooks", "end_run",
    ]
