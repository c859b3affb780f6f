"""billing_cycle_close — close every billing period that has ended, issue its invoice, collect it.

For the run's logical time `as_of` (the `as_of` param, else the logical date, else now), every
subscription period with `as_of >= period_end + grace` is closed: dbt dedupes, validates and
attributes the events, and dbt rates the draft invoices. Great Expectations gates, each its own
task, stand before every step that issues or moves money: `check_raw_contracts` (the raw tables
against data_contracts/), `check_closing_events`, `check_draft_invoices` (before issuing) and
`check_ledger` (before charging). A failed gate fails its task, so nothing downstream runs; fix the
data and clear the task (or re-run) to resume. Thresholds: BILLING_HOME/quality.yml. Other failed
tasks are retried; a task that failed for good sends `billing.run.failed` (billing.dag_defaults).

The run holds the warehouse's lease from `begin_run` to `end_run` (billing.runs): no other close,
usage update or retry run interleaves with it, whoever started it. `as_of` may be any past
instant and never in the future (SPEC §10).

`render_invoice_pdfs` stores the PDF of each invoice the run issued (billing.invoice_pdfs), after
charging and before the run's webhooks announce them with the file's place.

Charging and webhook delivery are spread over `BILLING_SHARDS` mapped tasks (billing.shards):
`charge_invoices[k]` charges the invoices of the customers in shard k, `dispatch_webhooks[k]`
delivers to the endpoints in shard k, and each charging task holds one slot of the `billing_gateway`
pool per charge in flight. Issuing stays one task, one transaction (gapless numbers).

Re-running it, for the same or any later as_of, issues nothing twice: invoices are keyed by
subscription × period, charge attempts by invoice × attempt, webhook events by what they announce.
So is re-running one shard's task.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from billing.dag_defaults import (
    MODEL_BUILD_TIMEOUT,
    RUN_SETTINGS,
    WINDOW_PARAMS,
    dispatch_webhooks,
    gateway_calls_in_flight,
    gateway_task,
    in_order,
)
from billing.runs import lease_tasks, leased
from billing.shards import mapped_shards

DAG_ID = "billing_cycle_close"


@dag(
    dag_id=DAG_ID,
    schedule="@hourly",
    **RUN_SETTINGS,
    tags=["billing", "invoicing"],
    params=WINDOW_PARAMS,
)
def billing_cycle_close():
    begin_run, end_run = lease_tasks(last_task_id="dispatch_webhooks")

    @task
    @leased
    def check_raw_contracts(run: dict) -> None:
        from billing.quality import billing_gates

        billing_gates.check_raw_contracts(**run["window"])

    @task(execution_timeout=MODEL_BUILD_TIMEOUT)
    @leased
    def build_event_models(run: dict) -> int:
        from billing import transform

        return transform.build(transform.EVENTS_SLICE, **run["window"])

    @task
    @leased
    def check_closing_events(run: dict) -> None:
        from billing.quality import billing_gates

        billing_gates.check_closing_events(**run["window"])

    @task(execution_timeout=MODEL_BUILD_TIMEOUT)
    @leased
    def rate_draft_invoices(run: dict) -> int:
        from billing import transform

        return transform.build(transform.RATING_SLICE, **run["window"])

    @task
    @leased
    def check_draft_invoices(run: dict) -> None:
        from billing.quality import billing_gates

        billing_gates.check_draft_invoices(**run["window"])

    @task
    @leased
    def issue_invoices(run: dict) -> dict:
        from billing.invoicing import issue_invoices

        return issue_invoices(issued_by_run=run["run_id"], backfill=run["backfill"]).__dict__

    @task
    @leased
    def check_ledger(run: dict) -> None:
        from billing.quality import billing_gates

        billing_gates.check_ledger(**run["window"])

    @task(**gateway_task())
    @leased
    def charge_invoices(run: dict, shard: dict) -> dict:
        from billing.payments.charging import charge_open_invoices
        from billing.payments.gateway import configured_gateway
        from billing.shards import Shard
        from billing.window import ClosingWindow

        as_of = ClosingWindow.parse(**run["window"]).as_of
        return charge_open_invoices(
            configured_gateway(), now=as_of, shard=Shard(**shard), concurrency=gateway_calls_in_flight()
        ).__dict__

    @task
    @leased
    def render_invoice_pdfs(run: dict) -> dict:
        from billing.invoice_pdfs import render_run_invoices

        return render_run_invoices(issued_by_run=run["run_id"])

    run = begin_run()
    contracts_checked = check_raw_contracts(run)
    events_built = build_event_models(run)
    events_checked = check_closing_events(run)
    drafts_rated = rate_draft_invoices(run)
    drafts_checked = check_draft_invoices(run)
    invoices_issued = issue_invoices(run)
    ledger_checked = check_ledger(run)
    shards = mapped_shards()
    invoices_charged = charge_invoices.partial(run=run).expand(shard=shards)
    pdfs_rendered = render_invoice_pdfs(run)
    webhooks_dispatched = dispatch_webhooks.partial(run=run).expand(shard=shards)
    in_order(contracts_checked, events_built, events_checked, drafts_rated, drafts_checked, invoices_issued,
             ledger_checked, invoices_charged, pdfs_rendered, webhooks_dispatched)
    webhooks_dispatched >> end_run(run).as_teardown(setups=run)


billing_cycle_close()
