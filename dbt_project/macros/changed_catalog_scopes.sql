{#
    The catalog scopes ('customer', 'meter') with an entry changed since the
    usage pipeline's checkpoint (int_usage_catalog__changed), sorted. An
    incremental model reads the events of a scope again only when it
    changed: each scope's read is a lookup or a scan of its own. The caller
    declares `-- depends_on: ref('int_usage_catalog__changed')`.
#}
{% macro changed_catalog_scopes() %}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {{ return(run_query(
        "select distinct catalog_scope from "
        ~ ref('int_usage_catalog__changed') ~ " order by 1"
    ).columns[0].values() | list) }}
{% endmacro %}
