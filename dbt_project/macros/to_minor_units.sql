{#
    The one place an amount is rounded: to the currency's minor unit, half
    away from zero (Postgres round() on numeric), once per invoice line
    (SPEC). The amount is first trimmed to 30 decimals, which removes the
    remainder of a 40-decimal division (see divide) and nothing else: prices
    and quantities never carry that many decimals.

    An amount beyond var max_amount_minor (what one line may hold) is null:
    the draft that carries it is held with reason amount_out_of_range
    (fct_draft_invoices) instead of failing the build for every customer.
#}
{% macro to_minor_units(amount, minor_unit) -%}
    {%- set minor -%}
        round(round(({{ amount }}), 30) * power(10::numeric, {{ minor_unit }}))
    {%- endset -%}
    case
        when abs({{ minor }}) <= {{ var('max_amount_minor') }}
            then {{ minor }}::bigint
    end
{%- endmacro %}
