with

source as (

    select * from {{ source('billing', 'credit_note_lines') }}

),

renamed as (

    select
        ---------- ids
        credit_note_id,
        line_no,
        invoice_id,
        invoice_line_no,

        ---------- dimensions
        kind,

        ---------- measures
        amount_minor

    from source

)

select * from renamed
