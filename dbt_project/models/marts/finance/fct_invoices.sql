with

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

customers as (

    select * from {{ ref('stg_app__customers') }}

),

subscriptions as (

    select * from {{ ref('stg_app__subscriptions') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

charge_attempts as (

    select * from {{ ref('stg_billing__charge_attempts') }}

),

-- SPEC §7: a succeeded attempt charges the invoice's total; at most one
-- succeeds, as the invoice is paid by it.
payments as (

    select
        invoice_id,
        sum(amount_minor)::bigint as amount_paid_minor,
        max(resolved_at) as paid_at

    from charge_attempts

    where outcome = 'succeeded'

    group by 1

),

settled as (

    select
        invoices.*,
        customers.customer_name,
        customers.timezone,
        subscriptions.plan_id,
        currencies.minor_unit,
        coalesce(payments.amount_paid_minor, 0) as amount_paid_minor,
        -- SPEC §6: a zero total is paid when issued, without a charge
        case
            when invoices.status = 'paid'
                then coalesce(payments.paid_at, invoices.issued_at)
        end as paid_at,
        -- what the customer still owes: nothing on a void invoice;
        -- an uncollectible one still owes its total (written off)
        case
            when invoices.status = 'void' then 0
            else invoices.total_minor - coalesce(payments.amount_paid_minor, 0)
        end::bigint as amount_remaining_minor

    from invoices

    inner join customers
        on invoices.customer_id = customers.customer_id

    left join subscriptions
        on invoices.subscription_id = subscriptions.subscription_id

    inner join currencies
        on invoices.currency = currencies.currency

    left join payments
        on invoices.invoice_id = payments.invoice_id

),

final as (

    select
        ---------- ids
        invoice_id,
        invoice_number,
        customer_id,
        customer_name,
        subscription_id,
        plan_id,

        ---------- dimensions
        currency,
        status,
        period_start,
        period_end,
        {{ service_month('period_start', 'timezone') }} as service_month,
        invoice_date,
        due_at,
        issued_at,
        issued_by_run,
        issued_in_backfill,
        paid_at,

        ---------- measures
        subtotal_minor,
        {{ to_major_units('subtotal_minor', 'minor_unit') }} as subtotal_major,
        -- SPEC §12: total = subtotal - discount + minimum + tax - credits
        discount_minor,
        {{ to_major_units('discount_minor', 'minor_unit') }} as discount_major,
        minimum_minor,
        tax_minor,
        {{ to_major_units('tax_minor', 'minor_unit') }} as tax_major,
        tax_inclusive_minor,
        reverse_charge,
        credits_minor,
        {{ to_major_units('credits_minor', 'minor_unit') }} as credits_major,
        total_minor,
        {{ to_major_units('total_minor', 'minor_unit') }} as total_major,
        amount_paid_minor,
        {{ to_major_units('amount_paid_minor', 'minor_unit') }}
            as amount_paid_major,
        amount_remaining_minor,
        {{ to_major_units('amount_remaining_minor', 'minor_unit') }}
            as amount_remaining_major,
        case
            when status in ('open', 'payment_failed')
                then {{ days_past_due(
                    'due_at',
                    '(' ~ dbt.current_timestamp() ~ ' at time zone timezone)::date',
                    'timezone'
                ) }}
            else 0
        end as days_past_due

    from settled

)

select * from final
