with

rejected as (

    select * from {{ ref('fct_rejected_usage_events') }}

),

duplicates as (

    select * from {{ ref('fct_usage_event_duplicates') }}

),

-- Every raw row that is not billed is either rejected (for exactly one
-- reason) or a dropped duplicate: one list of them, each with its reason.
unbilled as (

    select
        ingested_at,
        customer_id,
        'rejected' as outcome,
        reject_reason as reason

    from rejected

    union all

    select
        ingested_at,
        customer_id,
        'duplicate' as outcome,
        case
            when is_conflicting then 'conflicting_duplicate' else 'duplicate'
        end as reason

    from duplicates

),

final as (

    select
        (ingested_at at time zone 'UTC')::date as ingested_date,
        outcome,
        reason,
        count(*) as count_events,
        count(distinct customer_id) as count_customers

    from unbilled

    group by 1, 2, 3

)

select * from final
