{#
    Ephemeral: the views that read it then depend on the billing table only,
    so rebuilding staging (every run) cannot drop them (dbt replaces a view
    with `drop ... cascade`).
#}
{{ config(materialized='ephemeral') }}

with

source as (

    select * from {{ source('billing', 'webhook_delivery_attempts') }}

),

renamed as (

    select
        ---------- ids
        event_id,
        endpoint_id,
        attempt_no,

        ---------- dimensions
        response_status,
        error,

        ---------- measures
        latency_ms,

        ---------- flags
        -- SPEC §8: a 2xx answer delivers; anything else (or no answer) is
        -- retried (AttemptOutcome.succeeded in webhooks/deliver.py)
        coalesce(response_status between 200 and 299, false) as is_successful,

        ---------- timestamps
        attempted_at

    from source

)

select * from renamed
