with

events as (

    select * from {{ ref('int_usage_events__validated') }}

    where reject_reason is null

),

periods as (

    select * from {{ ref('int_subscription_periods') }}

),

-- SPEC §2/§3: a valid event belongs to its subscription's period containing
-- occurred_at; periods are half-open [period_start, period_end).
attributed as (

    select
        events.reference,
        events.customer_id,
        events.subscription_id,
        events.plan_id,
        events.event_name,
        events.aggregation,
        events.action,
        events.value,
        events.properties,
        events.occurred_at,
        events.ingested_at,
        periods.period_start,
        periods.period_end

    from events

    inner join periods
        on events.subscription_id = periods.subscription_id
        and events.occurred_at >= periods.period_start
        and events.occurred_at < periods.period_end

)

select * from attributed
