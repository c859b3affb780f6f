with

payments as (

    select * from {{ ref('fct_payments') }}

),

monthly as (

    select
        attempt_month,
        currency,
        count(*) as count_attempts,
        count(*) filter (where outcome = 'succeeded') as count_succeeded,
        count(*) filter (where outcome = 'failed') as count_failed,
        count(*) filter (where outcome = 'pending') as count_pending,
        count(*) filter (where is_first_attempt) as count_first_attempts,
        count(*) filter (
            where is_first_attempt and outcome = 'succeeded'
        ) as count_first_attempts_succeeded

    from payments

    group by 1, 2

),

-- SPEC §11: succeeded ÷ all attempts of the month, and the same over
-- first attempts only (null in a month with none)
final as (

    select
        *,
        count_succeeded::numeric / count_attempts as success_rate,
        count_first_attempts_succeeded::numeric
        / nullif(count_first_attempts, 0) as first_attempt_success_rate

    from monthly

)

select * from final
