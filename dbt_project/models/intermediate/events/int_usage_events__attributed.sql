{#
    A view (docs/incremental.md): validated events joined to their billing
    period when read, so attribution is always the current catalog's and
    nothing needs maintaining. NOTE: one SELECT, no CTEs. PostgreSQL merges a
    view without CTEs into the query that reads it, so a reader's filter (a
    subscription's events in a period) reaches the indexes of
    int_usage_events__validated; a view with CTEs is planned on its own,
    whole.
#}
{{ config(materialized='view') }}

-- SPEC §2/§3: a valid event belongs to its subscription's period containing
-- occurred_at; periods are half-open [period_start, period_end).
select
    events.raw_row_id,
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

from {{ ref('int_usage_events__validated') }} as events

inner join {{ ref('int_subscription_periods') }} as periods
    on
        events.subscription_id = periods.subscription_id
        and events.occurred_at >= periods.period_start
        and events.occurred_at < periods.period_end

where events.reject_reason is null
