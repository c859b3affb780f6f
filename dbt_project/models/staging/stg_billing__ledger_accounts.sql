with

source as (

    select * from {{ source('billing', 'ledger_accounts') }}

),

renamed as (

    select
        ---------- ids
        account,

        ---------- dimensions
        account_type,
        description as account_description

    from source

)

select * from renamed
