{#
    The one place an amount is rounded: to the currency's minor unit, half away
    from zero (Postgres round() on numeric), once per invoice line (SPEC).
#}
{% macro to_minor_units(amount, minor_unit) -%}
    round(({{ amount }}) * power(10::numeric, {{ minor_unit }}))::bigint
{%- endmacro %}
