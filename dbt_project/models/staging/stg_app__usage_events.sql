with

source as (

    -- NOTE: ctid is the row's physical position. raw.usage_events is
    -- append-only, so it orders rows of one load in file order: the last
    -- tie-breaker of "first ingested wins" when two rows share ingested_at.
    select
        ctid as raw_row_position,
        *
    from {{ source('app', 'usage_events') }}

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
        raw_row_position

    from source

)

select * from renamed
