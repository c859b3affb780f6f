{# The run's logical time, from the `as_of` var ('now' unless a DAG run sets it). #}
{% macro as_of() -%}
    '{{ var("as_of") }}'::timestamptz
{%- endmacro %}

{# A period is closed once as_of >= period_end + grace (SPEC §3). #}
{% macro is_closed(period_end) -%}
    ({{ period_end }} + interval '{{ var("grace") }}' <= {{ as_of() }})
{%- endmacro %}
