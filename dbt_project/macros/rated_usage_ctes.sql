{#
    SPEC §5 rating, shared by the lines of a period (int_usage_lines__rated)
    and its run-rate projection (int_usage_lines__projected). Emits CTEs
    `billable` … `rated` over the caller's CTE `charged_usage` (one row per
    subscription × period × plan charge with its quantity, count_events and
    total_value) and `tiers` (stg_app__plan_charge_tiers).
#}
{% macro rated_usage_ctes() %}

-- SPEC §5: q' = max(q - included_units, 0); included units and tier bounds
-- are never prorated. percentage ignores included units.
billable as (

    select
        *,

        case
            when pricing_model = 'percentage' then quantity
            else greatest(quantity - included_units, 0)
        end as billable_units

    from charged_usage

),

-- Tiers in order of up_to, each spanning (previous up_to, up_to].
tier_ranges as (

    select
        plan_id,
        event_name,
        tier,
        coalesce(
            lag(up_to) over (
                partition by plan_id, event_name order by up_to nulls last
            ),
            0
        ) as lower_bound,
        coalesce(up_to, 'infinity'::numeric) as upper_bound,
        up_to,
        unit_price,
        flat_fee

    from tiers

),

-- graduated: each tier prices its own slice of q'; volume: the first tier
-- with q' <= up_to prices every unit (nothing when q' = 0).
tier_amounts as (

    select
        billable.subscription_id,
        billable.period_start,
        billable.event_name,
        tier_ranges.tier,
        tier_ranges.up_to,
        tier_ranges.unit_price,
        tier_ranges.flat_fee,

        case billable.pricing_model
            when 'graduated' then greatest(
                least(billable.billable_units, tier_ranges.upper_bound)
                    - tier_ranges.lower_bound,
                0
            )
            when 'volume' then case
                when billable.billable_units > tier_ranges.lower_bound
                    and billable.billable_units <= tier_ranges.upper_bound
                    then billable.billable_units
                else 0
            end
        end as tier_units

    from billable

    inner join tier_ranges
        on billable.plan_id = tier_ranges.plan_id
        and billable.event_name = tier_ranges.event_name

    where billable.pricing_model in ('graduated', 'volume')

),

tiered as (

    select
        subscription_id,
        period_start,
        event_name,
        sum(tier_units * unit_price + flat_fee) filter (where tier_units > 0)
            as amount,
        jsonb_agg(
            jsonb_build_object(
                'tier', tier,
                'up_to', up_to,
                'units', tier_units,
                'unit_price', unit_price,
                'flat_fee', flat_fee
            )
            order by tier
        ) filter (where tier_units > 0) as tier_breakdown

    from tier_amounts

    group by 1, 2, 3

),

rated as (

    select
        billable.*,
        tiered.tier_breakdown,

        case billable.pricing_model
            when 'per_unit' then billable.billable_units * billable.unit_price
            when 'graduated' then coalesce(tiered.amount, 0)
            when 'volume' then coalesce(tiered.amount, 0)
            when 'package' then
                ceil(billable.billable_units / billable.package_size)
                * billable.unit_price
            -- percentage ignores included_units (SPEC §5)
            when 'percentage' then
                {{ divide('billable.total_value * billable.percentage_rate', '100') }}
                + billable.fixed_fee_per_event * billable.count_events
        end as amount

    from billable

    left join tiered
        on billable.subscription_id = tiered.subscription_id
        and billable.period_start = tiered.period_start
        and billable.event_name = tiered.event_name

)

{% endmacro %}
