{# The run's logical time (run_var as_of: now unless a run sets it). #}
{% macro as_of() -%}
    '{{ run_var("as_of", "now") }}'::timestamptz
{%- endmacro %}

{# A period is closed once as_of >= period_end + grace (SPEC §3). #}
{% macro is_closed(period_end) -%}
    ({{ period_end }} + interval '{{ run_var("grace", "1 hour") }}'
    <= {{ as_of() }})
{%- endmacro %}
