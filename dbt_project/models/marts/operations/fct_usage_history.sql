with

meter_usage as (

    select * from {{ ref('fct_meter_usage') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

usage_lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

    where kind = 'usage'

),

currencies as (

    select * from {{ ref('currencies') }}

),

-- SPEC §6: at most one invoice per subscription × period, and on it at most
-- one usage line per plan charge (meter).
final as (

    select
        meter_usage.customer_id,
        meter_usage.subscription_id,
        meter_usage.plan_id,
        meter_usage.event_name,
        meter_usage.aggregation,
        meter_usage.period_start,
        meter_usage.period_end,
        meter_usage.quantity,
        meter_usage.count_events,
        meter_usage.is_closed,
        invoices.invoice_id is not null as is_invoiced,
        meter_usage.period_start <= now() and now() < meter_usage.period_end
            as is_current,
        invoices.invoice_id,
        invoices.invoice_number,
        invoices.status as invoice_status,
        invoices.currency,
        usage_lines.quantity as billed_quantity,
        usage_lines.included_units as billed_included_units,
        usage_lines.amount_minor as billed_amount_minor,
        {{ to_major_units(
            'usage_lines.amount_minor', 'currencies.minor_unit'
        ) }} as billed_amount

    from meter_usage

    left join invoices
        on
            meter_usage.subscription_id = invoices.subscription_id
            and meter_usage.period_start = invoices.period_start

    left join usage_lines
        on
            invoices.invoice_id = usage_lines.invoice_id
            and meter_usage.event_name = usage_lines.event_name

    left join currencies
        on invoices.currency = currencies.currency

)

select * from final
