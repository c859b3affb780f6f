{#
    SPEC §5 rating of every line of int_usage_lines__charged, each basis,
    after SPEC §15's hard limit: the one place a quantity is rated.
    Ephemeral, and one pass over the lines (a line and its tiers are joined,
    then grouped back to the line): a caller that keeps one basis
    (line_basis = …) has PostgreSQL rate that basis's lines only.
#}
{{ config(materialized='ephemeral') }}

with

charged_usage as (

    select * from {{ ref('int_usage_lines__charged') }}

),

tiers as (

    select * from {{ ref('stg_app__plan_charge_tiers') }}

),

-- SPEC §15: a hard limit caps the quantity before anything else is rated,
-- q = min(q, usage_limit); the usage above it is kept as over_limit_units,
-- listed and never billed. least and greatest skip a null (no limit).
limited as (

    select
        *,

        case
            when limit_behavior = 'hard' then least(quantity, usage_limit)
            else quantity
        end as billed_quantity,

        case
            when limit_behavior = 'hard'
                then greatest(quantity - usage_limit, 0)
            else 0
        end as over_limit_units

    from charged_usage

),

-- SPEC §5: q' = max(q - included_units, 0); included units and tier bounds
-- are never prorated. percentage ignores included units.
billable as (

    select
        *,

        case
            when pricing_model = 'percentage' then billed_quantity
            else greatest(billed_quantity - included_units, 0)
        end as billable_units

    from limited

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
-- with q' <= up_to prices every unit (nothing when q' = 0). A line of
-- another pricing model keeps one row, without a tier.
tier_units as (

    select
        billable.*,
        tier_ranges.tier,
        tier_ranges.up_to,
        tier_ranges.unit_price as tier_unit_price,
        tier_ranges.flat_fee as tier_flat_fee,

        case billable.pricing_model
            when 'graduated'
                then greatest(
                    least(billable.billable_units, tier_ranges.upper_bound)
                    - tier_ranges.lower_bound,
                    0
                )
            when 'volume' then case
                when
                    billable.billable_units > tier_ranges.lower_bound
                    and billable.billable_units <= tier_ranges.upper_bound
                    then billable.billable_units
                else 0
            end
        end as tier_units

    from billable

    left join tier_ranges
        on
            billable.plan_id = tier_ranges.plan_id
            and billable.event_name = tier_ranges.event_name
            and billable.pricing_model in ('graduated', 'volume')

),

-- One row per line again: grouped by all of its columns.
rated as (

    select
        line_basis,
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
        quantity as usage_quantity,
        billed_quantity as quantity,
        over_limit_units,
        count_events,
        total_value,
        billable_units,

        jsonb_agg(
            jsonb_build_object(
                'tier', tier,
                'up_to', up_to,
                'units', tier_units,
                'unit_price', tier_unit_price,
                'flat_fee', tier_flat_fee
            )
            order by tier
        ) filter (where tier_units > 0) as tier_breakdown,

        case pricing_model
            when 'per_unit' then billable_units * unit_price
            when 'graduated'
                then coalesce(
                    sum(tier_units * tier_unit_price + tier_flat_fee)
                    filter (where tier_units > 0),
                    0
                )
            when 'volume'
                then coalesce(
                    sum(tier_units * tier_unit_price + tier_flat_fee)
                    filter (where tier_units > 0),
                    0
                )
            when 'package'
                then
                    ceil(billable_units / package_size) * unit_price
            -- percentage ignores included_units (SPEC §5)
            when 'percentage' then
                {{ divide('total_value * percentage_rate', '100') }}
                + fixed_fee_per_event * count_events
        end as amount

    from tier_units

    group by
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20

)

select * from rated
