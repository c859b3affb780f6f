{#
    The current periods' lines, run on to the period's end and rated
    (int_usage_lines__priced, basis 'projected').
#}
with

priced as (

    select * from {{ ref('int_usage_lines__priced') }}

    where line_basis = 'projected'

),

final as (

    select
        {{ priced_line_columns(count_events='count_events') }}

    from priced

)

select * from final
