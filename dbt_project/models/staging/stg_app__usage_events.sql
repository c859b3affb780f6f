with

source as (

    select * from {{ source('app', 'usage_events') }}

),

renamed as (

    select
        ---------- ids
        {{ blank_as_null('reference') }} as reference,
        {{ blank_as_null('customer_id') }} as customer_id,

        ---------- dimensions
        {{ blank_as_null('event_name') }} as event_name,
        {{ blank_as_null('action') }} as action,
        properties,

        ---------- measures
        value,

        ---------- timestamps
        occurred_at,
        ingested_at,

        ---------- metadata
        -- numbered by raw in the order rows are written, a file's rows in
        -- file order: the last tie-breaker of "first ingested wins" when two
        -- rows share ingested_at, and the key the event models keep rows by
        raw_row_id

    from source

)

select * from renamed
