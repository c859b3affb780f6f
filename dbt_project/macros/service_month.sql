{#
    The service month of a period (SPEC §11): the first day of the calendar
    month, in the customer's timezone, of the period's start. One home for
    "revenue by month" and MRR months.
#}
{% macro service_month(period_start, timezone) -%}
    date_trunc('month', ({{ period_start }}) at time zone ({{ timezone }}))::date
{%- endmacro %}
