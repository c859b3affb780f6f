"""usage_pipeline — hourly, bring per-period usage up to date with the events ingested since the last run.

dbt's incremental event models dedupe the new raw events against everything seen before, validate
and attribute them, and re-aggregate only the subscription × meter × period groups they touch
(docs/incremental.md), so a run's cost follows the new events, not the history. The cycle close
then reads this maintained usage. If raw.usage_events was changed in place (it is append-only) or
the models are missing, the run rebuilds them from raw first.

Re-running a run, or running with nothing new, changes nothing: the models keep a checkpoint of
what they processed, and a run that fails leaves it where it was, so the next run redoes its work.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from billing.dag_defaults import (
    MODEL_BUILD_TIMEOUT,
    RUN_SETTINGS,
    WINDOW_PARAMS,
    dispatch_webhooks,
    in_order,
    update_usage,
)
from billing.runs import lease_tasks, leased

DAG_ID = "usage_pipeline"


@dag(
    dag_id=DAG_ID,
    schedule="@hourly",
    **RUN_SETTINGS,
    tags=["billing", "usage"],
    params=WINDOW_PARAMS,
)
def usage_pipeline():
    # the run's logical time `as_of` (usage so far counts up to it) and the grace period
    begin_run, end_run = lease_tasks(last_task_id="dispatch_webhooks")

    @task(execution_timeout=MODEL_BUILD_TIMEOUT)
    @leased
    def rate_current_usage(run: dict) -> int:
        from billing import transform

        return transform.build(transform.CURRENT_USAGE_SLICE, **run["window"], data_tests=False)

    @task
    @leased
    def announce_usage(run: dict) -> dict:
        """Overage alerts, usage limits reached, the day's usage snapshots and the rejected events of the past hour."""
        from datetime import timedelta

        from billing import usage_alerts
        from billing.window import ClosingWindow

        as_of = ClosingWindow.parse(**run["window"]).as_of
        return {
            "overages": usage_alerts.announce_overages(),
            "limits_reached": usage_alerts.announce_limits_reached(),
            "snapshots": usage_alerts.announce_usage_snapshots(),
            "rejected": usage_alerts.announce_rejected_events(since=as_of - timedelta(hours=1), until=as_of),
        }

    run = begin_run()
    webhooks_dispatched = dispatch_webhooks(run)
    in_order(update_usage(run), rate_current_usage(run), announce_usage(run), webhooks_dispatched)
    webhooks_dispatched >> end_run(run).as_teardown(setups=run)


usage_pipeline()
