{#
    Every period's lines, rated (int_usage_lines__priced, basis 'period').
    count_events is whole: only a projection scales it.
#}
with

priced as (

    select * from {{ ref('int_usage_lines__priced') }}

    where line_basis = 'period'

),

final as (

    select
        {{ priced_line_columns() }}

    from priced

)

select * from final
