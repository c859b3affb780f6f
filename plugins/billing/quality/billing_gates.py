"""The gates of the billing runs (SPEC §9), each called by its own Airflow task.

billing_cycle_close:  check_raw_contracts → build events → check_closing_events → rate drafts →
                      check_draft_invoices → issue → check_ledger → charge → webhooks
charge_retries:       check_ledger → retry failed charges → webhooks
stripe_usage_sync:    sync usage → reconcile with Stripe → check_stripe_sync → webhooks

"Closing" means closed as of the run (dbt's `is_closed`, from as_of and grace) and not invoiced
yet (int_subscription_periods__awaiting_invoice): the periods this run is about to issue. "The
closing window" is [earliest start, latest end) of those periods. A failed gate raises GateFailed,
which fails its task, so nothing downstream is issued, charged or announced; the gates only read,
so clearing the task after a fix resumes the run. Thresholds come from `billing.quality.config`;
each check can be acknowledged for one window.

The checks name dbt models through `ref` (dbt's manifest), so a renamed or removed model fails
the gate instead of leaving it to read the stale table left behind. `raw.*` (the sources, under
data contracts) and `billing.*` (written by the application) are not models and are named as is.
"""

from __future__ import annotations

from datetime import datetime

from billing.quality import Check, Gate, GateResult, enforce, run_gate
from billing.quality.config import ClosingEventsConfig, load_quality_config
from billing.quality.contract_gate import contract_tables_version, literal, raw_contracts_gate
from billing.transform import ref
from billing.window import ClosingWindow

GATES = ("raw_contracts", "closing_events", "draft_invoices", "ledger", "stripe_sync")


def _closing_periods() -> str:
    """The periods this run is about to issue: closed, and no invoice yet."""
    return f"select * from {ref('int_subscription_periods__awaiting_invoice')} where is_closed"


def _closing_events() -> str:
    """The events this run is about to bill: the columns the closing_events checks read."""
    return f"""
        with closing_periods as ({_closing_periods()})
        select events.reference, events.customer_id, events.subscription_id, events.plan_id,
            events.event_name, events.aggregation, events.action, events.value, events.occurred_at,
            events.ingested_at, events.period_start, events.period_end
        from {ref('int_usage_events__attributed')} as events
        inner join closing_periods
            on events.subscription_id = closing_periods.subscription_id
            and events.period_start = closing_periods.period_start
    """


def _closing_drafts(*, held: bool = False) -> str:
    """The drafts of the closing periods: those to issue, or (`held`) those held back."""
    return f"""
        with closing_periods as ({_closing_periods()})
        select drafts.*
        from {ref('fct_draft_invoices')} as drafts
        inner join closing_periods
            on drafts.subscription_id = closing_periods.subscription_id
            and drafts.period_start = closing_periods.period_start
        where drafts.hold_reason is {'not ' if held else ''}null
    """


def check_raw_contracts(*, as_of: str, grace: str) -> GateResult:
    """Stop the run if a raw table breaks its data contract (data_contracts/*.yml); not checked again
    while those tables are unchanged since they passed."""
    window = ClosingWindow.parse(as_of, grace)
    return enforce(run_gate(raw_contracts_gate(as_of=window.as_of), run_label=_label(window.as_of),
                            data_version=contract_tables_version()))


def check_closing_events(*, as_of: str, grace: str) -> GateResult:
    """Stop the run if the events about to be billed look wrong."""
    window = ClosingWindow.parse(as_of, grace)
    gate = closing_events_gate(window, load_quality_config().closing_events)
    return enforce(run_gate(gate, run_label=_label(window.as_of)))


def check_draft_invoices(*, as_of: str, grace: str) -> GateResult:
    """Stop the run if a draft invoice about to be issued does not add up."""
    window = ClosingWindow.parse(as_of, grace)
    return enforce(run_gate(draft_invoices_gate(window), run_label=_label(window.as_of)))


def check_ledger(*, as_of: str | datetime, grace: str | None = None) -> GateResult:
    """Stop before any money moves if the invoices and charges ledger is inconsistent."""
    window = ClosingWindow.parse(as_of, grace) if grace else ClosingWindow.parse(as_of)
    return enforce(run_gate(ledger_gate(window), run_label=_label(window.as_of)))


