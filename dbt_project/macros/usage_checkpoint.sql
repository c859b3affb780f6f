{#
    The usage pipeline's last committed state: the source
    usage_pipeline.checkpoint (int_usage_pipeline__checkpoint as the last
    complete run left it, docs/incremental.md). None before the first
    complete run, and while dbt parses (which records the dependency).
#}
{% macro usage_checkpoint() %}
    {%- set checkpoint = source('usage_pipeline', 'checkpoint') -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(load_relation(checkpoint)) }}
{% endmacro %}

{#
    One value of the checkpoint's watermark row, as text to inline (so that
    the planner sees a constant and can use an index range), e.g.
    usage_watermark("max(processed_through)"). None without a checkpoint, in
    a full refresh, or when the expression is null.
#}
{% macro usage_watermark(expression) %}
    {%- set checkpoint = usage_checkpoint() -%}
    {%- if checkpoint is none or flags.FULL_REFRESH -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(run_query(
        "select (" ~ expression ~ ")::text from " ~ checkpoint
        ~ " where catalog_scope = 'watermark'"
    ).columns[0].values()[0]) }}
{% endmacro %}
