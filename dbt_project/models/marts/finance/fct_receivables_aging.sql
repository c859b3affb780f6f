with

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

customers as (

    select * from {{ ref('stg_app__customers') }}

),

charge_attempts as (

    select * from {{ ref('stg_billing__charge_attempts') }}

),

schedule as (

    select * from {{ ref('stg_billing__charge_collection_schedule') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

-- An invoice's history, on its runs' logical times (backfills age as the
-- original runs would have): first failed attempt, paying attempt.
attempt_times as (

    select
        invoice_id,
        min(attempted_for) filter (where outcome = 'failed') as failed_for,
        min(attempted_for) filter (where outcome = 'succeeded') as paid_for

    from charge_attempts

    group by 1

),

-- Every invoice that was owed at some point: not void (the warehouse keeps
-- no void time, so a void invoice is left out at every date), total > 0.
-- Written off when the retry schedule gave it up.
receivables as (

    select
        invoices.invoice_id,
        invoices.invoice_number,
        invoices.customer_id,
        customers.customer_name,
        invoices.currency,
        currencies.minor_unit,
        invoices.total_minor,
        invoices.invoice_date,
        invoices.due_at,
        customers.timezone,
        attempt_times.failed_for,
        attempt_times.paid_for,
        case
            when invoices.status = 'uncollectible' then schedule.gives_up_at
        end as written_off_at,
        ({{ dbt.current_timestamp() }} at time zone customers.timezone)::date
            as local_today

    from invoices

    inner join customers
        on invoices.customer_id = customers.customer_id

    inner join currencies
        on invoices.currency = currencies.currency

    left join attempt_times
        on invoices.invoice_id = attempt_times.invoice_id

    left join schedule
        on invoices.invoice_id = schedule.invoice_id

    where invoices.status != 'void' and invoices.total_minor > 0

),

-- The dates it is aged as of: the end (local midnight after) of every
-- month since its invoice month that has ended and in which it was still
-- unpaid, and today, as recorded now.
as_of_points as (

    select
        receivables.*,
        (month_starts.next_month_start - interval '1 day')::date as as_of_date,
        false as is_current,
        month_starts.next_month_start at time zone receivables.timezone
            as as_of_at

    from receivables

    cross join
        lateral generate_series(
            date_trunc('month', receivables.invoice_date::timestamp)
            + interval '1 month',
            least(
                receivables.local_today,
                (receivables.paid_for at time zone receivables.timezone)::date
            )::timestamp,
            interval '1 month'
        ) as month_starts (next_month_start)

    union all

    select
        receivables.*,
        receivables.local_today as as_of_date,
        true as is_current,
        'infinity'::timestamptz as as_of_at

    from receivables

),

aged as (

    select
        *,
        case
            when written_off_at <= as_of_at then 'uncollectible'
            when failed_for <= as_of_at then 'payment_failed'
            else 'open'
        end as status_as_of,
        {{ days_past_due('due_at', 'as_of_date', 'timezone') }}
            as days_past_due

    from as_of_points

    where paid_for is null or paid_for > as_of_at

),

final as (

    select
        ---------- ids
        as_of_date,
        invoice_id,
        invoice_number,
        customer_id,
        customer_name,

        ---------- dimensions
        is_current,
        currency,
        status_as_of,
        -- SPEC §11: by days past due; written off apart
        case
            when status_as_of = 'uncollectible' then 'written_off'
            when days_past_due = 0 then 'current'
            when days_past_due <= 30 then '1-30'
            when days_past_due <= 60 then '31-60'
            when days_past_due <= 90 then '61-90'
            else '91+'
        end as aging_bucket,
        invoice_date,
        due_at,
        written_off_at,

        ---------- measures
        days_past_due,
        -- a charge takes the whole total: owed in full until paid
        total_minor as amount_remaining_minor,
        {{ to_major_units('total_minor', 'minor_unit') }}
            as amount_remaining_major

    from aged

)

select * from final
