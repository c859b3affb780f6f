{#- Amounts shown in minor units with their major-unit value beside them. -#}
{%- set amounts = [
    'base_fee_mrr', 'usage_mrr', 'mrr', 'previous_mrr', 'new_mrr',
    'reactivation_mrr', 'expansion_mrr', 'contraction_mrr', 'churn_mrr',
] -%}

with

customers as (

    select * from {{ ref('stg_app__customers') }}

),

subscriptions as (

    select * from {{ ref('stg_app__subscriptions') }}

),

plans as (

    select * from {{ ref('stg_app__plans') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

invoice_lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

-- Each subscription's base fee for one month, exact (a yearly fee ÷ 12 keeps
-- its fractions of a cent until the month's total is rounded).
subscription_fees as (

    select
        subscriptions.subscription_id,
        subscriptions.customer_id,
        plans.currency,
        customers.timezone,
        subscriptions.started_at,
        subscriptions.ended_at,
        case plans.billing_interval
            when 'year' then {{ divide('plans.base_fee', 12) }}
            else plans.base_fee
        end as monthly_base_fee

    from subscriptions

    inner join plans
        on subscriptions.plan_id = plans.plan_id

    inner join customers
        on subscriptions.customer_id = customers.customer_id

    where plans.base_fee > 0

),

-- The usage lines of issued, non-void invoices, by the service month of their
-- period (SPEC §11): a period that starts in M counts in M.
usage_months as (

    select
        invoices.customer_id,
        invoices.currency,
        {{ service_month('invoices.period_start', 'customers.timezone') }}
            as month,
        sum(invoice_lines.amount_minor)::bigint as usage_mrr_minor

    from invoice_lines

    inner join invoices
        on invoice_lines.invoice_id = invoices.invoice_id

    inner join customers
        on invoices.customer_id = customers.customer_id

    where
        invoice_lines.kind = 'usage'
        and invoices.status != 'void'

    group by 1, 2, 3

),

-- Every series ends in the latest month any customer's timezone has reached at
-- as_of, so every customer has a row in every month from its first: one
-- month's closing MRR is the next month's opening.
last_month as (

    select max({{ service_month(as_of(), 'timezone') }}) as month

    from customers

),

first_months as (

    select
        customer_id,
        currency,
        min(month) as month

    from (

        select
            customer_id,
            currency,
            {{ service_month('started_at', 'timezone') }} as month

        from subscription_fees

        union all

        select
            customer_id,
            currency,
            month

        from usage_months

    ) as candidates

    group by 1, 2

),

customer_months as (

    select
        first_months.customer_id,
        first_months.currency,
        customers.customer_name,
        months.month::date as month,
        -- the instant month M ends: local midnight of the first of M + 1
        (months.month + interval '1 month')
        at time zone customers.timezone as month_end

    from first_months

    inner join customers
        on first_months.customer_id = customers.customer_id

    cross join last_month

    cross join
        -- local wall-clock months (timestamp, not timestamptz)
        lateral generate_series(
            first_months.month::timestamp,
            last_month.month::timestamp,
            interval '1 month'
        ) as months (month)

),

-- A subscription counts in M when it is in force in M's last instant: it
-- started before M ended and had not ended before then. A plan change at the
-- turn of the month counts the old plan in M and the new one in M + 1.
base_fees as (

    select
        customer_months.customer_id,
        customer_months.currency,
        customer_months.month,
        sum(subscription_fees.monthly_base_fee) as base_fee_mrr

    from customer_months

    inner join subscription_fees
        on
            customer_months.customer_id = subscription_fees.customer_id
            and customer_months.currency = subscription_fees.currency
            and customer_months.month_end > subscription_fees.started_at
            and customer_months.month_end
            <= coalesce(subscription_fees.ended_at, 'infinity')

    group by 1, 2, 3

),

-- The month's base fees are rounded once, together, to the minor unit; usage
-- lines are already rounded amounts.
monthly as (

    select
        customer_months.customer_id,
        customer_months.customer_name,
        customer_months.month,
        customer_months.currency,
        currencies.minor_unit,
        {{ to_minor_units(
            'coalesce(base_fees.base_fee_mrr, 0)', 'currencies.minor_unit'
        ) }} as base_fee_mrr_minor,
        coalesce(usage_months.usage_mrr_minor, 0) as usage_mrr_minor

    from customer_months

    inner join currencies
        on customer_months.currency = currencies.currency

    left join base_fees
        on
            customer_months.customer_id = base_fees.customer_id
            and customer_months.currency = base_fees.currency
            and customer_months.month = base_fees.month

    left join usage_months
        on
            customer_months.customer_id = usage_months.customer_id
            and customer_months.currency = usage_months.currency
            and customer_months.month = usage_months.month

),

-- The series starts at the first month with MRR > 0.
started as (

    select
        *,
        base_fee_mrr_minor + usage_mrr_minor as mrr_minor,
        bool_or(base_fee_mrr_minor + usage_mrr_minor > 0) over (
            partition by customer_id, currency order by month
        ) as has_started

    from monthly

),

compared as (

    select
        *,
        coalesce(
            lag(mrr_minor) over (
                partition by customer_id, currency order by month
            ),
            0
        ) as previous_mrr_minor,
        row_number() over (
            partition by customer_id, currency order by month
        ) = 1 as is_first_month

    from started

    where has_started

),

classified as (

    select
        *,
        case
            when previous_mrr_minor = 0 and mrr_minor > 0 and is_first_month
                then 'new'
            when previous_mrr_minor = 0 and mrr_minor > 0
                then 'reactivation'
            when previous_mrr_minor > 0 and mrr_minor = 0
                then 'churn'
            when mrr_minor > previous_mrr_minor
                then 'expansion'
            when mrr_minor < previous_mrr_minor
                then 'contraction'
        end as mrr_movement

    from compared

),

movements as (

    select
        *,
        case
            when mrr_movement = 'new' then mrr_minor else 0
        end as new_mrr_minor,
        case
            when mrr_movement = 'reactivation' then mrr_minor else 0
        end as reactivation_mrr_minor,
        case
            when mrr_movement = 'expansion'
                then mrr_minor - previous_mrr_minor
            else 0
        end as expansion_mrr_minor,
        case
            when mrr_movement = 'contraction'
                then previous_mrr_minor - mrr_minor
            else 0
        end as contraction_mrr_minor,
        case
            when mrr_movement = 'churn' then previous_mrr_minor else 0
        end as churn_mrr_minor

    from classified

),

final as (

    select
        customer_id,
        month,
        currency,
        customer_name,
        {% for amount in amounts %}
            {{ amount }}_minor,
            {{ to_major_units(amount ~ '_minor', 'minor_unit') }}
                as {{ amount }}_major,
        {% endfor %}
        mrr_movement

    from movements

)

select * from final
