with

periods as (

    select * from {{ ref('int_subscription_periods') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

plans as (

    select * from {{ ref('stg_app__plans') }}

),

-- SPEC §6: one invoice per subscription per period, ever; a period with any
-- invoice, void included, is never drafted again. SPEC §16: Stripe invoices
-- the periods of plans invoiced_by stripe; the warehouse never does.
final as (

    select periods.*

    from periods

    inner join plans
        on periods.plan_id = plans.plan_id

    left join invoices
        on
            periods.subscription_id = invoices.subscription_id
            and periods.period_start = invoices.period_start

    where
        invoices.invoice_id is null
        and plans.invoiced_by = 'warehouse'

)

select * from final
