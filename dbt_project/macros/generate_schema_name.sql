{#
    Each layer gets its own schema, named exactly as configured
    (billing_staging, billing_intermediate, billing_marts), instead of dbt's
    default "<target schema>_<custom schema>".
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
