{#
    Rows where the expression is false fail the test. On a column the
    expression is appended to it ("> 0"); on a model it stands alone.
#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not ({{ column_name if column_name else '' }} {{ expression }})

{% endtest %}
