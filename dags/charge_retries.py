"""charge_retries — daily at 02:00 UTC, retry failed charges; give up after 3 attempts or 72 hours.

Each failed invoice gets at most one new attempt per day, recorded before the gateway call with its
own idempotency key, so re-running a day's airflow run charges nothing twice. Invoices that run
out of attempts become `uncollectible` and `billing.invoice.uncollectible` is sent. The ledger gate
(`check_ledger`: no invoice charged twice, every charge equal to its invoice's total) runs first;
if it fails, nothing is charged until the ledger is fixed and the task cleared. The retries are
spread over `BILLING_SHARDS` mapped tasks by customer, each holding one slot of the
`billing_gateway` pool per charge in flight (billing.shards). Refunds of credit notes left pending by
a lost gateway answer are re-sent with their key (`resume_refunds`, SPEC §13).
"""

from __future__ import annotations

from airflow.sdk import dag, task
from billing.dag_defaults import RUN_SETTINGS, dispatch_webhooks, gateway_calls_in_flight, gateway_task, in_order
from billing.runs import lease_tasks, leased
from billing.shards import GATEWAY_POOL, mapped_shards

DAG_ID = "charge_retries"


@dag(
    dag_id=DAG_ID,
    schedule="0 2 * * *",
    **RUN_SETTINGS,
    tags=["billing", "payments"],
)
def charge_retries():
    # the run's logical time (its logical date, else now), never in the future
    begin_run, end_run = lease_tasks(last_task_id="dispatch_webhooks")

    @task
    @leased
    def check_ledger(run: dict) -> None:
        from billing.quality import billing_gates

        billing_gates.check_ledger(**run["window"])

    @task(**gateway_task())
    @leased
    def retry_failed_charges(run: dict, shard: dict) -> dict:
        from billing.payments.gateway import configured_gateway
        from billing.payments.retries import retry_failed_charges
        from billing.shards import Shard
        from billing.window import ClosingWindow

        now = ClosingWindow.parse(**run["window"]).as_of
        return retry_failed_charges(
            configured_gateway(), now=now, shard=Shard(**shard), concurrency=gateway_calls_in_flight()
        ).__dict__

    @task(pool=GATEWAY_POOL)  # one gateway call at a time
    @leased
    def resume_refunds(run: dict) -> dict:
        from billing.credit_notes import resume_pending_refunds
        from billing.payments.gateway import configured_gateway

        return resume_pending_refunds(configured_gateway())

    run = begin_run()
    webhooks_dispatched = dispatch_webhooks(run)
    retried = retry_failed_charges.partial(run=run).expand(shard=mapped_shards())
    in_order(check_ledger(run), retried, resume_refunds(run), webhooks_dispatched)
    webhooks_dispatched >> end_run(run).as_teardown(setups=run)


charge_retries()
