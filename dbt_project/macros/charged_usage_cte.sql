{#
    The `charged_usage` CTE that rated_usage_ctes() rates: one row per period
    (the caller's CTE `periods`) × plan charge, with its usage, or none (an
    empty period: quantity 0, SPEC §4). Reads the caller's CTEs `charges`,
    `meters` and `usage`.

    run_rate=true projects to the period's end (int_usage_lines__projected):
    usage that accumulates over time (counts, sums, hours on) is scaled by
    period length / time elapsed (at least an hour); levels (max, min,
    averages, last values, distinct counts) are assumed to hold.
#}
{% macro charged_usage_cte(run_rate=false) %}

charged_usage as (

    select
        periods.subscription_id,
        periods.period_start,
        charges.plan_id,
        charges.event_name,
        charges.pricing_model,
        charges.unit_price,
        charges.included_units,
        charges.package_size,
        charges.percentage_rate,
        charges.fixed_fee_per_event,
        meters.display_name,

        {% if run_rate %}
        coalesce(usage.quantity, 0) * case
            when meters.aggregation in ('count', 'sum', 'markup_percentage', 'time_duration')
                then run_rate.factor
            else 1
        end as quantity,

        coalesce(usage.count_events, 0) * run_rate.factor as count_events,
        coalesce(usage.total_value, 0) * run_rate.factor as total_value
        {% else %}
        coalesce(usage.quantity, 0) as quantity,
        coalesce(usage.count_events, 0) as count_events,
        coalesce(usage.total_value, 0) as total_value
        {% endif %}

    from periods

    {% if run_rate %}
    cross join lateral (
        select
            {{ divide(
                'extract(epoch from periods.period_end - periods.period_start)',
                'greatest(extract(epoch from ' ~ as_of() ~ ' - periods.period_start), 3600)'
            ) }} as factor
    ) as run_rate
    {% endif %}

    inner join charges
        on periods.plan_id = charges.plan_id

    inner join meters
        on charges.event_name = meters.event_name

    left join usage
        on periods.subscription_id = usage.subscription_id
        and periods.period_start = usage.period_start
        and charges.event_name = usage.event_name

)

{% endmacro %}
