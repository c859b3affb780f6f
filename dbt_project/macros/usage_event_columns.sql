{#
    An event's own columns (SPEC §1), in the order the event models show
    them: the ledger ranks them, the deduped events, the duplicates and the
    rejects list them. One list, so that a new event column reaches all of
    them.
#}
{% macro usage_event_columns() -%}
    {{- [
        'reference', 'customer_id', 'event_name', 'value', 'properties',
        'action', 'occurred_at', 'ingested_at',
    ] | join(', ') -}}
{%- endmacro %}
