{#
    The one place an amount is rounded: to the currency's minor unit, half
    away from zero (Postgres round() on numeric), once per invoice line
    (SPEC). The amount is first trimmed to 30 decimals, which removes the
    remainder of a 40-decimal division (see divide) and nothing else: prices
    and quantities never carry that many decimals.
#}
{% macro to_minor_units(amount, minor_unit) -%}
    round(round(({{ amount }}), 30) * power(10::numeric, {{ minor_unit }}))::bigint
{%- endmacro %}
