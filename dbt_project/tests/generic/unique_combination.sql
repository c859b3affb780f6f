{#
    The model's grain: no two rows share these columns (dbt_utils'
    unique_combination_of_columns; the package hub is out of reach here).
#}
{% test unique_combination(model, columns) %}

select {{ columns | join(', ') }}, count(*) as rows_with_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
