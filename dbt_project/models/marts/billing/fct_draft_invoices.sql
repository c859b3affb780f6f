with

closed_periods as (

    select * from {{ ref('int_subscription_periods__awaiting_invoice') }}

    where is_closed

),

plans as (

    select * from {{ ref('stg_app__plans') }}

),

customers as (

    select * from {{ ref('stg_app__customers') }}

),

lines as (

    select * from {{ ref('fct_draft_invoice_lines') }}

),

line_totals as (

    select
        invoice_id,
        count(*) as count_lines,
        sum(amount_minor) as subtotal_minor,
        bool_or(amount_minor is null) as is_out_of_range

    from lines

    group by 1

),

-- SPEC §6: one invoice per subscription per closed period, in the plan's
-- currency; an invoice with no lines still exists (total 0, paid at once).
-- A draft with a line beyond what a line holds is held (hold_reason): it is
-- not issued, and every other customer's invoice is.
final as (

    select
        {{ invoice_id(
            'closed_periods.subscription_id', 'closed_periods.period_start'
        ) }} as invoice_id,
        closed_periods.customer_id,
        closed_periods.subscription_id,
        closed_periods.plan_id,
        closed_periods.period_start,
        closed_periods.period_end,
        plans.currency,
        customers.collection_method,
        coalesce(line_totals.count_lines, 0)::int as count_lines,
        case when line_totals.is_out_of_range then 'amount_out_of_range' end
            as hold_reason,
        case
            when not coalesce(line_totals.is_out_of_range, false) then
                coalesce(line_totals.subtotal_minor, 0)::bigint
        end as subtotal_minor,
        -- SPEC §10: the issuing run's as_of as a date in the customer's
        -- timezone, and due net_terms_days later at local midnight
        invoice_dates.invoice_date,
        (invoice_dates.invoice_date + customers.net_terms_days)::timestamp
        at time zone customers.timezone as due_at,
        -- the drafts are this run's: they stay after it issues them
        {{ as_of() }} as drafted_as_of

    from closed_periods

    inner join plans
        on closed_periods.plan_id = plans.plan_id

    inner join customers
        on closed_periods.customer_id = customers.customer_id

    cross join
        lateral (
            select
                ({{ as_of() }} at time zone customers.timezone)::date
                    as invoice_date
        ) as invoice_dates

    left join line_totals
        on
            {{ invoice_id(
                'closed_periods.subscription_id', 'closed_periods.period_start'
            ) }} = line_totals.invoice_id

)

select * from final
