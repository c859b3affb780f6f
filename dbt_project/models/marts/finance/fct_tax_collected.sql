with

lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

    where kind = 'tax'

),

-- The tax credit notes took back, per invoice tax line (SPEC §13: pro rata).
credited as (

    select
        invoice_id,
        invoice_line_no,
        sum(amount_minor)::bigint as amount_minor

    from {{ ref('stg_billing__credit_note_lines') }}

    where kind = 'tax'

    group by 1, 2

),

invoices as (

    select * from {{ ref('fct_invoices') }}

    where status != 'void'

),

currencies as (

    select * from {{ ref('currencies') }}

),

-- SPEC §12 step 4: the tax lines say the rate they were computed at, as it
-- was at issue (detail), so a rate changed later does not rewrite history.
taxed as (

    select
        lines.detail ->> 'jurisdiction' as jurisdiction,
        invoices.currency,
        invoices.service_month,
        lines.detail ->> 'tax_rate_id' as tax_rate_id,
        lines.detail ->> 'display_name' as display_name,
        (lines.detail ->> 'percentage')::numeric as percentage,
        (lines.detail ->> 'inclusive')::boolean as inclusive,
        (lines.detail ->> 'taxable_minor')::bigint as taxable_minor,
        lines.amount_minor as invoiced_minor,
        coalesce(credited.amount_minor, 0) as credited_minor,
        lines.invoice_id

    from lines

    inner join invoices
        on lines.invoice_id = invoices.invoice_id

    left join credited
        on
            lines.invoice_id = credited.invoice_id
            and lines.line_no = credited.invoice_line_no

),

final as (

    select
        ---------- dimensions
        taxed.jurisdiction,
        taxed.currency,
        taxed.service_month,
        taxed.tax_rate_id,
        max(taxed.display_name) as display_name,
        max(taxed.percentage) as percentage,
        bool_or(taxed.inclusive) as inclusive,

        ---------- measures
        count(distinct taxed.invoice_id) as count_invoices,
        sum(taxed.taxable_minor)::bigint as taxable_minor,
        sum(taxed.invoiced_minor)::bigint as tax_invoiced_minor,
        sum(taxed.credited_minor)::bigint as tax_credited_minor,
        sum(taxed.invoiced_minor - taxed.credited_minor)::bigint as tax_minor,
        {{ to_major_units(
            'sum(taxed.invoiced_minor - taxed.credited_minor)',
            'max(currencies.minor_unit)'
        ) }} as tax_major

    from taxed

    inner join currencies
        on taxed.currency = currencies.currency

    group by 1, 2, 3, 4

)

select * from final
