with

drafted_lines as (

    select * from {{ ref('int_invoice_lines__drafted') }}

),

periods as (

    select * from {{ ref('int_subscription_periods') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

    where status != 'void'

),

issued_lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

),

rerated as (

    select
        invoice_id,
        sum(amount_minor) as rerated_minor

    from drafted_lines

    group by 1

),

invoiced as (

    select
        invoice_id,
        sum(amount_minor) as invoiced_minor

    from issued_lines

    where kind in ('base_fee', 'usage')

    group by 1

),

already_adjusted as (

    select
        adjusted_invoice_id as invoice_id,
        sum(amount_minor) as adjusted_minor

    from issued_lines

    where kind = 'adjustment'

    group by 1

),

-- SPEC §6: an issued period is re-rated with all its usage, late events
-- included; what differs from what was invoiced and already adjusted is owed
-- (or credited) on the subscription's next invoice. The invoice itself is
-- never touched.
differences as (

    select
        invoices.invoice_id as original_invoice_id,
        invoices.invoice_number as original_invoice_number,
        invoices.subscription_id,
        invoices.period_start as original_period_start,
        invoices.currency,
        coalesce(rerated.rerated_minor, 0)::bigint as rerated_minor,
        coalesce(invoiced.invoiced_minor, 0)::bigint as invoiced_minor,
        coalesce(already_adjusted.adjusted_minor, 0)::bigint as adjusted_minor,
        (
            coalesce(rerated.rerated_minor, 0)
            - coalesce(invoiced.invoiced_minor, 0)
            - coalesce(already_adjusted.adjusted_minor, 0)
        )::bigint as amount_minor

    from invoices

    left join rerated
        on invoices.invoice_id = rerated.invoice_id

    left join invoiced
        on invoices.invoice_id = invoiced.invoice_id

    left join already_adjusted
        on invoices.invoice_id = already_adjusted.invoice_id

),

-- The next invoice of the subscription: its first closed period after the
-- original that has no invoice yet. Until that period closes, the
-- adjustment waits.
next_invoices as (

    select
        differences.original_invoice_id,
        min(periods.period_start) as period_start

    from differences

    inner join periods
        on differences.subscription_id = periods.subscription_id
        and periods.period_start > differences.original_period_start
        and periods.is_closed

    left join invoices
        on periods.subscription_id = invoices.subscription_id
        and periods.period_start = invoices.period_start

    where differences.amount_minor != 0
        and invoices.invoice_id is null

    group by 1

),

final as (

    select
        {{ invoice_id('differences.subscription_id', 'next_invoices.period_start') }}
            as invoice_id,
        differences.subscription_id,
        next_invoices.period_start,
        differences.original_invoice_id,
        differences.original_invoice_number,
        differences.currency,
        differences.rerated_minor,
        differences.invoiced_minor,
        differences.adjusted_minor,
        differences.amount_minor

    from differences

    inner join next_invoices
        on differences.original_invoice_id = next_invoices.original_invoice_id

)

select * from final
