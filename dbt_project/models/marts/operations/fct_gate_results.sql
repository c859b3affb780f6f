with

results as (

    select * from {{ ref('stg_billing__quality_results') }}

),

-- billing.quality_results appends one row per expectation each time a gate
-- runs, retries included, all rows of one gate run with the same checked_at:
-- a run's verdict on a gate is its latest gate run.
gate_runs as (

    select
        run_label,
        gate,
        max(checked_at) as checked_at,
        count(distinct checked_at) as count_gate_runs

    from results

    group by 1, 2

),

latest as (

    select
        results.*,
        gate_runs.count_gate_runs

    from results

    inner join gate_runs
        on
            results.run_label = gate_runs.run_label
            and results.gate = gate_runs.gate
            and results.checked_at = gate_runs.checked_at

),

final as (

    select
        run_label,
        gate,
        check_name,
        checked_at,
        bool_and(success) as success,
        not bool_and(success) and bool_and(success or acknowledged)
            as acknowledged,
        case
            when bool_and(success) then 'pass'
            when bool_and(success or acknowledged) then 'acknowledged'
            else 'fail'
        end as verdict,
        count(*) as count_expectations,
        count(*) filter (where not success) as count_failed_expectations,
        jsonb_agg(
            jsonb_build_object(
                'expectation', expectation,
                'success', success,
                'acknowledged', acknowledged,
                'observed', observed
            )
            order by expectation
        ) as observed,
        min(count_gate_runs) as count_gate_runs

    from latest

    group by 1, 2, 3, 4

)

select * from final
