{#
    Ephemeral: the views that read it then depend on the billing table only,
    so rebuilding staging (every run) cannot drop them (dbt replaces a view
    with `drop ... cascade`).
#}
{{ config(materialized='ephemeral') }}

with

source as (

    select * from {{ source('billing', 'webhook_deliveries') }}

),

renamed as (

    select
        ---------- ids
        event_id,
        endpoint_id,

        ---------- dimensions
        status,
        last_error,

        ---------- measures
        attempt_count,
        attempts_before_replay,

        ---------- timestamps
        next_attempt_at,
        delivered_at

    from source

)

select * from renamed
