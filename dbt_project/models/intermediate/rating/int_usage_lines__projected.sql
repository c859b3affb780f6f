{#
    The current periods' lines, run on to the period's end and rated
    (int_usage_lines__priced, basis 'projected').
#}
with

priced as (

    select * from {{ ref('int_usage_lines__priced') }}

    where line_basis = 'projected'

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
        count_events,
        total_value,
        billable_units,
        tier_breakdown,
        amount

    from priced

)

select * from final
