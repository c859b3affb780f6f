{#
    Project-wide post-hook: fresh planner statistics for every table a build
    wrote from scratch (a `table` model, or an incremental one under
    --full-refresh). Without them PostgreSQL plans the next readers (the
    incremental models sizing a run's changes, the quality gates) as if the
    table were tiny, and picks nested loops over millions of rows. An
    incremental run adds a small batch to a table whose statistics still hold.
#}
{% macro analyze_when_rewritten() %}
    {%- set materialized = config.get('materialized') -%}
    {%- if materialized == 'table'
        or (materialized == 'incremental' and flags.FULL_REFRESH) -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}
