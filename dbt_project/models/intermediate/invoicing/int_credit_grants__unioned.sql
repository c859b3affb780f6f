{#
    A view, not a table: issuing reads grant balances from it after the
    build, and must see the grants it writes itself in the same transaction
    (a carried credit pays the customer's next invoice of the same run).
#}
{{ config(materialized='view') }}

with

application_grants as (

    select * from {{ ref('stg_app__credit_grants') }}

),

system_grants as (

    select * from {{ ref('stg_billing__credit_grants') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

unioned as (

    select
        grant_id,
        'application' as granted_by,
        cast(null as text) as origin_invoice_id,
        customer_id,
        currency,
        amount,
        granted_at,
        expires_at

    from application_grants

    union all

    select
        grant_id,
        'system' as granted_by,
        origin_invoice_id,
        customer_id,
        currency,
        amount,
        granted_at,
        expires_at

    from system_grants

),

-- A grant's amount in minor units: rounded here once (SPEC preamble), so
-- balances and credits are exact integers from then on.
final as (

    select
        unioned.*,
        {{ to_minor_units('unioned.amount', 'currencies.minor_unit') }}
            as amount_minor

    from unioned

    inner join currencies
        on unioned.currency = currencies.currency

)

select * from final
