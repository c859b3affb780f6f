-- SPEC §14: the books balance. In every currency, each month's debits equal
-- its credits, so every month-end's balances sum to zero. Returns the months
-- where they do not.
with

trial_balance as (

    select * from {{ ref('fct_trial_balance') }}

),

totals as (

    select
        posted_month,
        currency,
        sum(debits_minor) as debits_minor,
        sum(credits_minor) as credits_minor

    from trial_balance

    group by 1, 2

)

select * from totals

where debits_minor != credits_minor
