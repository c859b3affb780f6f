"""webhook_dispatch — every 5 minutes, deliver the webhook outbox (SPEC §8).

Delivers each due event to every enabled endpoint subscribed to its type, signed per Standard
Webhooks, with the SPEC's backoff between attempts and a dead letter after the last. Any airflow
run, re-run or overlap is safe: a delivery is claimed before it is sent and is sent once it
succeeds, never again. It takes no warehouse lease, so it also delivers the `billing.run.failed`
of a run that stopped before its own `dispatch_webhooks`.
"""

from __future__ import annotations

from airflow.sdk import dag
from billing.dag_defaults import RUN_SETTINGS, dispatch_webhooks

DAG_ID = "webhook_dispatch"


@dag(
    dag_id=DAG_ID,
    schedule="*/5 * * * *",
    **RUN_SETTINGS,
    tags=["billing", "webhooks"],
)
def webhook_dispatch():
    dispatch_webhooks()


webhook_dispatch()
