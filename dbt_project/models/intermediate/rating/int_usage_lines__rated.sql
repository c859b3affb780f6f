with

periods as (

    select * from {{ ref('int_subscription_periods') }}

),

charges as (

    select * from {{ ref('stg_app__plan_charges') }}

),

tiers as (

    select * from {{ ref('stg_app__plan_charge_tiers') }}

),

meters as (

    select * from {{ ref('stg_app__meters') }}

),

usage as (

    select * from {{ ref('int_meter_usage__aggregated') }}

),

-- One line per period × plan charge, whether or not there was usage
-- (empty period: quantity 0, SPEC §4).
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
        coalesce(usage.quantity, 0) as quantity,
        coalesce(usage.count_events, 0) as count_events,
        coalesce(usage.total_value, 0) as total_value

    from periods

    inner join charges
        on periods.plan_id = charges.plan_id

    inner join meters
        on charges.event_name = meters.event_name

    left join usage
        on periods.subscription_id = usage.subscription_id
        and periods.period_start = usage.period_start
        and charges.event_name = usage.event_name

),

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
                billable.total_value * billable.percentage_rate / 100
                + billable.fixed_fee_per_event * billable.count_events
        end as amount

    from billable

    left join tiered
        on billable.subscription_id = tiered.subscription_id
        and billable.period_start = tiered.period_start
        and billable.event_name = tiered.event_name

)

select * from rated
