{#
    The calendar MetricFlow joins metrics to when a query needs every day
    (cumulative and offset metrics, gaps filled): one row per day, 2020
    through 2039, from generate_series (no dbt packages on this machine).
#}
with

days as (

    select day::date as date_day

    from generate_series(
        '2020-01-01'::timestamp, '2039-12-31'::timestamp, interval '1 day'
    ) as day

)

select * from days
