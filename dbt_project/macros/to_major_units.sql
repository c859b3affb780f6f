{#
    An amount in minor units as an exact value in the currency's major unit
    (cents to dollars, yen to yen), with the currency's decimals (15.00, not
    15.0000000000000000): for display beside the minor-unit amount (SPEC §11).
    The round only sets the scale: minor units are whole, the value is exact.
#}
{% macro to_major_units(amount_minor, minor_unit) -%}
    round(
        ({{ amount_minor }})::numeric / power(10::numeric, {{ minor_unit }}),
        {{ minor_unit }}
    )
{%- endmacro %}
