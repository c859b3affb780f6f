{#
    SPEC §12 step 2: what one coupon takes from `remaining_minor`, the
    subtotal the earlier coupons left: percent_off of it, rounded once
    (half away from zero) to a whole minor unit, or amount_off in minor
    units, at most what remains. `coupon` is a relation with percent_off,
    amount_off (major units) and minor_unit.
#}
{% macro discount_minor(coupon, remaining_minor) -%}
    case
        when {{ coupon }}.percent_off is not null then
            {{ to_minor_units(
                divide(
                    '(' ~ remaining_minor ~ ') * ' ~ coupon ~ '.percent_off',
                    '100'
                ),
                '0'
            ) }}
        else
            least(
                {{ to_minor_units(
                    coupon ~ '.amount_off', coupon ~ '.minor_unit'
                ) }},
                ({{ remaining_minor }})
            )
    end
{%- endmacro %}