def check_stripe_sync(*, as_of: str, grace: str) -> GateResult:
    """Stop the run if Stripe's usage of a period it is about to invoice differs from the warehouse's."""
    window = ClosingWindow.parse(as_of, grace)
    return enforce(run_gate(stripe_sync_gate(window), run_label=_label(window.as_of)))


def gate_for(name: str, window: ClosingWindow) -> Gate:
    """Any gate by name, as the DAGs would build it for `window` (for the CLI)."""
    builders = {
        "raw_contracts": lambda: raw_contracts_gate(as_of=window.as_of),
        "closing_events": lambda: closing_events_gate(window, load_quality_config().closing_events),
        "draft_invoices": lambda: draft_invoices_gate(window),
        "ledger": lambda: ledger_gate(window),
        "stripe_sync": lambda: stripe_sync_gate(window),
    }
    if name not in builders:
        raise ValueError(f"unknown gate {name!r} (known: {', '.join(GATES)})")
    return builders[name]()


def closing_events_gate(window: ClosingWindow, config: ClosingEventsConfig) -> Gate:
    from billing.quality.runner import load_great_expectations

    expect = load_great_expectations().expectations
    no_rows = (expect.ExpectTableRowCountToEqual(value=0),)
    return Gate("closing_events", as_of=window.as_of, params={"as_of": window.as_of}, checks=(
        Check(
            # After dedupe (int_usage_events__attributed holds the winners only).
            "events_are_complete",
            _closing_events(),
            key_columns=("reference",),
            expectations=(
                expect.ExpectColumnValuesToBeUnique(column="reference"),
                *(expect.ExpectColumnValuesToNotBeNull(column=column)
                  for column in ("reference", "customer_id", "subscription_id", "plan_id", "event_name",
                                 "aggregation", "action", "occurred_at", "ingested_at")),
            ),
        ),
        Check("values_are_in_range", _values_out_of_range(config), key_columns=("reference",),
              expectations=no_rows),
        Check(
            "timestamps_are_inside_the_window",
            _closing_events() + f"""
                where events.occurred_at < events.period_start
                    or events.occurred_at >= events.period_end
                    or events.occurred_at > {{as_of}}
                    or events.occurred_at > now() + {literal(config.future_tolerance)}::interval
            """,
            key_columns=("reference",),
            expectations=no_rows,
        ),
        Check("reject_rate_is_below_threshold", _reject_rate(config), expectations=no_rows),
        Check("volume_is_within_band_of_recent_periods", _volume_out_of_band(config), key_columns=("event_name",),
              expectations=no_rows),
    ))


def _values_out_of_range(config: ClosingEventsConfig) -> str:
    """Events whose value is outside its meter's bounds (per-meter config over the defaults)."""
    rows = [
        f"({literal(name)}, {literal(bounds.min_value)}::numeric, {literal(bounds.max_value)}::numeric,"
        f" {literal(bounds.has('min_value'))}, {literal(bounds.has('max_value'))})"
        for name, bounds in sorted(config.meters.items())
    ] or ["(null, null::numeric, null::numeric, false, false)"]
    return f"""
        with closing_events as ({_closing_events()}),
        meter_bounds (event_name, min_value, max_value, has_min, has_max) as (values {", ".join(rows)}),
        bounded as (
            select closing_events.reference, closing_events.event_name, closing_events.aggregation,
                closing_events.value,
                case when meter_bounds.has_min then meter_bounds.min_value
                    when closing_events.aggregation = 'weighted_sum' then null
                    else {literal(config.min_value)}::numeric end as min_value,
                case when meter_bounds.has_max then meter_bounds.max_value
                    else {literal(config.max_value)}::numeric end as max_value
            from closing_events
            left join meter_bounds on closing_events.event_name = meter_bounds.event_name
        )
        select * from bounded
        where value < min_value or value > max_value
    """


