{#
    An amount in minor units as an exact value in the currency's major unit
    (cents to dollars, yen to yen): for display beside the minor-unit amount
    (SPEC §11). No rounding: minor units are already whole.
#}
{% macro to_major_units(amount_minor, minor_unit) -%}
    ({{ amount_minor }})::numeric / power(10::numeric, {{ minor_unit }})
{%- endmacro %}
