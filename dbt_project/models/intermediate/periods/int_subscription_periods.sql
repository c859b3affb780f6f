with

subscriptions as (

    select * from {{ ref('stg_app__subscriptions') }}

),

customers as (

    select * from {{ ref('stg_app__customers') }}

),

plans as (

    select * from {{ ref('stg_app__plans') }}

),

-- SPEC §3: periods are computed in the customer's timezone, starting at local
-- midnight on the anchor day (default: the local day of started_at).
calendars as (

    select
        subscriptions.subscription_id,
        subscriptions.customer_id,
        subscriptions.plan_id,
        subscriptions.started_at,
        subscriptions.ended_at,
        customers.timezone,
        plans.billing_interval,

        coalesce(
            subscriptions.billing_anchor_day,
            extract(
                day from
                subscriptions.started_at at time zone customers.timezone
            )
        )::int as anchor_day,

        date_trunc(
            'month', subscriptions.started_at at time zone customers.timezone
        ) as started_month_local,

        case plans.billing_interval
            when 'year' then interval '1 year'
            else interval '1 month'
        end as step,

        -- periods are generated up to the later of the run's as_of and now
        -- (events can arrive for the current period), or up to ended_at
        least(
            coalesce(subscriptions.ended_at, 'infinity'::timestamptz),
            greatest({{ as_of() }}, now())
        ) as horizon_at

    from subscriptions

    inner join customers
        on subscriptions.customer_id = customers.customer_id

    inner join plans
        on subscriptions.plan_id = plans.plan_id

),

-- One boundary per interval, from the one before started_at to the first after
-- the horizon. In a month too short for the anchor day the boundary falls on
-- the month's last day (anchor 31 → Feb 28).
boundaries as (

    select
        calendars.subscription_id,
        boundary_index,

        make_timestamptz(
            extract(year from months.boundary_month)::int,
            extract(month from months.boundary_month)::int,
            least(
                calendars.anchor_day,
                extract(
                    day from months.boundary_month
                    + interval '1 month'
                    - interval '1 day'
                )::int
            ),
            0, 0, 0,
            calendars.timezone
        ) as boundary_at

    from calendars

    cross join
        lateral generate_series(
            -1,
            ceil(
                extract(epoch from calendars.horizon_at - calendars.started_at)
                / extract(epoch from interval '28 days')
            )::int
            / case calendars.billing_interval when 'year' then 12 else 1 end
            + 1
        ) as boundary_index

    cross join lateral (
        select calendars.started_month_local + boundary_index * calendars.step
            as boundary_month
    ) as months

),

regular_periods as (

    select
        subscription_id,
        boundary_at as regular_start,
        lead(boundary_at) over (
            partition by subscription_id order by boundary_index
        ) as regular_end

    from boundaries

),

-- The first period runs from started_at, the last ends at ended_at; both are
-- partial and prorate the base fee by seconds against the regular period.
periods as (

    select
        calendars.subscription_id,
        calendars.customer_id,
        calendars.plan_id,
        greatest(regular_periods.regular_start, calendars.started_at)
            as period_start,
        least(
            regular_periods.regular_end,
            coalesce(calendars.ended_at, 'infinity'::timestamptz)
        ) as period_end,
        regular_periods.regular_start,
        regular_periods.regular_end

    from regular_periods

    inner join calendars
        on regular_periods.subscription_id = calendars.subscription_id

    where
        regular_periods.regular_end is not null
        and regular_periods.regular_end > calendars.started_at
        and regular_periods.regular_start
        < coalesce(calendars.ended_at, 'infinity'::timestamptz)
        and regular_periods.regular_start <= calendars.horizon_at

),

final as (

    select
        *,

        extract(epoch from period_end - period_start) as period_seconds,
        extract(epoch from regular_end - regular_start) as regular_seconds,
        {{ divide(
            'extract(epoch from period_end - period_start)',
            'extract(epoch from regular_end - regular_start)'
        ) }} as period_fraction,

        {{ is_closed('period_end') }} as is_closed

    from periods

)

select * from final
