{#
    The columns of a rated usage line (int_usage_lines__priced), in the order
    the rating models show them. `count_events` is the expression for that
    column: a projection scales it, the other bases keep it whole (bigint).
#}
{% macro priced_line_columns(count_events='count_events::bigint') -%}
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
    usage_limit,
    limit_behavior,
    display_name,
    usage_quantity,
    quantity,
    over_limit_units,
    {{ count_events }} as count_events,
    total_value,
    billable_units,
    tier_breakdown,
    amount
{%- endmacro %}
