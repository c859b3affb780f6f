{#
    SPEC §5: a fee of a partial first or last period, prorated by seconds
    (seconds in the period / seconds in the regular period that contains it).
    The base fee and the minimum commitment (§12) both use it. `periods` is a
    relation with int_subscription_periods' period_seconds, regular_seconds.
    Multiplied before dividing, so an exact half cent stays exact.
#}
{% macro prorate(amount, periods) -%}
    {{ divide(
        '(' ~ amount ~ ') * ' ~ periods ~ '.period_seconds',
        periods ~ '.regular_seconds'
    ) }}
{%- endmacro %}
