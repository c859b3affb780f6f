{#
    NOTE: one SELECT, no CTEs. PostgreSQL merges a view without CTEs into the
    query that reads it, so a reader's filter (the incremental validation's
    "these raw rows") reaches the ledger's indexes; a view with CTEs is
    planned on its own, whole.
#}
{{ config(materialized='view') }}

-- SPEC §2: the first ingested row of each reference (rank 1 in the ledger).
select
    {{ usage_event_columns() }},
    raw_row_id

from {{ ref('int_usage_events__ranked') }}

where reference_rank = 1
