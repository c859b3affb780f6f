{#
    The signing secrets (secret, previous_secret) are never selected: no model
    downstream can expose them. Ephemeral: the views that read it then depend
    on the raw table only, so rebuilding staging (every run) cannot drop them
    (dbt replaces a view with `drop ... cascade`).
#}
{{ config(materialized='ephemeral') }}

with

source as (

    select * from {{ source('app', 'webhook_endpoints') }}

),

renamed as (

    select
        ---------- ids
        endpoint_id,

        ---------- dimensions
        -- a password in the URL's user-info is a secret too: shown as `…`,
        -- as `billing webhooks endpoints` shows it
        regexp_replace(url, '^([^:/]+://[^:/@]*):[^@/]*@', '\1:…@') as url,
        event_types,

        ---------- flags
        enabled

    from source

)

select * from renamed
