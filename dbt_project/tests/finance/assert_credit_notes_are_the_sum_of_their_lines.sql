-- SPEC §13: a credit note's amount is the sum of what it takes off each
-- invoice line (tax shares included). Returns the notes where they differ.
with

lines as (

    select
        credit_note_id,
        sum(amount_minor) as lines_minor

    from {{ ref('fct_credit_notes') }}

    group by 1

),

compared as (

    select
        credit_notes.credit_note_id,
        credit_notes.amount_minor,
        coalesce(lines.lines_minor, 0) as lines_minor

    from {{ ref('stg_billing__credit_notes') }} as credit_notes

    left join lines
        on credit_notes.credit_note_id = lines.credit_note_id

)

select * from compared

where amount_minor != lines_minor
