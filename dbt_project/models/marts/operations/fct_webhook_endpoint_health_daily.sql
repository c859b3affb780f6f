with

attempts as (

    select * from {{ ref('stg_billing__webhook_delivery_attempts') }}

),

final as (

    select
        endpoint_id,
        (attempted_at at time zone 'UTC')::date as attempt_date,
        count(*) as count_attempts,
        count(*) filter (where is_successful) as count_successful_attempts,
        count(*) filter (where is_successful)::numeric
        / count(*) as attempt_success_rate,
        percentile_cont(0.5) within group (order by latency_ms)
            as latency_p50_ms,
        percentile_cont(0.95) within group (order by latency_ms)
            as latency_p95_ms,
        max(latency_ms) as latency_max_ms

    from attempts

    group by 1, 2

)

select * from final