def _reject_rate(config: ClosingEventsConfig) -> str:
    """One row when too large a share of the window's deduped events was rejected.

    The window's events: every dedupe winner (valid or not) whose occurred_at, or ingested_at when
    it has none, falls in the closing window.
    """
    return f"""
        with closing_periods as ({_closing_periods()}),
        closing_window as (
            select min(period_start) as window_start, max(period_end) as window_end from closing_periods
        ),
        window_events as (
            select events.reject_reason
            from {ref('int_usage_events__validated')} as events
            cross join closing_window
            where coalesce(events.occurred_at, events.ingested_at) >= closing_window.window_start
                and coalesce(events.occurred_at, events.ingested_at) < closing_window.window_end
        ),
        by_reason as (
            select reject_reason, count(*) as count_events from window_events group by 1
        ),
        rates as (
            select
                coalesce(sum(count_events), 0) as count_events,
                coalesce(sum(count_events) filter (where reject_reason is not null), 0) as count_rejected,
                jsonb_object_agg(reject_reason, count_events) filter (where reject_reason is not null)
                    as rejected_by_reason
            from by_reason
        )
        select count_events, count_rejected,
            round(count_rejected / nullif(count_events, 0), 4) as reject_rate,
            {literal(config.max_reject_rate)}::numeric as max_reject_rate,
            rejected_by_reason
        from rates
        where count_events >= {config.reject_rate_min_events}
            and count_rejected > {literal(config.max_reject_rate)}::numeric * count_events
    """


def _volume_out_of_band(config: ClosingEventsConfig) -> str:
    """Meters whose event rate in the closing periods left the band around their recent rate.

    Rate = events per subscription-day. Compared: the closing periods of every subscription that
    has earlier periods, against each such subscription's last `history_periods` periods before
    its first closing one. Every meter is compared, so one with no closing events at all (the
    broken producer) is found.
    """
    volume = config.volume
    rows = [
        f"({literal(name)}, {literal(bounds.volume_min_ratio)}::numeric, {literal(bounds.volume_max_ratio)}::numeric,"
        f" {literal(bounds.has('volume_min_ratio'))}, {literal(bounds.has('volume_max_ratio'))})"
        for name, bounds in sorted(config.meters.items())
    ] or ["(null, null::numeric, null::numeric, false, false)"]
    return f"""
        with closing_periods as ({_closing_periods()}),
        first_closing as (
            select subscription_id, min(period_start) as first_closing_start from closing_periods group by 1
        ),
        history as (
            select subscription_id, period_start, period_end
            from (
                select periods.subscription_id, periods.period_start, periods.period_end,
                    row_number() over (
                        partition by periods.subscription_id order by periods.period_start desc
                    ) as recency
                from {ref('int_subscription_periods')} as periods
                inner join first_closing
                    on periods.subscription_id = first_closing.subscription_id
                    and periods.period_end <= first_closing.first_closing_start
            ) as ranked
            where recency <= {volume.history_periods}
        ),
        compared as (
            select 'closing' as side, subscription_id, period_start, period_end from closing_periods
            where subscription_id in (select subscription_id from history)
            union all
            select 'history' as side, subscription_id, period_start, period_end from history
        ),
        subscription_days as (
            select
                sum(extract(epoch from period_end - period_start)) filter (where side = 'closing') / 86400
                    as closing_days,
                sum(extract(epoch from period_end - period_start)) filter (where side = 'history') / 86400
                    as history_days
            from compared
        ),
        counts as (
            select events.event_name,
                count(*) filter (where compared.side = 'closing') as closing_events,
                count(*) filter (where compared.side = 'history') as history_events
            from compared
            inner join {ref('int_usage_events__attributed')} as events
                on compared.subscription_id = events.subscription_id
                and compared.period_start = events.period_start
            group by 1
        ),
        meter_bands (event_name, min_ratio, max_ratio, has_min, has_max) as (values {", ".join(rows)}),
        rated as (
            select meters.event_name,
                coalesce(counts.closing_events, 0) as closing_events,
                coalesce(counts.history_events, 0) as history_events,
                round(subscription_days.closing_days, 2) as closing_subscription_days,
                round(subscription_days.history_days, 2) as history_subscription_days,
                round(
                    (coalesce(counts.closing_events, 0) / subscription_days.closing_days)
                    / nullif(coalesce(counts.history_events, 0) / subscription_days.history_days, 0),
                    4
                ) as ratio,
                case when meter_bands.has_min then meter_bands.min_ratio
                    else {literal(volume.min_ratio)}::numeric end as min_ratio,
                case when meter_bands.has_max then meter_bands.max_ratio
                    else {literal(volume.max_ratio)}::numeric end as max_ratio
            from raw.meters
            cross join subscription_days
            left join counts on meters.event_name = counts.event_name
            left join meter_bands on meters.event_name = meter_bands.event_name
            where subscription_days.closing_days > 0 and subscription_days.history_days > 0
        )
        select * from rated
        where history_events >= {volume.min_baseline_events}
            and (ratio < min_ratio or ratio > max_ratio)
    """


