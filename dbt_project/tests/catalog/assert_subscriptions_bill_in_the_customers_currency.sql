{# An invoice is in the plan's currency; the customer must pay in it. #}

with

subscriptions as (

    select * from {{ ref('stg_app__subscriptions') }}

),

customers as (

    select * from {{ ref('stg_app__customers') }}

),

plans as (

    select * from {{ ref('stg_app__plans') }}

)

select
    subscriptions.subscription_id,
    customers.currency as customer_currency,
    plans.currency as plan_currency

from subscriptions

inner join customers
    on subscriptions.customer_id = customers.customer_id

inner join plans
    on subscriptions.plan_id = plans.plan_id

where customers.currency != plans.currency
