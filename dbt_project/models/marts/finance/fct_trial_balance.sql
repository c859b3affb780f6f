with

general_ledger as (

    select * from {{ ref('fct_general_ledger') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

monthly as (

    select
        posted_month,
        account,
        account_type,
        currency,
        sum(debit_minor)::bigint as debits_minor,
        sum(credit_minor)::bigint as credits_minor

    from general_ledger

    group by 1, 2, 3, 4

),

-- The balance at the end of each month: every movement of the account up to
-- and including it, debit positive.
balances as (

    select
        *,
        sum(debits_minor - credits_minor) over (
            partition by account, currency order by posted_month
        )::bigint as balance_minor

    from monthly

),

final as (

    select
        ---------- ids
        balances.posted_month,
        balances.account,
        balances.currency,

        ---------- dimensions
        balances.account_type,

        ---------- measures
        balances.debits_minor,
        {{ to_major_units(
            'balances.debits_minor', 'currencies.minor_unit'
        ) }} as debits_major,
        balances.credits_minor,
        {{ to_major_units(
            'balances.credits_minor', 'currencies.minor_unit'
        ) }} as credits_major,
        balances.balance_minor,
        {{ to_major_units(
            'balances.balance_minor', 'currencies.minor_unit'
        ) }} as balance_major

    from balances

    inner join currencies
        on balances.currency = currencies.currency

)

select * from final
