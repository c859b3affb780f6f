with

mrr as (

    select * from {{ ref('fct_mrr') }}

),

-- Sums of bigints are numeric: minor units are cast back to bigint.
-- Opening is summed from each row's previous month, closing from its month:
-- the data tests check that they chain from month to month.
movements as (

    select
        month,
        currency,

        sum(previous_mrr_minor)::bigint as opening_mrr_minor,
        sum(new_mrr_minor)::bigint as new_mrr_minor,
        sum(reactivation_mrr_minor)::bigint as reactivation_mrr_minor,
        sum(expansion_mrr_minor)::bigint as expansion_mrr_minor,
        sum(contraction_mrr_minor)::bigint as contraction_mrr_minor,
        sum(churn_mrr_minor)::bigint as churn_mrr_minor,
        sum(mrr_minor)::bigint as closing_mrr_minor,

        sum(previous_mrr_major) as opening_mrr_major,
        sum(new_mrr_major) as new_mrr_major,
        sum(reactivation_mrr_major) as reactivation_mrr_major,
        sum(expansion_mrr_major) as expansion_mrr_major,
        sum(contraction_mrr_major) as contraction_mrr_major,
        sum(churn_mrr_major) as churn_mrr_major,
        sum(mrr_major) as closing_mrr_major,

        count(*) filter (where previous_mrr_minor > 0) as opening_customers,
        count(*) filter (where mrr_movement = 'new') as new_customers,
        count(*) filter (
            where mrr_movement = 'reactivation'
        ) as reactivated_customers,
        count(*) filter (where mrr_movement = 'churn') as churned_customers,
        count(*) filter (where mrr_minor > 0) as customers

    from mrr

    group by 1, 2

)

select * from movements
