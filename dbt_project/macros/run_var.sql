{#
    A value of the run: `as_of` (its logical time; a period is closed once
    as_of >= period_end + grace, SPEC §3), `grace`, `raw_rewrites` and
    `usage_state_format` (see int_usage_pipeline__checkpoint).

    A var wins when given (unit tests override as_of and grace); otherwise
    billing.transform passes each run's value as the environment variable
    BILLING_RUN_<NAME>, read only while executing. Not as --vars: any change
    of --vars makes dbt re-parse the whole project (seconds per run), while a
    variable read only at execution is invisible to parsing.
#}
{% macro run_var(name, default=none) -%}
    {%- if var(name, none) is not none -%}
        {{ return(var(name)) }}
    {%- elif execute -%}
        {{ return(env_var('BILLING_RUN_' ~ name | upper, default)) }}
    {%- else -%}
        {{ return(default) }}
    {%- endif -%}
{%- endmacro %}
