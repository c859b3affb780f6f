"""charge_retries — daily at 02:00 UTC, retry failed charges; give up after 3 attempts or 72 hours.

Each failed invoice gets at most one new attempt per day, recorded before the gateway call with its
own idempotency key, so re-running a day's airflow run charges nothing twice. Invoices that run
out of attempts become `uncollectible` and `billing.invoice.uncollectible` is sent. The ledger gate
(`check_ledger`: no invoice charged twice, every charge equal to its invoice's total) runs first;
if it fails, nothing is charged until the ledger is fixed and the task cleared.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task

DAG_ID = "charge_retries"


@dag(
    dag_id=DAG_ID,
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["billing", "payments"],
)
def charge_retries():
    @task
    def check_ledger() -> None:
        from billing.quality import billing_gates

        context = get_current_context()
        billing_gates.check_ledger(as_of=context.get("logical_date") or pendulum.now("UTC"))

    @task
    def retry_failed_charges() -> dict:
        from billing.payments.gateway import configured_gateway
        from billing.payments.retries import retry_failed_charges

        context = get_current_context()
        now = context.get("logical_date") or pendulum.now("UTC")
        return retry_failed_charges(configured_gateway(), now=now).__dict__

    @task
    def dispatch_webhooks() -> dict:
        from billing.webhooks.dispatch import dispatch_webhooks

        return dispatch_webhooks().__dict__

    check_ledger() >> retry_failed_charges() >> dispatch_webhooks()


charge_retries()
