with

lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

),

invoices as (

    select * from {{ ref('fct_invoices') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

final as (

    select
        ---------- ids
        lines.invoice_id,
        lines.line_no,
        invoices.invoice_number,
        invoices.customer_id,
        invoices.customer_name,
        invoices.subscription_id,
        invoices.plan_id,
        lines.adjusted_invoice_id,

        ---------- dimensions
        invoices.status as invoice_status,
        invoices.currency,
        invoices.service_month,
        lines.kind,
        lines.event_name,
        lines.description,

        ---------- measures
        lines.quantity,
        lines.included_units,
        lines.amount_minor,
        {{ to_major_units('lines.amount_minor', 'currencies.minor_unit') }}
            as amount_major,
        lines.adds_to_total

    from lines

    inner join invoices
        on lines.invoice_id = invoices.invoice_id

    inner join currencies
        on invoices.currency = currencies.currency

)

select * from final
