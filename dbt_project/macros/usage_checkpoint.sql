{#
    The usage pipeline's last committed state, int_usage_pipeline__checkpoint
    (docs/incremental.md). It is read without ref(): the checkpoint is built
    after the models that read it, so a ref would be a cycle. None before the
    first complete run, and while dbt parses.
#}
{% macro usage_checkpoint() %}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(adapter.get_relation(
        database=this.database,
        schema=this.schema,
        identifier='int_usage_pipeline__checkpoint'
    )) }}
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
