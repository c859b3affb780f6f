with

drafted_lines as (

    select * from {{ ref('int_invoice_lines__drafted') }}

),

-- Periods no invoice has been issued for yet, closed or still running.
awaiting_invoice as (

    select * from {{ ref('int_subscription_periods__awaiting_invoice') }}

),

plans as (

    select * from {{ ref('stg_app__plans') }}

),

-- A void invoice is not re-rated; its period, never drafted again, cannot
-- carry an adjustment either (int_subscription_periods__awaiting_invoice).
invoices as (

    select * from {{ ref('stg_billing__invoices') }}

    where status != 'void'

),

issued_lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

),

-- A line beyond what an invoice line holds (amount_minor null) leaves the
-- whole re-rate unknown: listed as unbilled, never carried as a partial sum.
rerated as (

    select
        invoice_id,
        sum(amount_minor) as rerated_minor,
        bool_or(amount_minor is null) as is_out_of_range

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
-- (or credited) on a later invoice. The invoice itself is never touched.
differences as (

    select
        invoices.invoice_id as original_invoice_id,
        invoices.invoice_number as original_invoice_number,
        invoices.customer_id,
        invoices.subscription_id as original_subscription_id,
        invoices.period_start as original_period_start,
        invoices.period_end as original_period_end,
        invoices.currency,
        coalesce(rerated.is_out_of_range, false) as is_out_of_range,
        coalesce(invoiced.invoiced_minor, 0)::bigint as invoiced_minor,
        coalesce(already_adjusted.adjusted_minor, 0)::bigint as adjusted_minor,
        case
            when not coalesce(rerated.is_out_of_range, false) then
                coalesce(rerated.rerated_minor, 0)::bigint
        end as rerated_minor,
        case
            when not coalesce(rerated.is_out_of_range, false) then
                (
                    coalesce(rerated.rerated_minor, 0)
                    - coalesce(invoiced.invoiced_minor, 0)
                    - coalesce(already_adjusted.adjusted_minor, 0)
                )::bigint
        end as amount_minor

    from invoices

    left join rerated
        on invoices.invoice_id = rerated.invoice_id

    left join invoiced
        on invoices.invoice_id = invoiced.invoice_id

    left join already_adjusted
        on invoices.invoice_id = already_adjusted.invoice_id

),

outstanding as (

    select * from differences

    where amount_minor != 0 or is_out_of_range

),

uninvoiced_periods as (

    select
        awaiting_invoice.customer_id,
        awaiting_invoice.subscription_id,
        awaiting_invoice.period_start,
        awaiting_invoice.period_end,
        awaiting_invoice.is_closed,
        plans.currency

    from awaiting_invoice

    inner join plans
        on awaiting_invoice.plan_id = plans.plan_id

),

-- The invoice that carries a difference: the subscription's next one
-- (SPEC §6). A subscription that ended (plan change, churn) has no next
-- invoice, so the difference goes on the customer's next invoice in the
-- original's currency instead: otherwise it would never be billed or
-- credited. "Next" is the order invoices are issued in. A first candidate
-- in another currency never carries; it only tells why a difference is
-- unbilled.
candidates as (

    select
        outstanding.original_invoice_id,
        uninvoiced_periods.subscription_id,
        uninvoiced_periods.period_start,
        uninvoiced_periods.is_closed,
        uninvoiced_periods.currency = outstanding.currency as is_in_currency,
        row_number() over (
            partition by outstanding.original_invoice_id
            order by
                uninvoiced_periods.currency = outstanding.currency desc,
                uninvoiced_periods.subscription_id
                = outstanding.original_subscription_id desc,
                uninvoiced_periods.period_end,
                uninvoiced_periods.period_start asc,
                uninvoiced_periods.subscription_id asc
        ) as candidate_rank

    from outstanding

    inner join uninvoiced_periods
        on
            outstanding.customer_id = uninvoiced_periods.customer_id
            and outstanding.original_period_end < uninvoiced_periods.period_end

),

first_candidates as (

    select * from candidates

    where candidate_rank = 1

),

carriers as (

    select * from first_candidates

    where is_in_currency

),

routed as (

    select
        outstanding.*,
        carriers.subscription_id,
        carriers.period_start,

        case
            when carriers.is_closed then 'drafted'
            when carriers.original_invoice_id is not null then 'waiting'
            else 'unbilled'
        end as status,

        case
            when outstanding.is_out_of_range then 'amount_out_of_range'
            when carriers.original_invoice_id is not null then null
            when first_candidates.original_invoice_id is not null
                then 'no_later_subscription_in_currency'
            else 'no_later_subscription'
        end as unbilled_reason

    from outstanding

    left join carriers
        on
            outstanding.original_invoice_id = carriers.original_invoice_id
            and not outstanding.is_out_of_range

    left join first_candidates
        on
            outstanding.original_invoice_id
            = first_candidates.original_invoice_id

),

final as (

    select
        case
            when routed.subscription_id is not null then
                {{ invoice_id(
                    'routed.subscription_id', 'routed.period_start'
                ) }}
        end as invoice_id,
        routed.subscription_id,
        routed.period_start,
        routed.original_invoice_id,
        routed.original_invoice_number,
        routed.original_subscription_id,
        routed.original_period_start,
        routed.original_period_end,
        routed.customer_id,
        routed.currency,
        routed.rerated_minor,
        routed.invoiced_minor,
        routed.adjusted_minor,
        routed.amount_minor,
        routed.status,
        routed.unbilled_reason

    from routed

)

select * from final
