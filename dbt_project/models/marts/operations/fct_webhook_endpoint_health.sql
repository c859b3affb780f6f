with

endpoints as (

    select * from {{ ref('stg_app__webhook_endpoints') }}

),

deliveries as (

    select * from {{ ref('stg_billing__webhook_deliveries') }}

),

attempts as (

    select * from {{ ref('stg_billing__webhook_delivery_attempts') }}

),

delivery_counts as (

    select
        endpoint_id,
        count(*) as count_deliveries,
        count(*) filter (where status = 'delivered') as count_delivered,
        count(*) filter (where status = 'pending') as count_pending,
        count(*) filter (
            where status = 'dead_lettered'
        ) as count_dead_lettered

    from deliveries

    group by 1

),

attempt_stats as (

    select
        endpoint_id,
        count(*) as count_attempts,
        count(*) filter (where is_successful) as count_successful_attempts,
        percentile_cont(0.5) within group (order by latency_ms)
            as latency_p50_ms,
        percentile_cont(0.95) within group (order by latency_ms)
            as latency_p95_ms,
        max(latency_ms) as latency_max_ms,
        max(attempted_at) filter (where is_successful) as last_success_at

    from attempts

    group by 1

),

failures as (

    select
        endpoint_id,
        attempted_at,
        response_status,
        error,
        row_number() over (
            partition by endpoint_id
            order by attempted_at desc, event_id desc, attempt_no desc
        ) as recency

    from attempts

    where not is_successful

),

last_failures as (

    select
        endpoint_id,
        attempted_at as last_failure_at,
        response_status as last_failure_status,
        error as last_failure_error

    from failures

    where recency = 1

),

final as (

    select
        endpoints.endpoint_id,
        endpoints.url,
        endpoints.event_types,
        endpoints.enabled,
        coalesce(delivery_counts.count_deliveries, 0) as count_deliveries,
        coalesce(delivery_counts.count_delivered, 0) as count_delivered,
        coalesce(delivery_counts.count_pending, 0) as count_pending,
        coalesce(delivery_counts.count_dead_lettered, 0)
            as count_dead_lettered,
        coalesce(attempt_stats.count_attempts, 0) as count_attempts,
        coalesce(attempt_stats.count_successful_attempts, 0)
            as count_successful_attempts,
        attempt_stats.count_successful_attempts::numeric
        / nullif(attempt_stats.count_attempts, 0) as attempt_success_rate,
        attempt_stats.latency_p50_ms,
        attempt_stats.latency_p95_ms,
        attempt_stats.latency_max_ms,
        attempt_stats.last_success_at,
        last_failures.last_failure_at,
        last_failures.last_failure_status,
        last_failures.last_failure_error

    from endpoints

    left join delivery_counts
        on endpoints.endpoint_id = delivery_counts.endpoint_id

    left join attempt_stats
        on endpoints.endpoint_id = attempt_stats.endpoint_id

    left join last_failures
        on endpoints.endpoint_id = last_failures.endpoint_id

)

select * from final
