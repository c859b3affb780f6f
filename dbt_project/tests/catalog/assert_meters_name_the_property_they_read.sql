{# count_unique and time_duration read properties ->> property (SPEC §4). #}

select *
from {{ ref('stg_app__meters') }}
where aggregation in ('count_unique', 'time_duration')
    and aggregated_property is null
