{#
    Ephemeral: the views that read it then depend on the billing table only,
    so rebuilding staging (every run) cannot drop them (dbt replaces a view
    with `drop ... cascade`).
#}
{{ config(materialized='ephemeral') }}

with

source as (

    select * from {{ source('billing', 'quality_results') }}

),

renamed as (

    select
        ---------- ids
        run_label,
        gate,
        check_name,

        ---------- dimensions
        expectation,

        ---------- flags
        success,
        acknowledged,

        ---------- timestamps
        checked_at,

        ---------- metadata
        observed

    from source

)

select * from renamed
