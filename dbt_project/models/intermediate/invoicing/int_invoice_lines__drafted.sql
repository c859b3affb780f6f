with

closed_periods as (

    select * from {{ ref('int_subscription_periods') }}

    where is_closed

),

plans as (

    select * from {{ ref('stg_app__plans') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

usage_lines as (

    select * from {{ ref('int_usage_lines__rated') }}

),

-- SPEC §5: the base fee is its own line, omitted when the plan's fee is 0,
-- prorated by seconds in a partial first or last period.
base_fee_lines as (

    select
        closed_periods.subscription_id,
        closed_periods.period_start,
        'base_fee' as kind,
        null as event_name,
        plans.plan_name || ' base fee'
        || case
            when closed_periods.period_fraction < 1
                then ' (prorated)'
            else ''
        end as description,
        closed_periods.period_fraction as quantity,
        null::numeric as included_units,
        {{ prorate('plans.base_fee', 'closed_periods') }} as amount,
        jsonb_build_object(
            'base_fee', plans.base_fee,
            'period_fraction', closed_periods.period_fraction,
            'regular_start', closed_periods.regular_start,
            'regular_end', closed_periods.regular_end
        ) as detail

    from closed_periods

    inner join plans
        on closed_periods.plan_id = plans.plan_id

    where plans.base_fee != 0

),

charge_lines as (

    select
        usage_lines.subscription_id,
        usage_lines.period_start,
        'usage' as kind,
        usage_lines.event_name,
        usage_lines.display_name as description,
        usage_lines.quantity,
        usage_lines.included_units,
        usage_lines.amount,
        jsonb_strip_nulls(jsonb_build_object(
            'pricing_model', usage_lines.pricing_model,
            'billable_units', usage_lines.billable_units,
            'unit_price', usage_lines.unit_price,
            'package_size', usage_lines.package_size,
            'percentage_rate', usage_lines.percentage_rate,
            'fixed_fee_per_event', nullif(usage_lines.fixed_fee_per_event, 0),
            'tiers', usage_lines.tier_breakdown,
            'count_events', usage_lines.count_events,
            -- SPEC §15: a hard limit's line bills at most the limit and lists
            -- the usage above it, unbilled
            'usage_limit', case
                when usage_lines.limit_behavior = 'hard'
                    then usage_lines.usage_limit
            end,
            'over_limit_units', nullif(usage_lines.over_limit_units, 0)
        )) as detail

    from usage_lines

    inner join closed_periods
        on
            usage_lines.subscription_id = closed_periods.subscription_id
            and usage_lines.period_start = closed_periods.period_start

),

lines as (

    select * from base_fee_lines
    union all
    select * from charge_lines

),

-- The one rounding of SPEC: each line to the minor unit of the plan's
-- currency, half away from zero. Invoice totals are sums of these.
rounded as (

    select
        lines.*,
        plans.currency,
        {{ to_minor_units('lines.amount', 'currencies.minor_unit') }}
            as amount_minor

    from lines

    inner join closed_periods
        on
            lines.subscription_id = closed_periods.subscription_id
            and lines.period_start = closed_periods.period_start

    inner join plans
        on closed_periods.plan_id = plans.plan_id

    inner join currencies
        on plans.currency = currencies.currency

),

final as (

    select
        {{ invoice_id('subscription_id', 'period_start') }} as invoice_id,
        row_number() over (
            partition by subscription_id, period_start
            order by kind = 'usage', event_name
        )::int as line_no,
        subscription_id,
        period_start,
        kind,
        event_name,
        description,
        quantity,
        included_units,
        amount,
        currency,
        amount_minor,
        detail

    from rounded

)

select * from final
