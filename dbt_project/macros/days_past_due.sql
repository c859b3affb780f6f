{#
    Whole days from an invoice's due date to `as_of_date`, both dates in the
    customer's timezone; 0 until it is due (SPEC §11 AR aging). The due date
    is the local date of due_at (local midnight of invoice_date + net terms):
    due that day counts 0, the day after 1.
#}
{% macro days_past_due(due_at, as_of_date, timezone) -%}
    greatest(
        ({{ as_of_date }}) - (({{ due_at }}) at time zone ({{ timezone }}))::date,
        0
    )
{%- endmacro %}
