with

journal_lines as (

    select * from {{ ref('stg_billing__journal_lines') }}

),

journal_entries as (

    select * from {{ ref('stg_billing__journal_entries') }}

),

ledger_accounts as (

    select * from {{ ref('stg_billing__ledger_accounts') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

final as (

    select
        ---------- ids
        journal_lines.entry_id,
        journal_lines.line_no,
        journal_entries.invoice_id,
        invoices.invoice_number,
        journal_entries.customer_id,

        ---------- dimensions
        journal_entries.entry_kind,
        journal_entries.description,
        journal_lines.account,
        ledger_accounts.account_type,
        journal_entries.currency,
        date_trunc(
            'month', journal_entries.posted_at at time zone 'UTC'
        )::date as posted_month,

        ---------- measures
        journal_lines.debit_minor,
        {{ to_major_units(
            'journal_lines.debit_minor', 'currencies.minor_unit'
        ) }} as debit_major,
        journal_lines.credit_minor,
        {{ to_major_units(
            'journal_lines.credit_minor', 'currencies.minor_unit'
        ) }} as credit_major,

        ---------- timestamps
        journal_entries.posted_at

    from journal_lines

    inner join journal_entries
        on journal_lines.entry_id = journal_entries.entry_id

    inner join ledger_accounts
        on journal_lines.account = ledger_accounts.account

    inner join currencies
        on journal_entries.currency = currencies.currency

    left join invoices
        on journal_entries.invoice_id = invoices.invoice_id

)

select * from final
