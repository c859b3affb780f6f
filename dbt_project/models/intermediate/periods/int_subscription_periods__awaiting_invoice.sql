with

periods as (

    select * from {{ ref('int_subscription_periods') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

-- SPEC §6: one invoice per subscription per period, ever; a period with any
-- invoice, void included, is never drafted again.
final as (

    select periods.*

    from periods

    left join invoices
        on
            periods.subscription_id = invoices.subscription_id
            and periods.period_start = invoices.period_start

    where invoices.invoice_id is null

)

select * from final
