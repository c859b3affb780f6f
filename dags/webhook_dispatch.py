"""webhook_dispatch — every 5 minutes, deliver the webhook outbox (SPEC §8).

Delivers each due event to every enabled endpoint subscribed to its type, signed per Standard
Webhooks, with the SPEC's backoff between attempts and a dead letter after the last. Any airflow
run, re-run or overlap is safe: a delivery is claimed before it is sent and is sent once it
succeeds, never again.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

DAG_ID = "webhook_dispatch"


@dag(
    dag_id=DAG_ID,
    schedule="*/5 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["billing", "webhooks"],
)
def webhook_dispatch():
    @task
    def dispatch_webhooks() -> dict:
        from billing.webhooks.dispatch import dispatch_webhooks

        return dispatch_webhooks().__dict__

    dispatch_webhooks()


webhook_dispatch()
