with

drafted_lines as (

    select * from {{ ref('int_invoice_lines__drafted') }}

),

adjustments as (

    select * from {{ ref('int_invoice_adjustments') }}

    where status = 'drafted'

),

closed_periods as (

    select * from {{ ref('int_subscription_periods__awaiting_invoice') }}

    where is_closed

),

-- Only periods without an invoice are drafts to issue; issued periods are
-- re-rated in int_invoice_adjustments instead.
pending_lines as (

    select drafted_lines.*

    from drafted_lines

    inner join closed_periods
        on
            drafted_lines.subscription_id = closed_periods.subscription_id
            and drafted_lines.period_start = closed_periods.period_start

),

adjustment_lines as (

    select
        adjustments.invoice_id,
        adjustments.subscription_id,
        adjustments.period_start,
        'adjustment' as kind,
        null as event_name,
        'Adjustment to ' || adjustments.original_invoice_number
        || ' (usage re-rated)' as description,
        null::numeric as quantity,
        null::numeric as included_units,
        null::numeric as amount,
        adjustments.currency,
        adjustments.amount_minor,
        jsonb_build_object(
            'original_invoice_id', adjustments.original_invoice_id,
            'original_invoice_number', adjustments.original_invoice_number,
            'original_subscription_id', adjustments.original_subscription_id,
            'rerated_minor', adjustments.rerated_minor,
            'invoiced_minor', adjustments.invoiced_minor,
            'previously_adjusted_minor', adjustments.adjusted_minor
        ) as detail

    from adjustments

),

lines as (

    select
        invoice_id,
        subscription_id,
        period_start,
        kind,
        event_name,
        description,
        quantity,
        included_units,
        amount,
        currency,
        amount_minor,
        detail,
        line_no as position
    from pending_lines

    union all

    select
        adjustment_lines.*,
        1000 + row_number() over (
            partition by invoice_id
            order by detail ->> 'original_invoice_number'
        ) as position
    from adjustment_lines

)

select * from lines
