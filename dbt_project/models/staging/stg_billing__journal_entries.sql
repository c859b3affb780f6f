with

source as (

    select * from {{ source('billing', 'journal_entries') }}

),

renamed as (

    select
        ---------- ids
        entry_id,
        invoice_id,
        customer_id,

        ---------- dimensions
        kind as entry_kind,
        currency,
        description,

        ---------- timestamps
        posted_at

    from source

)

select * from renamed
