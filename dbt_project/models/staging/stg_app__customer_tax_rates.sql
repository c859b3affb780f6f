with

source as (

    select * from {{ source('app', 'customers') }}

),

named as (

    select
        ---------- ids
        source.customer_id,
        rates.tax_rate_id,

        ---------- dimensions
        rates.rate_no::int as rate_no

    from source

    cross join
        lateral unnest(source.tax_rate_ids)
        with ordinality as rates (tax_rate_id, rate_no)

)

select * from named