def draft_invoices_gate(window: ClosingWindow) -> Gate:
    from billing.quality.runner import load_great_expectations

    expect = load_great_expectations().expectations
    no_rows = (expect.ExpectTableRowCountToEqual(value=0),)
    return Gate("draft_invoices", as_of=window.as_of, params={"as_of": window.as_of}, checks=(
        Check(
            "totals_equal_the_sum_of_lines",
            f"""
                with drafts as ({_closing_drafts()})
                select drafts.invoice_id, drafts.total_before_credits_minor,
                    coalesce(sum(lines.amount_minor) filter (where lines.adds_to_total), 0) as lines_total_minor,
                    drafts.subtotal_minor - drafts.discount_minor + drafts.minimum_minor + drafts.tax_minor
                        as arithmetic_total_minor
                from drafts
                left join {ref('fct_draft_invoice_lines')} as lines
                    on drafts.invoice_id = lines.invoice_id
                group by 1, 2, 4
            """,
            key_columns=("invoice_id",),
            expectations=(
                expect.ExpectColumnPairValuesToBeEqual(
                    column_A="total_before_credits_minor", column_B="lines_total_minor"
                ),
                expect.ExpectColumnPairValuesToBeEqual(
                    column_A="total_before_credits_minor", column_B="arithmetic_total_minor"
                ),
            ),
        ),
        Check(
            # NOTE: only an adjustment line (a credit for an earlier invoice) and a discount may be
            # negative; what the period itself charges never is, and discounts take at most the
            # subtotal (SPEC §12). A negative subtotal from adjustments is carried to a credit grant
            # at issue, so the invoice total is never negative (SPEC §6).
            "no_negative_totals",
            f"""
                with drafts as ({_closing_drafts()})
                select drafts.invoice_id,
                    coalesce(sum(lines.amount_minor) filter (where lines.adds_to_total), 0)
                    - least(coalesce(sum(lines.amount_minor) filter (where lines.kind = 'adjustment'), 0), 0)
                        as charges_minor,
                    coalesce(min(lines.amount_minor) filter (where lines.kind not in ('adjustment', 'discount')), 0)
                        as smallest_line_minor
                from drafts
                left join {ref('fct_draft_invoice_lines')} as lines
                    on drafts.invoice_id = lines.invoice_id
                group by 1
            """,
            key_columns=("invoice_id",),
            expectations=(
                expect.ExpectColumnValuesToBeBetween(column="charges_minor", min_value=0),
                expect.ExpectColumnValuesToBeBetween(column="smallest_line_minor", min_value=0),
            ),
        ),
        Check(
            "one_draft_per_subscription_period",
            _closing_drafts(),
            key_columns=("invoice_id",),
            expectations=(
                expect.ExpectColumnValuesToBeUnique(column="invoice_id"),
                expect.ExpectCompoundColumnsToBeUnique(column_list=["subscription_id", "period_start"]),
            ),
        ),
        Check(
            "currency_is_the_plans",
            f"""
                with drafts as ({_closing_drafts()})
                select drafts.invoice_id, drafts.currency, upper(plans.currency) as plan_currency
                from drafts
                inner join raw.plans on drafts.plan_id = plans.plan_id
            """,
            key_columns=("invoice_id",),
            expectations=(expect.ExpectColumnPairValuesToBeEqual(column_A="currency", column_B="plan_currency"),),
        ),
        Check(
            # A held draft (e.g. a line beyond what a line holds) is not issued; the others are.
            "drafts_are_billable",
            _closing_drafts(held=True),
            key_columns=("invoice_id", "customer_id", "hold_reason"),
            expectations=no_rows,
            blocking=False,
        ),
        Check("every_active_subscription_has_a_draft", _subscriptions_without_draft(),
              key_columns=("subscription_id", "period_start"), expectations=no_rows),
        Check("usage_events_reconcile", _event_reconciliation(), expectations=(
            expect.ExpectColumnPairValuesToBeEqual(column_A="raw_rows", column_B="accounted_for"),
        )),
        Check("draft_quantities_match_the_events", _quantity_mismatches(),
              key_columns=("invoice_id", "event_name"), expectations=no_rows),
    ))


