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
