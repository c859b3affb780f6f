with

movements as (

    select * from {{ ref('fct_mrr_movements') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

-- Logo churn rate (SPEC §11): customers churned in M ÷ customers with MRR > 0
-- at the end of M - 1; none when there were none.
rates as (

    select
        month,
        currency,
        customers,
        opening_customers,
        churned_customers,
        closing_mrr_minor as mrr_minor,
        closing_mrr_major as mrr_major,
        case
            when opening_customers > 0
                then {{ divide('churned_customers', 'opening_customers') }}
        end as logo_churn_rate,
        case
            when
                customers > 0
                then {{ divide('closing_mrr_major', 'customers') }}
        end as arpa

    from movements

),

-- The average of the rates of M and the two months before it that have one.
averaged as (

    select
        *,
        avg(logo_churn_rate) over (
            partition by currency
            order by month
            range between interval '2 months' preceding and current row
        ) as logo_churn_rate_3m_average

    from rates

),

-- ARPA and LTV are exact until rounded once, each, to the minor unit.
rounded as (

    select
        averaged.*,
        currencies.minor_unit,
        {{ to_minor_units('averaged.arpa', 'currencies.minor_unit') }}
            as arpa_minor,
        {{ to_minor_units(
            divide(
                'averaged.arpa', 'nullif(averaged.logo_churn_rate_3m_average, 0)'
            ),
            'currencies.minor_unit'
        ) }} as ltv_minor

    from averaged

    inner join currencies
        on averaged.currency = currencies.currency

),

final as (

    select
        month,
        currency,
        customers,
        opening_customers,
        churned_customers,
        logo_churn_rate,
        logo_churn_rate_3m_average,
        mrr_minor,
        mrr_major,
        arpa_minor,
        {{ to_major_units('arpa_minor', 'minor_unit') }} as arpa_major,
        ltv_minor,
        {{ to_major_units('ltv_minor', 'minor_unit') }} as ltv_major

    from rounded

)

select * from final
