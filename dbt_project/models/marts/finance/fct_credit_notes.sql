with

credit_note_lines as (

    select * from {{ ref('stg_billing__credit_note_lines') }}

),

credit_notes as (

    select * from {{ ref('stg_billing__credit_notes') }}

),

refunds as (

    select * from {{ ref('stg_billing__refunds') }}

),

invoice_lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

),

invoices as (

    select * from {{ ref('fct_invoices') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

-- One row per credited invoice line, with the credited invoice's service
-- month, plan and meter: recognised revenue nets the lines that are not tax
-- (SPEC §11).
final as (

    select
        ---------- ids
        credit_note_lines.credit_note_id,
        credit_note_lines.line_no,
        credit_notes.credit_note_number,
        credit_note_lines.invoice_id,
        invoices.invoice_number,
        credit_note_lines.invoice_line_no,
        credit_notes.customer_id,
        invoices.customer_name,
        invoices.plan_id,
        invoice_lines.event_name,
        refunds.refund_id,

        ---------- dimensions
        credit_notes.method,
        credit_notes.reason,
        invoices.status as invoice_status,
        credit_note_lines.kind,
        credit_note_lines.kind = 'tax' as is_tax,
        credit_notes.currency,
        refunds.outcome as refund_outcome,
        invoices.service_month,

        ---------- measures
        credit_note_lines.amount_minor,
        {{ to_major_units(
            'credit_note_lines.amount_minor', 'currencies.minor_unit'
        ) }} as amount_major,

        ---------- timestamps
        credit_notes.created_at

    from credit_note_lines

    inner join credit_notes
        on credit_note_lines.credit_note_id = credit_notes.credit_note_id

    inner join invoice_lines
        on
            credit_note_lines.invoice_id = invoice_lines.invoice_id
            and credit_note_lines.invoice_line_no = invoice_lines.line_no

    inner join invoices
        on credit_note_lines.invoice_id = invoices.invoice_id

    inner join currencies
        on credit_notes.currency = currencies.currency

    left join refunds
        on credit_note_lines.credit_note_id = refunds.credit_note_id

)

select * from final
