with

lines as (

    select * from {{ ref('fct_invoice_lines') }}

),

credit_notes as (

    select * from {{ ref('fct_credit_notes') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

-- SPEC §11: recognised revenue is the issued lines of invoices that are not
-- void, net of discounts (SPEC §12) and of credit notes (SPEC §13); tax is
-- owed to the jurisdiction, not revenue: exclusive tax lines are left out,
-- and the tax inclusive prices contain is taken off them. Credits are a way
-- of paying, not less revenue: shown beside it.
monthly as (

    select
        service_month,
        currency,
        plan_id,
        event_name,
        customer_id,
        customer_name,
        sum(amount_minor) filter (where kind not in ('credit', 'tax'))::bigint
            as gross_of_tax_minor,
        sum(amount_minor) filter (where kind = 'base_fee')::bigint
            as base_fee_minor,
        sum(amount_minor) filter (where kind = 'usage')::bigint
            as usage_minor,
        sum(amount_minor) filter (where kind = 'adjustment')::bigint
            as adjustments_minor,
        sum(amount_minor) filter (where kind = 'minimum_commitment')::bigint
            as minimum_commitment_minor,
        (-sum(amount_minor) filter (where kind = 'discount'))::bigint
            as discounts_minor,
        sum(amount_minor) filter (
            where kind = 'tax' and not adds_to_total
        )::bigint as inclusive_tax_minor,
        (-sum(amount_minor) filter (where kind = 'credit'))::bigint
            as credits_applied_minor

    from lines

    where invoice_status != 'void'

    group by 1, 2, 3, 4, 5, 6

),

-- What credit notes took off those lines, tax left out (it was never revenue).
credited as (

    select
        service_month,
        currency,
        plan_id,
        event_name,
        customer_id,
        sum(amount_minor)::bigint as credit_notes_minor

    from credit_notes

    where not is_tax and invoice_status != 'void'

    group by 1, 2, 3, 4, 5

),

final as (

    select
        ---------- dimensions
        monthly.service_month,
        monthly.currency,
        monthly.plan_id,
        monthly.event_name,
        monthly.customer_id,
        monthly.customer_name,

        ---------- measures
        revenues.revenue_minor,
        {{ to_major_units(
            'revenues.revenue_minor', 'currencies.minor_unit'
        ) }} as revenue_major,
        coalesce(monthly.base_fee_minor, 0) as base_fee_minor,
        coalesce(monthly.usage_minor, 0) as usage_minor,
        coalesce(monthly.adjustments_minor, 0) as adjustments_minor,
        coalesce(monthly.minimum_commitment_minor, 0)
            as minimum_commitment_minor,
        coalesce(monthly.discounts_minor, 0) as discounts_minor,
        coalesce(credited.credit_notes_minor, 0) as credit_notes_minor,
        coalesce(monthly.inclusive_tax_minor, 0) as inclusive_tax_minor,
        coalesce(monthly.credits_applied_minor, 0) as credits_applied_minor,
        {{ to_major_units(
            'coalesce(monthly.credits_applied_minor, 0)',
            'currencies.minor_unit'
        ) }} as credits_applied_major

    from monthly

    inner join currencies
        on monthly.currency = currencies.currency

    left join credited
        on
            monthly.service_month = credited.service_month
            and monthly.currency = credited.currency
            and monthly.plan_id = credited.plan_id
            and monthly.event_name is not distinct from credited.event_name
            and monthly.customer_id = credited.customer_id

    -- revenue = base fee + usage + adjustments + minimum − discounts
    -- − the tax inclusive prices contain − credit notes
    cross join
        lateral (
            select
                (
                    coalesce(monthly.gross_of_tax_minor, 0)
                    - coalesce(monthly.inclusive_tax_minor, 0)
                    - coalesce(credited.credit_notes_minor, 0)
                )::bigint as revenue_minor
        ) as revenues

)

select * from final
