{#
    SPEC §2: a blank text counts as missing. The value itself is kept as sent
    (routing on event_name is exact-match), only blanks become null.
#}
{% macro blank_as_null(column) -%}
    case when {{ column }} ~ '^\s*$' then null else {{ column }} end
{%- endmacro %}
