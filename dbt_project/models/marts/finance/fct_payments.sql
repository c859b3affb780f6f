with

charge_attempts as (

    select * from {{ ref('stg_billing__charge_attempts') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

customers as (

    select * from {{ ref('stg_app__customers') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

final as (

    select
        ---------- ids
        charge_attempts.charge_attempt_id,
        charge_attempts.invoice_id,
        invoices.invoice_number,
        invoices.customer_id,
        customers.customer_name,
        charge_attempts.payment_method_id,
        charge_attempts.gateway_charge_id,

        ---------- dimensions
        charge_attempts.attempt_no,
        charge_attempts.attempt_no = 1 as is_first_attempt,
        charge_attempts.outcome,
        charge_attempts.failure_code,
        charge_attempts.currency,
        date_trunc(
            'month', charge_attempts.attempted_for at time zone 'UTC'
        )::date as attempt_month,

        ---------- measures
        charge_attempts.amount_minor,
        {{ to_major_units(
            'charge_attempts.amount_minor', 'currencies.minor_unit'
        ) }} as amount_major,

        ---------- timestamps
        charge_attempts.attempted_for,
        charge_attempts.created_at,
        charge_attempts.resolved_at

    from charge_attempts

    inner join invoices
        on charge_attempts.invoice_id = invoices.invoice_id

    inner join customers
        on invoices.customer_id = customers.customer_id

    inner join currencies
        on charge_attempts.currency = currencies.currency

)

select * from final