def _subscriptions_without_draft() -> str:
    """Subscriptions active before as_of that miss a draft (or an issued invoice) for a period.

    Three ways to miss one: a closed period with neither; a gap between a subscription's closed
    periods (or before its first, which must start at started_at); a subscription active before
    as_of with no billing period at all (dropped by the period model).
    """
    return f"""
        with closed as (
            select subscription_id, period_start, period_end
            from {ref('int_subscription_periods')}
            where is_closed
        ),
        closing_periods as ({_closing_periods()}),
        missing as (
            select closing_periods.subscription_id, closing_periods.period_start, closing_periods.period_end,
                'closed period with no draft and no invoice' as problem
            from closing_periods
            where not exists (
                select 1 from {ref('fct_draft_invoices')} as drafts
                where drafts.subscription_id = closing_periods.subscription_id
                    and drafts.period_start = closing_periods.period_start
            )
        ),
        sequenced as (
            select closed.*, subscriptions.started_at,
                lag(closed.period_end) over (
                    partition by closed.subscription_id order by closed.period_start
                ) as previous_end
            from closed
            inner join raw.subscriptions on closed.subscription_id = subscriptions.subscription_id
        ),
        gaps as (
            select subscription_id, period_start, period_end,
                'periods do not cover the subscription: gap before this period' as problem
            from sequenced
            where period_start != coalesce(previous_end, started_at)
        ),
        unperiodised as (
            select subscriptions.subscription_id, subscriptions.started_at as period_start,
                subscriptions.ended_at as period_end, 'active subscription without billing periods' as problem
            from raw.subscriptions
            where subscriptions.started_at < {{as_of}}
                and not exists (
                    select 1 from {ref('int_subscription_periods')} as periods
                    where periods.subscription_id = subscriptions.subscription_id
                )
        )
        select * from missing
        union all
        select * from gaps
        union all
        select * from unperiodised
    """


def _event_reconciliation() -> str:
    """Raw rows = attributed (billed or to bill) + dropped duplicates + rejected, for the snapshot
    dbt built: raw rows ingested up to the latest ingested_at the models saw (later loads are
    the next run's), and those of months detached from raw, which the models still hold
    (billing.raw_events)."""
    return f"""
        with snapshot as (
            select max(ingested_at) as last_ingested_at
            from (
                select ingested_at from {ref('int_usage_events__validated')}
                union all
                select ingested_at from {ref('fct_usage_event_duplicates')}
            ) as seen
        ),
        counts as (
            select
                (select count(*) from raw.usage_events cross join snapshot
                 where usage_events.ingested_at <= snapshot.last_ingested_at)
                + (select coalesce(sum(detached_rows), 0) from raw.usage_events_partitions)
                    as raw_rows,
                (select count(*) from {ref('int_usage_events__attributed')}) as attributed,
                (select count(*) from {ref('fct_usage_event_duplicates')}) as duplicates,
                (select count(*) from {ref('fct_rejected_usage_events')}) as rejected
        )
        select raw_rows, attributed, duplicates, rejected, attributed + duplicates + rejected as accounted_for
        from counts
    """


