{#
    The current periods' lines, rated so far (int_usage_lines__priced, basis
    'current'). count_events is whole: only a projection scales it.
#}
with

priced as (

    select * from {{ ref('int_usage_lines__priced') }}

    where line_basis = 'current'

),

final as (

    select
        {{ priced_line_columns() }}

    from priced

)

select * from final
