{#
    Exact-enough division for money. numeric division in Postgres keeps
    only ~16-20 significant digits, so 1/3 × 0.015 lands just under 0.005
    and would round down. Dividing at 40 decimals, and trimming to 30 in
    to_minor_units, lets an amount that is exactly half a minor unit round
    away from zero as SPEC says. Multiply before dividing where possible.
    trim_scale drops trailing zeros (15, not 15.000…).
#}
{% macro divide(numerator, denominator) -%}
    trim_scale(round(({{ numerator }})::numeric, 40) / ({{ denominator }}))
{%- endmacro %}
