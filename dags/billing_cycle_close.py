"""billing_cycle_close — close every billing period that has ended, issue its invoice, collect it.

For the run's logical time `as_of` (the `as_of` param, else the logical date, else now), every
subscription period with `as_of >= period_end + grace` is closed: dbt dedupes, validates and
attributes the events, and dbt rates the draft invoices. Great Expectations gates, each its own
task, stand before every step that issues or moves money: `check_raw_contracts` (the raw tables
against data_contracts/), `check_closing_events`, `check_draft_invoices` (before issuing) and
`check_ledger` (before charging). A failed gate fails its task, so nothing downstream runs; fix the
data and clear the task (or re-run) to resume. Thresholds: BILLING_HOME/quality.yml.

Re-running it, for the same or any later as_of, issues nothing twice: invoices are keyed by
subscription × period, charge attempts by invoice × attempt, webhook events by what they announce.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task

DAG_ID = "billing_cycle_close"


@dag(
    dag_id=DAG_ID,
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["billing", "invoicing"],
    params={"as_of": None, "grace": "1 hour"},
)
def billing_cycle_close():
    @task
    def resolve_window() -> dict:
        """The closing window: `as_of` and `grace`, validated once for every task below."""
        from billing.window import ClosingWindow

        return ClosingWindow.of_dag_run(get_current_context()).as_dict()

    @task
    def check_raw_contracts(window: dict) -> None:
        from billing.quality import billing_gates

        billing_gates.check_raw_contracts(**window)

    @task
    def build_event_models(window: dict) -> int:
        from billing import transform

        return transform.build(transform.EVENTS_SLICE, **window)

    @task
    def check_closing_events(window: dict) -> None:
        from billing.quality import billing_gates

        billing_gates.check_closing_events(**window)

    @task
    def rate_draft_invoices(window: dict) -> int:
        from billing import transform

        return transform.build(transform.RATING_SLICE, **window)

    @task
    def check_draft_invoices(window: dict) -> None:
        from billing.quality import billing_gates

        billing_gates.check_draft_invoices(**window)

    @task
    def issue_invoices() -> dict:
        from billing.invoicing import issue_invoices

        return issue_invoices().__dict__

    @task
    def check_ledger(window: dict) -> None:
        from billing.quality import billing_gates

        billing_gates.check_ledger(**window)

    @task
    def charge_invoices(window: dict) -> dict:
        from billing.payments.charging import charge_open_invoices
        from billing.payments.gateway import configured_gateway
        from billing.window import ClosingWindow

        as_of = ClosingWindow.parse(**window).as_of
        return charge_open_invoices(configured_gateway(), now=as_of).__dict__

    @task
    def dispatch_webhooks() -> dict:
        from billing.webhooks.dispatch import dispatch_webhooks

        return dispatch_webhooks().__dict__

    window = resolve_window()
    contracts_checked = check_raw_contracts(window)
    events_built = build_event_models(window)
    events_checked = check_closing_events(window)
    drafts_rated = rate_draft_invoices(window)
    drafts_checked = check_draft_invoices(window)
    ledger_checked = check_ledger(window)
    contracts_checked >> events_built >> events_checked >> drafts_rated >> drafts_checked
    drafts_checked >> issue_invoices() >> ledger_checked >> charge_invoices(window) >> dispatch_webhooks()


billing_cycle_close()