def _quantity_mismatches() -> str:
    """Usage lines of the closing drafts whose event count (all aggregations) or usage (`count`,
    and `sum` without `set` events) differs from the attributed events; and charged meters with
    events but no line. A line's usage is its quantity plus the units a hard limit left unbilled
    (SPEC §15, `over_limit_units` in its detail)."""
    return f"""
        with drafts as ({_closing_drafts()}),
        lines as (
            select drafts.invoice_id, drafts.subscription_id, drafts.period_start, drafts.plan_id,
                lines.event_name,
                lines.quantity + coalesce((lines.detail ->> 'over_limit_units')::numeric, 0) as quantity,
                (lines.detail ->> 'count_events')::bigint as line_count_events
            from drafts
            inner join {ref('fct_draft_invoice_lines')} as lines
                on drafts.invoice_id = lines.invoice_id
            where lines.kind = 'usage'
        ),
        events as (
            select events.subscription_id, events.period_start, events.event_name,
                min(events.aggregation) as aggregation,
                count(*) as count_events,
                coalesce(sum(events.value), 0) as total_value,
                bool_or(events.action = 'set') as has_set
            from {ref('int_usage_events__attributed')} as events
            inner join drafts
                on events.subscription_id = drafts.subscription_id
                and events.period_start = drafts.period_start
            inner join raw.plan_charges
                on drafts.plan_id = plan_charges.plan_id
                and events.event_name = plan_charges.event_name
            group by 1, 2, 3
        ),
        compared as (
            select coalesce(lines.invoice_id, drafts.invoice_id) as invoice_id,
                coalesce(lines.event_name, events.event_name) as event_name,
                lines.quantity,
                case events.aggregation
                    when 'count' then events.count_events
                    when 'sum' then case when not events.has_set then events.total_value end
                end as events_quantity,
                lines.line_count_events,
                coalesce(events.count_events, 0) as count_events,
                lines.invoice_id is null as has_no_line
            from lines
            full join events
                on lines.subscription_id = events.subscription_id
                and lines.period_start = events.period_start
                and lines.event_name = events.event_name
            left join drafts
                on events.subscription_id = drafts.subscription_id
                and events.period_start = drafts.period_start
        )
        select * from compared
        where has_no_line
            or line_count_events is distinct from count_events
            or quantity != events_quantity
    """


