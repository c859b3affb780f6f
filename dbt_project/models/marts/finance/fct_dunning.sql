with

invoices as (

    select * from {{ ref('fct_invoices') }}

),

schedule as (

    select * from {{ ref('stg_billing__charge_collection_schedule') }}

),

-- in collection: still awaiting payment after a failed attempt; where it
-- stands in the retry schedule is the retry run's own view of it (SPEC §7)
final as (

    select
        ---------- ids
        invoices.invoice_id,
        invoices.invoice_number,
        invoices.customer_id,
        invoices.customer_name,

        ---------- dimensions
        invoices.status,
        invoices.currency,
        schedule.last_failure_code,

        ---------- measures
        invoices.amount_remaining_minor,
        invoices.amount_remaining_major,
        invoices.days_past_due,
        schedule.attempts_made,
        schedule.attempts_left,

        ---------- timestamps
        invoices.due_at,
        schedule.last_attempted_for,
        schedule.next_attempt_from,
        schedule.gives_up_at

    from invoices

    inner join schedule
        on invoices.invoice_id = schedule.invoice_id

    where invoices.status in ('open', 'payment_failed')

)

select * from final
