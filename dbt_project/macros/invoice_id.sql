{#
    An invoice's id is derived from what it bills (subscription × period
    start), so every re-run drafts the same id and issuing it twice is
    impossible by construction.
#}
{% macro invoice_id(subscription_id, period_start) -%}
    'in_' || left(md5(
        {{ subscription_id }} || '/'
        || to_char({{ period_start }} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
    ), 24)
{%- endmacro %}
