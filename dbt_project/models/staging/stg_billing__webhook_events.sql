{#
    Ephemeral: the views that read it then depend on the billing table only,
    so rebuilding staging (every run) cannot drop them (dbt replaces a view
    with `drop ... cascade`).
#}
{{ config(materialized='ephemeral') }}

with

source as (

    select * from {{ source('billing', 'webhook_events') }}

),

renamed as (

    select
        ---------- ids
        event_id,
        subject_id,

        ---------- dimensions
        event_type,

        ---------- timestamps
        created_at,
        fanned_out_at,

        ---------- metadata
        data

    from source

)

select * from renamed
