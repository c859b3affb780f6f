"""stripe_usage_sync — hourly, send each synced subscription's hourly usage to Stripe Meters (SPEC §16).

For plans Stripe invoices (`invoiced_by: stripe`): the usage models are brought up to date (as the
usage_pipeline does; incremental), every hour that is over is sent as a Stripe meter event, hours
changed by late events are corrected, and the periods Stripe is about to finalise (ended, within
the grace) are reconciled with Stripe's event summaries; a difference fails `check_stripe_sync` and
sends `billing.usage_sync.mismatch`. The logic is billing.stripe_sync.

Re-running a run, or backfilling past hours, sends nothing Stripe already holds: every call is
recorded before it is made, by identifier, and resent only while unanswered.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from billing.dag_defaults import RUN_SETTINGS, WINDOW_PARAMS, dispatch_webhooks, in_order, update_usage
from billing.runs import lease_tasks, leased

DAG_ID = "stripe_usage_sync"


@dag(
    dag_id=DAG_ID,
    schedule="@hourly",
    **RUN_SETTINGS,
    tags=["billing", "usage", "stripe"],
    params=WINDOW_PARAMS,
)
def stripe_usage_sync():
    # the run's logical time `as_of` (hours ending by then are sent) and the grace Stripe's
    # invoices wait after a period ends
    begin_run, end_run = lease_tasks(last_task_id="dispatch_webhooks")

    @task
    @leased
    def send_usage(run: dict) -> dict:
        from billing import stripe_sync
        from billing.window import ClosingWindow

        window = ClosingWindow.parse(**run["window"])
        return stripe_sync.sync_usage(
            stripe_sync.configured_client(), as_of=window.as_of, grace=window.grace
        ).__dict__

    @task
    @leased
    def reconcile_usage(run: dict) -> int:
        from billing import stripe_sync
        from billing.window import ClosingWindow

        window = ClosingWindow.parse(**run["window"])
        return stripe_sync.reconcile_usage(stripe_sync.configured_client(), as_of=window.as_of, grace=window.grace)

    @task
    @leased
    def check_stripe_sync(run: dict) -> None:
        from billing.quality import billing_gates

        billing_gates.check_stripe_sync(**run["window"])

    run = begin_run()
    webhooks_dispatched = dispatch_webhooks(run)
    in_order(update_usage(run), send_usage(run), reconcile_usage(run), check_stripe_sync(run), webhooks_dispatched)
    webhooks_dispatched >> end_run(run).as_teardown(setups=run)


stripe_usage_sync()
