{#
    Every period's lines, rated (int_usage_lines__priced, basis 'period').
    count_events is whole: only a projection scales it.
#}
with

priced as (

    select * from {{ ref('int_usage_lines__priced') }}

    where line_basis = 'period'

),

final as (

    select
        subscription_id,
        period_start,
        plan_id,
        event_name,
        pricing_model,
        unit_price,
        included_units,
        package_size,
        percentage_rate,
        fixed_fee_per_event,
        display_name,
        quantity,
        count_events::bigint as count_events,
        total_value,
        billable_units,
        tier_breakdown,
        amount

    from priced

)

select * from final
