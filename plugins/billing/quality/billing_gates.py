"""The gates of the cycle close (SPEC §9): on the closing periods' events, then on the drafts.

"Closing" means closed as of the run (dbt's `is_closed`, from as_of and grace) and not invoiced
yet: the periods this run is about to issue. A failed gate raises GateFailed, which fails its
Airflow task, so nothing is issued, charged or announced.
"""

from __future__ import annotations

from billing.quality import Check, Gate, enforce, run_gate
from billing.window import ClosingWindow

CLOSING_PERIODS = """
    select periods.*
    from billing_intermediate.int_subscription_periods as periods
    where periods.is_closed
        and not exists (
            select 1 from billing.invoices
            where invoices.subscription_id = periods.subscription_id
                and invoices.period_start = periods.period_start
        )
"""

CLOSING_EVENTS = f"""
    with closing_periods as ({CLOSING_PERIODS})
    select events.*
    from billing_intermediate.int_usage_events__attributed as events
    inner join closing_periods
        on events.subscription_id = closing_periods.subscription_id
        and events.period_start = closing_periods.period_start
"""

CLOSING_DRAFTS = f"""
    with closing_periods as ({CLOSING_PERIODS})
    select drafts.*
    from billing_marts.fct_draft_invoices as drafts
    inner join closing_periods
        on drafts.subscription_id = closing_periods.subscription_id
        and drafts.period_start = closing_periods.period_start
"""


def check_closing_events(*, as_of: str, grace: str) -> None:
    """Stop the run if the events about to be billed, or the subscriptions they bill, look wrong."""
    window = ClosingWindow.parse(as_of, grace)
    enforce(run_gate(_closing_events_gate(window), run_label=f"as_of={window.as_of.isoformat()}"))


def check_draft_invoices(*, as_of: str, grace: str) -> None:
    """Stop the run if a draft invoice about to be issued does not add up."""
    window = ClosingWindow.parse(as_of, grace)
    enforce(run_gate(_draft_invoices_gate(), run_label=f"as_of={window.as_of.isoformat()}"))


def _closing_events_gate(window: ClosingWindow) -> Gate:
    from billing.quality.runner import load_great_expectations

    expect = load_great_expectations().expectations
    return Gate("closing_events", params={"as_of": window.as_of}, checks=(
        Check(
            "events_are_complete",
            CLOSING_EVENTS,
            key_columns=("reference",),
            expectations=(
                expect.ExpectColumnValuesToBeUnique(column="reference"),
                *(expect.ExpectColumnValuesToNotBeNull(column=column)
                  for column in ("reference", "customer_id", "subscription_id", "event_name", "occurred_at")),
            ),
        ),
        Check(
            "values_are_in_range",
            CLOSING_EVENTS + " where events.aggregation != 'weighted_sum'",
            key_columns=("reference",),
            expectations=(expect.ExpectColumnValuesToBeBetween(column="value", min_value=0),),
        ),
        Check(
            "events_are_inside_their_period_and_not_after_as_of",
            CLOSING_EVENTS + """
                where events.occurred_at < events.period_start
                    or events.occurred_at >= events.period_end
                    or events.occurred_at > {as_of}
            """,
            key_columns=("reference",),
            expectations=(expect.ExpectTableRowCountToEqual(value=0),),
        ),
        Check(
            "subscriptions_do_not_overlap",
            """
                select earlier.customer_id, earlier.subscription_id, later.subscription_id as overlapping_id
                from raw.subscriptions as earlier
                inner join raw.subscriptions as later
                    on earlier.customer_id = later.customer_id
                    and earlier.subscription_id != later.subscription_id
                    and earlier.started_at <= later.started_at
                    and later.started_at < coalesce(earlier.ended_at, 'infinity')
            """,
            key_columns=("customer_id",),
            expectations=(expect.ExpectTableRowCountToEqual(value=0),),
        ),
    ))


def _draft_invoices_gate() -> Gate:
    from billing.quality.runner import load_great_expectations

    expect = load_great_expectations().expectations
    return Gate("draft_invoices", checks=(
        Check(
            "totals_equal_the_sum_of_lines",
            f"""
                with drafts as ({CLOSING_DRAFTS})
                select drafts.invoice_id, drafts.subtotal_minor,
                    coalesce(sum(lines.amount_minor), 0) as lines_total_minor
                from drafts
                left join billing_marts.fct_draft_invoice_lines as lines
                    on drafts.invoice_id = lines.invoice_id
                group by 1, 2
            """,
            key_columns=("invoice_id",),
            expectations=(
                expect.ExpectColumnPairValuesToBeEqual(column_A="subtotal_minor", column_B="lines_total_minor"),
                expect.ExpectColumnValuesToBeBetween(column="subtotal_minor", min_value=0),
            ),
        ),
        Check(
            "one_draft_per_subscription_period",
            CLOSING_DRAFTS,
            key_columns=("invoice_id",),
            expectations=(
                expect.ExpectColumnValuesToBeUnique(column="invoice_id"),
                expect.ExpectCompoundColumnsToBeUnique(column_list=["subscription_id", "period_start"]),
            ),
        ),
        Check(
            "currency_is_the_plans",
            f"""
                with drafts as ({CLOSING_DRAFTS})
                select drafts.invoice_id, drafts.currency, upper(plans.currency) as plan_currency
                from drafts
                inner join raw.plans on drafts.plan_id = plans.plan_id
            """,
            key_columns=("invoice_id",),
            expectations=(expect.ExpectColumnPairValuesToBeEqual(column_A="currency", column_B="plan_currency"),),
        ),
    ))