def ledger_gate(window: ClosingWindow) -> Gate:
    """Before charging: the invoices about to be charged, and every charge, are consistent, and the
    books balance (SPEC §14): every journal entry, every currency, and every invoice's receivable
    against what remains to pay (billing.invoice_balances, that rule's one home)."""
    from billing.quality.runner import load_great_expectations

    expect = load_great_expectations().expectations
    no_rows = (expect.ExpectTableRowCountToEqual(value=0),)
    return Gate("ledger", as_of=window.as_of, checks=(
        Check(
            "no_invoice_with_two_successful_charges",
            """
                select invoice_id, count(*) as successful_charges,
                    string_agg(idempotency_key, ', ' order by attempt_no) as idempotency_keys
                from billing.charge_attempts
                where status = 'succeeded'
                group by 1
                having count(*) > 1
            """,
            key_columns=("invoice_id",),
            expectations=no_rows,
        ),
        Check(
            # Failed attempts moved no money; pending ones are about to be sent. A charge collects the
            # total less the invoice's `reduce` credit notes (no note reduces an invoice while a charge
            # is pending or once it is paid).
            "charged_amount_equals_invoice_total",
            """
                select attempts.idempotency_key, attempts.invoice_id, attempts.attempt_no, attempts.status,
                    attempts.amount_minor, attempts.currency, invoices.total_minor, invoices.amount_due_minor,
                    invoices.currency as invoice_currency
                from billing.charge_attempts as attempts
                inner join billing.invoice_balances as invoices on attempts.invoice_id = invoices.invoice_id
                where attempts.status in ('pending', 'succeeded')
                    and (attempts.amount_minor != invoices.amount_due_minor or attempts.currency != invoices.currency)
            """,
            key_columns=("idempotency_key",),
            expectations=no_rows,
        ),
        Check(
            "chargeable_invoices_equal_their_lines",
            """
                select invoices.invoice_id, invoices.invoice_number, invoices.status,
                    invoices.subtotal_minor, invoices.discount_minor, invoices.minimum_minor,
                    invoices.tax_minor, invoices.credits_minor, invoices.total_minor,
                    coalesce(sum(lines.amount_minor) filter (where lines.adds_to_total), 0) as lines_total_minor
                from billing.invoices
                left join billing.invoice_lines as lines on invoices.invoice_id = lines.invoice_id
                where invoices.status in ('open', 'payment_failed')
                group by 1, 2, 3, 4, 5, 6, 7, 8, 9
                having invoices.total_minor != coalesce(sum(lines.amount_minor) filter (where lines.adds_to_total), 0)
                    or invoices.total_minor != invoices.subtotal_minor - invoices.discount_minor
                        + invoices.minimum_minor + invoices.tax_minor - invoices.credits_minor
                    or invoices.total_minor < 0
            """,
            key_columns=("invoice_id",),
            expectations=no_rows,
        ),
        Check(
            # The warehouse refuses an unbalanced statement; this also finds an entry without lines.
            "journal_entries_balance",
            """
                select entries.entry_id, entries.kind, entries.invoice_id, entries.currency,
                    coalesce(sum(lines.debit_minor), 0) as debits_minor,
                    coalesce(sum(lines.credit_minor), 0) as credits_minor
                from billing.journal_entries as entries
                left join billing.journal_lines as lines on entries.entry_id = lines.entry_id
                group by 1
                having coalesce(sum(lines.debit_minor), 0) != coalesce(sum(lines.credit_minor), 0)
                    or count(lines.entry_id) = 0
            """,
            key_columns=("entry_id",),
            expectations=no_rows,
        ),
        Check(
            "journal_balances_per_currency",
            """
                select entries.currency, sum(lines.debit_minor) as debits_minor,
                    sum(lines.credit_minor) as credits_minor
                from billing.journal_entries as entries
                inner join billing.journal_lines as lines on entries.entry_id = lines.entry_id
                group by 1
                having sum(lines.debit_minor) != sum(lines.credit_minor)
            """,
            key_columns=("currency",),
            expectations=no_rows,
        ),
        Check(
            # What remains to pay less any refund owed (invoice_balances.receivable_minor). An entry on
            # accounts_receivable in another currency, or without an invoice, is a row too.
            "receivables_equal_amount_remaining",
            """
                with receivables as (
                    select entries.invoice_id, entries.currency,
                        sum(lines.debit_minor - lines.credit_minor) as receivable_minor
                    from billing.journal_entries as entries
                    inner join billing.journal_lines as lines on entries.entry_id = lines.entry_id
                    where lines.account = 'accounts_receivable'
                    group by 1, 2
                )
                select coalesce(balances.invoice_id, receivables.invoice_id) as invoice_id,
                    coalesce(balances.currency, receivables.currency) as currency,
                    coalesce(receivables.receivable_minor, 0) as receivable_minor,
                    coalesce(balances.receivable_minor, 0) as amount_remaining_minor
                from billing.invoice_balances as balances
                full join receivables
                    on balances.invoice_id = receivables.invoice_id and balances.currency = receivables.currency
                where coalesce(receivables.receivable_minor, 0) != coalesce(balances.receivable_minor, 0)
            """,
            key_columns=("invoice_id", "currency"),
            expectations=no_rows,
        ),
    ))


def stripe_sync_gate(window: ClosingWindow) -> Gate:
    """Before Stripe finalises a synced period (SPEC §16): what its event summaries hold, as the
    run's reconciliation recorded them, equals the warehouse's usage, per period × meter."""
    from billing.quality.runner import load_great_expectations

    expect = load_great_expectations().expectations
    return Gate("stripe_sync", as_of=window.as_of, params={"as_of": window.as_of}, checks=(
        Check(
            "reconciled_with_stripe",
            """
                select subscription_id, event_name, period_start, period_end, customer_id, stripe_customer_id,
                    stripe_meter_id, warehouse_quantity, stripe_quantity
                from billing.stripe_usage_reconciliations
                where checked_for = {as_of} and stripe_quantity != warehouse_quantity
            """,
            key_columns=("subscription_id", "event_name", "period_start"),
            expectations=(expect.ExpectTableRowCountToEqual(value=0),),
        ),
    ))


def _label(as_of: datetime) -> str:
    return f"as_of={as_of.isoformat()}"
