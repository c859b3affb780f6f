with

source as (

    select * from {{ source('billing', 'invoice_lines') }}

),

renamed as (

    select
        ---------- ids
        invoice_id,
        line_no,
        -- adjustment lines name the invoice they correct
        detail ->> 'original_invoice_id' as adjusted_invoice_id,

        ---------- dimensions
        kind,
        event_name,
        description,

        ---------- measures
        quantity,
        included_units,
        amount_minor,
        adds_to_total,

        ---------- metadata
        detail

    from source

)

select * from renamed
