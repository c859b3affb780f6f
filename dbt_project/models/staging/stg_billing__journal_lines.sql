with

source as (

    select * from {{ source('billing', 'journal_lines') }}

),

renamed as (

    select
        ---------- ids
        entry_id,
        line_no,

        ---------- dimensions
        account,

        ---------- measures
        debit_minor,
        credit_minor

    from source

)

select * from renamed
