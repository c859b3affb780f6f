-- The system of record: written by the issuing, charging and webhook steps, never by dbt.
-- Issued invoices and their lines are immutable; only an invoice's status moves (SPEC §6).

create schema if not exists billing;

-- Scratch space of the quality gates: each check's rows while its gate runs.
create schema if not exists billing_checks;

create table if not exists billing.invoices (
    invoice_id text primary key,
    invoice_number text not null unique,
    customer_id text not null,
    subscription_id text not null,
    period_start timestamptz not null,
    period_end timestamptz not null,
    currency text not null,
    subtotal_minor bigint not null,
    credits_minor bigint not null default 0,
    total_minor bigint not null check (total_minor >= 0),
    status text not null
        check (status in ('open', 'paid', 'payment_failed', 'uncollectible', 'void')),
    issued_at timestamptz not null,
    -- SPEC §6: one invoice per subscription per period, whatever re-runs happen.
    unique (subscription_id, period_start)
);

create table if not exists billing.invoice_lines (
    invoice_id text not null references billing.invoices,
    line_no int not null,
    kind text not null,  -- its check: below, where an upgrade replaces it
    event_name text,
    description text not null,
    quantity numeric,
    included_units numeric,
    amount_minor bigint not null,
    detail jsonb,
    primary key (invoice_id, line_no)
);

-- One row per charge attempt, written before the gateway is called (status 'pending') and
-- resolved after it, so a crash in between is resumed with the same idempotency key.
create table if not exists billing.charge_attempts (
    idempotency_key text primary key,
    invoice_id text not null references billing.invoices,
    attempt_no int not null,
    payment_method_id text,
    amount_minor bigint not null,
    currency text not null,
    status text not null check (status in ('pending', 'succeeded', 'failed')),
    failure_code text,
    gateway_charge_id text,
    -- the logical time of the run that made the attempt: retry spacing and the 72-hour rule
    -- are measured on it, so backfills and re-runs behave as the original runs did
    attempted_for timestamptz not null,
    created_at timestamptz not null default now(),
    resolved_at timestamptz,
    unique (invoice_id, attempt_no)
);
-- upgrade: warehouses initialised before attempted_for existed
alter table billing.charge_attempts add column if not exists attempted_for timestamptz;
update billing.charge_attempts set attempted_for = created_at where attempted_for is null;
alter table billing.charge_attempts alter column attempted_for set not null;

-- The shard of a customer (charging) or a webhook endpoint (delivery) among `shards`: the one home
-- of the rule by which a run spreads its gateway calls and deliveries over workers (billing.shards).
create or replace function billing.shard_of(key text, shards integer) returns integer
language sql immutable strict parallel safe
return mod(abs(hashtext(key)::bigint), shards)::integer;

-- The sandbox gateway's own ledger: what it "charged", by idempotency key.
create table if not exists billing.sandbox_gateway_charges (
    idempotency_key text primary key,
    payment_method_id text not null,
    amount_minor bigint not null,
    currency text not null,
    succeeded boolean not null,
    failure_code text,
    gateway_charge_id text not null,
    created_at timestamptz not null default now()
);

-- The webhook outbox: written in the same transaction as the state change it describes.
-- event_id is a versioned digest of (event_type, subject_id), so a re-run cannot enqueue twice.
create table if not exists billing.webhook_events (
    event_id text primary key,
    event_type text not null,
    subject_id text not null,
    created_at timestamptz not null default now(),
    data jsonb not null,
    -- Set once the event has one delivery per subscribed endpoint; endpoints added later
    -- receive only newer events.
    fanned_out_at timestamptz
);

create index if not exists webhook_events_awaiting_fan_out
    on billing.webhook_events (created_at)
    where fanned_out_at is null;

-- One row per event × endpoint. Deliveries to a disabled endpoint stay pending but are held
-- (not attempted) until it is enabled again.
create table if not exists billing.webhook_deliveries (
    event_id text not null references billing.webhook_events,
    endpoint_id text not null,
    -- The event's created_at, copied at fan-out: each endpoint gets its events in this order, read
    -- from an index below (ordering by the events table's own column sorts every pending delivery
    -- of the endpoint at each claim).
    event_created_at timestamptz not null,
    status text not null default 'pending'
        check (status in ('pending', 'delivered', 'dead_lettered')),
    attempt_count int not null default 0,
    next_attempt_at timestamptz not null default now(),
    delivered_at timestamptz,
    last_error text,
    -- attempt_count when the delivery was last replayed: the retry schedule restarts from there,
    -- while attempt numbers (and the attempt history) carry on.
    attempts_before_replay int not null default 0,
    primary key (event_id, endpoint_id)
);

alter table billing.webhook_deliveries
    add column if not exists attempts_before_replay int not null default 0;
-- upgrade: warehouses initialised before event_created_at existed
alter table billing.webhook_deliveries add column if not exists event_created_at timestamptz;
update billing.webhook_deliveries as deliveries
set event_created_at = events.created_at
from billing.webhook_events as events
where deliveries.event_id = events.event_id and deliveries.event_created_at is null;
alter table billing.webhook_deliveries alter column event_created_at set not null;

create index if not exists webhook_deliveries_due
    on billing.webhook_deliveries (next_attempt_at)
    where status = 'pending';

-- One worker per endpoint claims that endpoint's due deliveries in event order, a batch at a time
-- (dispatch.py): the claim reads the first pending entries of its endpoint, whatever the backlog.
drop index if exists billing.webhook_deliveries_due_by_endpoint;
create index if not exists webhook_deliveries_in_order_by_endpoint
    on billing.webhook_deliveries (endpoint_id, event_created_at, event_id)
    where status = 'pending';

-- Every attempt, successful or not, refusals by the SSRF guard included (status null, the
-- reason in error); never the endpoint's secret.
create table if not exists billing.webhook_delivery_attempts (
    event_id text not null,
    endpoint_id text not null,
    attempt_no int not null,
    attempted_at timestamptz not null,
    response_status int,
    latency_ms int not null,
    error text,
    primary key (event_id, endpoint_id, attempt_no),
    foreign key (event_id, endpoint_id) references billing.webhook_deliveries
);

-- Data-quality gate results (SPEC §9): one row per expectation per gate run, appended on every
-- run (retries included), so the latest verdict of a run is the row with the greatest checked_at.
create table if not exists billing.quality_results (
    run_label text not null,
    gate text not null,
    check_name text not null,
    expectation text not null,
    success boolean not null,
    observed jsonb not null,
    checked_at timestamptz not null default now()
);

create index if not exists quality_results_by_run on billing.quality_results (run_label, gate, checked_at);

-- The last time a gate whose inputs are versioned passed every check: what it checked (a fingerprint
-- of its checks) and the version of its inputs then. A run that finds both unchanged does not check
-- again (billing.quality.runner.run_gate).
create table if not exists billing.gate_passes (
    gate text primary key,
    fingerprint text not null,
    data_version text not null,
    run_label text not null,
    passed_at timestamptz not null default now()
);

-- The credit ledger (SPEC §6): what each grant gave to each invoice, written when the invoice
-- is issued. A grant's balance is its amount less what it has given; never given twice.
create table if not exists billing.credit_applications (
    grant_id text not null,
    invoice_id text not null references billing.invoices,
    amount_minor bigint not null check (amount_minor > 0),
    currency text not null,
    applied_at timestamptz not null default now(),
    primary key (grant_id, invoice_id)
);

-- Credit grants the system makes (SPEC §6): when an invoice's credits exceed its charges, the
-- rest becomes the grant `carry_<origin_invoice_id>`, granted at the end of that invoice's period,
-- without expiry, written in the transaction that issues the invoice. The amount is in major
-- units like the application's raw.credit_grants, so dbt rounds both to minor units in one place
-- (int_credit_grants__unioned).
create table if not exists billing.credit_grants (
    grant_id text primary key,
    origin_invoice_id text not null unique references billing.invoices,
    customer_id text not null,
    currency text not null,
    amount numeric not null check (amount > 0),
    granted_at timestamptz not null
);
-- upgrade: earlier releases wrote these grants into raw.credit_grants, which the application owns.
-- Moved once, under the same grant_id and amount, so their credit_applications (and balances)
-- stay as they were.
with moved as (
    delete from raw.credit_grants as grants
    using billing.invoices as invoices
    where grants.grant_id = 'carry_' || invoices.invoice_id
    returning grants.grant_id, invoices.invoice_id, grants.customer_id, grants.currency, grants.amount,
        grants.granted_at
)
insert into billing.credit_grants (grant_id, origin_invoice_id, customer_id, currency, amount, granted_at)
select grant_id, invoice_id, customer_id, currency, amount, granted_at
from moved;

-- A gate result let through by an operator's acknowledgement (see quality_acknowledgements).
alter table billing.quality_results add column if not exists acknowledged boolean not null default false;

-- Known anomalies an operator accepted (`billing quality acknowledge`): the named check of the
-- named gate passes, recorded as acknowledged, in runs for exactly this as_of (the closing
-- window's logical time) and no other. Kept for audit: who, why, when.
create table if not exists billing.quality_acknowledgements (
    gate text not null,
    check_name text not null,
    as_of timestamptz not null,
    reason text not null check (btrim(reason) != ''),
    acknowledged_by text not null,
    acknowledged_at timestamptz not null default now(),
    primary key (gate, check_name, as_of)
);

-- Runs that build models or move money (billing.runs, SPEC §10): one row per run that asked for
-- the warehouse's lease, whoever orchestrated it; the lease (at most one row) names the run that
-- holds it. See plugins/billing/runs.py.
create table if not exists billing.runs (
    -- the id of the run's begin_run task instance (or a CLI command's own id): unique per run,
    -- where two orchestrators could give two runs the same run_id
    run_token text primary key,
    dag_id text not null,
    run_id text not null,
    as_of timestamptz not null,
    backfill boolean not null default false,
    requested_at timestamptz not null default now(),
    seen_at timestamptz not null default now(),
    acquired_at timestamptz,
    released_at timestamptz,
    outcome text check (outcome in ('succeeded', 'failed', 'gave_up', 'expired'))
);

create table if not exists billing.run_lease (
    lease text primary key default 'warehouse' check (lease = 'warehouse'),
    run_token text not null unique references billing.runs,
    expires_at timestamptz not null
);

-- Invoice provenance (SPEC §10): the issuing run's as_of as a date in the customer's timezone, the
-- due date (invoice_date + the customer's net_terms_days, at local midnight), and the run.
alter table billing.invoices add column if not exists invoice_date date;
alter table billing.invoices add column if not exists due_at timestamptz;
-- null on invoices issued before runs were recorded
alter table billing.invoices add column if not exists issued_by_run text;
alter table billing.invoices add column if not exists issued_in_backfill boolean not null default false;
-- upgrade: invoices issued before these columns existed are dated by their issue time, due at once
update billing.invoices
set invoice_date = (invoices.issued_at at time zone customers.timezone)::date,
    due_at = ((invoices.issued_at at time zone customers.timezone)::date)::timestamp
        at time zone customers.timezone
from (
    select invoices.invoice_id, coalesce(raw_customers.timezone, 'UTC') as timezone
    from billing.invoices
    left join raw.customers as raw_customers using (customer_id)
) as customers
where invoices.invoice_id = customers.invoice_id and invoices.invoice_date is null;
alter table billing.invoices alter column invoice_date set not null;
alter table billing.invoices alter column due_at set not null;

-- The invoice arithmetic of SPEC §12, for analysts: total_minor = subtotal_minor - discount_minor
-- + minimum_minor + tax_minor - credits_minor. tax_minor is the exclusive tax only; the tax that
-- inclusive prices contain is tax_inclusive_minor, already inside the subtotal. A reverse-charge
-- invoice carries no tax and says so (reverse_charge).
alter table billing.invoices add column if not exists discount_minor bigint not null default 0;
alter table billing.invoices add column if not exists minimum_minor bigint not null default 0;
alter table billing.invoices add column if not exists tax_minor bigint not null default 0;
alter table billing.invoices add column if not exists tax_inclusive_minor bigint not null default 0;
alter table billing.invoices add column if not exists reverse_charge boolean not null default false;
-- Whether a line adds to its invoice's total: all but an inclusive tax line, which shows the tax
-- the other lines contain. Copied from the draft line (the rule's one home: dbt macro
-- adds_to_total); every sum of lines into a total reads it.
alter table billing.invoice_lines add column if not exists adds_to_total boolean not null default true;
-- The line kinds (SPEC §6, §12). `create table if not exists` keeps an older warehouse's check,
-- so the check is replaced here whenever it lacks a kind.
do $$
declare
    kinds constant text[] := array[
        'base_fee', 'usage', 'credit', 'adjustment', 'discount', 'minimum_commitment', 'tax'
    ];
    current_check text := (
        select pg_get_constraintdef(oid) from pg_constraint
        where conrelid = 'billing.invoice_lines'::regclass and conname = 'invoice_lines_kind_check'
    );
begin
    if current_check is null or exists (
        select from unnest(kinds) as kind where position(quote_literal(kind) in current_check) = 0
    ) then
        alter table billing.invoice_lines drop constraint if exists invoice_lines_kind_check;
        execute format(
            'alter table billing.invoice_lines add constraint invoice_lines_kind_check check (kind in (%s))',
            (select string_agg(quote_literal(kind), ', ') from unnest(kinds) as kind)
        );
    end if;
end $$;

-- The charge retry schedule (SPEC §7), one row that charging, retries and SQL reports all read: at
-- most max_attempts attempts in all; the next attempt falls in a later retry_spacing bin than the
-- last (bins counted from the epoch, so UTC days); an invoice whose last attempt failed
-- give_up_after ago is given up (`uncollectible`).
create or replace view billing.charge_retry_policy as
select
    3 as max_attempts,
    interval '1 day' as retry_spacing,
    interval '72 hours' as give_up_after;

-- Where each invoice whose latest charge attempt failed stands in that schedule: the one home of
-- the retry rule, which the daily retry run acts on and the dunning mart shows. The next attempt
-- falls in the first retry_spacing bin after the last attempt's (`next_attempt_from`; null when no
-- attempt is left or the invoice is given up first). The invoice is given up (`gives_up_at`) when
-- its last allowed attempt fails (charging marks it uncollectible then), else give_up_after after
-- its last attempt. Times are the attempts' logical times (attempted_for).
create or replace view billing.charge_collection_schedule as
with latest as (
    select distinct on (invoice_id) invoice_id, attempt_no, status, failure_code, attempted_for
    from billing.charge_attempts
    order by invoice_id, attempt_no desc
)
select
    latest.invoice_id,
    latest.attempt_no as attempts_made,
    greatest(policy.max_attempts - latest.attempt_no, 0) as attempts_left,
    latest.failure_code as last_failure_code,
    latest.attempted_for as last_attempted_for,
    case when times.next_bin < times.gives_up_at then times.next_bin end as next_attempt_from,
    times.gives_up_at
from latest
cross join billing.charge_retry_policy as policy
cross join lateral (
    select
        date_bin(policy.retry_spacing, latest.attempted_for, timestamptz 'epoch')
            + policy.retry_spacing as next_bin,
        case
            when latest.attempt_no >= policy.max_attempts then latest.attempted_for
            else latest.attempted_for + policy.give_up_after
        end as gives_up_at
) as times
where latest.status = 'failed';

-- Usage sync to Stripe (SPEC §16, billing.stripe_sync): every call to Stripe's meters API, one row
-- per meter event or cancel (meter event adjustment), recorded `pending` before the call and
-- resolved after it, so a crash in between re-sends the same identifier (Stripe keeps one event
-- per identifier) instead of sending the hour twice. `value` is what the row adds to Stripe's
-- total for the hour: an event's value, a cancel's minus the cancelled event's. `resolved_at` of
-- a sent event starts Stripe's 24 h cancel window.
create table if not exists billing.stripe_usage_sends (
    identifier text primary key,
    subscription_id text not null,
    event_name text not null,
    hour_start timestamptz not null,
    version int not null,
    kind text not null check (kind in ('usage', 'correction', 'cancel')),
    cancels text references billing.stripe_usage_sends,
    stripe_customer_id text not null,
    stripe_event_name text not null,
    value numeric not null,
    status text not null check (status in ('pending', 'sent', 'refused')),
    error text,
    -- the as_of of the run that made it
    sent_for timestamptz not null,
    created_at timestamptz not null default now(),
    resolved_at timestamptz,
    unique (subscription_id, event_name, hour_start, version),
    check ((kind = 'cancel') = (cancels is not null))
);

create index if not exists stripe_usage_sends_pending
    on billing.stripe_usage_sends (created_at)
    where status = 'pending';

-- Hours whose usage the sync cannot express in Stripe, with why (SPEC §16: listed, not sent): one
-- row per subscription × meter × hour, as of the latest sync run; an hour leaves once in sync.
create table if not exists billing.stripe_usage_unsynced (
    subscription_id text not null,
    event_name text not null,
    hour_start timestamptz not null,
    warehouse_quantity numeric not null,
    stripe_quantity numeric not null,
    reason text not null,
    listed_for timestamptz not null,
    primary key (subscription_id, event_name, hour_start)
);

-- Reconciliation before Stripe finalises an invoice (SPEC §16): per subscription period × meter,
-- what Stripe's event summaries hold and what the warehouse billed, as checked by a sync run
-- (`checked_for`, its as_of). The gate reconciled_with_stripe fails on a difference.
create table if not exists billing.stripe_usage_reconciliations (
    subscription_id text not null,
    event_name text not null,
    period_start timestamptz not null,
    period_end timestamptz not null,
    customer_id text not null,
    stripe_customer_id text not null,
    stripe_meter_id text not null,
    warehouse_quantity numeric not null,
    stripe_quantity numeric not null,
    checked_for timestamptz not null,
    checked_at timestamptz not null default now(),
    primary key (subscription_id, event_name, period_start, checked_for)
);

-- The ledger (SPEC §14, plugins/billing/ledger.py): one balanced double-entry journal entry per
-- money event, written in the transaction of the event, append-only. An entry's id derives from
-- the event it records, so a re-run posts nothing twice. Amounts are minor units of the entry's
-- one currency.
create table if not exists billing.ledger_accounts (
    account text primary key,
    account_type text not null check (account_type in ('asset', 'liability', 'revenue', 'expense')),
    description text not null
);
insert into billing.ledger_accounts (account, account_type, description) values
    ('accounts_receivable', 'asset', 'What customers owe on issued invoices'),
    ('cash', 'asset', 'Money collected through the payment gateway'),
    ('customer_credit', 'liability', 'Credit the customers hold: credit grants the system made'),
    ('tax_payable', 'liability', 'Tax invoiced, owed to tax authorities'),
    ('revenue:subscription', 'revenue', 'Base fees and minimum commitments'),
    ('revenue:usage', 'revenue', 'Usage charges and their re-rated adjustments'),
    ('revenue:discounts', 'revenue', 'Discounts given (contra-revenue: a debit balance)'),
    ('bad_debt', 'expense', 'Receivables written off as uncollectible'),
    ('promotional_credit', 'expense', 'Credit grants of the application (promotions) spent on invoices')
on conflict (account) do update
set account_type = excluded.account_type, description = excluded.description;

create table if not exists billing.journal_entries (
    entry_id text primary key,
    -- what happened, e.g. invoice_issued, credits_applied, payment_succeeded, refund, credit_note,
    -- write_off
    kind text not null,
    invoice_id text references billing.invoices,
    customer_id text not null,
    currency text not null,
    description text not null,
    posted_at timestamptz not null default now()
);
create index if not exists journal_entries_by_invoice on billing.journal_entries (invoice_id);

create table if not exists billing.journal_lines (
    entry_id text not null references billing.journal_entries,
    line_no int not null,
    account text not null references billing.ledger_accounts,
    debit_minor bigint not null default 0 check (debit_minor >= 0),
    credit_minor bigint not null default 0 check (credit_minor >= 0),
    primary key (entry_id, line_no),
    check ((debit_minor = 0) != (credit_minor = 0))
);

-- An entry's lines are written by one statement and balance: checked on what the statement wrote,
-- so an unbalanced posting is refused with its transaction, whichever code path wrote it.
create or replace function billing.refuse_unbalanced_entries() returns trigger
language plpgsql as $$
declare
    unbalanced text;
begin
    select string_agg(entry_id, ', ') into unbalanced
    from (
        select entry_id from written group by entry_id having sum(debit_minor) != sum(credit_minor)
    ) as entries;
    if unbalanced is not null then
        raise exception 'unbalanced journal entries: %', unbalanced using errcode = 'check_violation';
    end if;
    return null;
end;
$$;

create or replace function billing.refuse_ledger_edit() returns trigger
language plpgsql as $$
begin
    raise exception 'the ledger is append-only: % on % refused', tg_op, tg_table_name
        using errcode = 'insufficient_privilege';
end;
$$;

create or replace trigger journal_lines_balance
after insert on billing.journal_lines
referencing new table as written
for each statement execute function billing.refuse_unbalanced_entries();

create or replace trigger journal_lines_append_only
before update or delete on billing.journal_lines
for each row execute function billing.refuse_ledger_edit();

create or replace trigger journal_entries_append_only
before update or delete on billing.journal_entries
for each row execute function billing.refuse_ledger_edit();

-- Credit notes (SPEC §13, plugins/billing/credit_notes.py): the one way to correct an issued
-- invoice's amount. Immutable once written; numbered gaplessly in their own series (CN-000001, …)
-- in order of creation, under a lock, like invoices. credit_note_id is a versioned digest of the
-- request (or of the operator's --idempotency-key), so the same command run twice writes one note.
create table if not exists billing.credit_notes (
    credit_note_id text primary key,
    credit_note_number text not null unique,
    invoice_id text not null references billing.invoices,
    customer_id text not null,
    currency text not null,
    -- what happens to the money: refund (through the gateway, a paid invoice), credit (a grant to
    -- the customer, a paid invoice), reduce (lowers what remains to pay on an unpaid invoice)
    method text not null check (method in ('refund', 'credit', 'reduce')),
    reason text not null
        check (reason in ('duplicate', 'fraudulent', 'order_change', 'product_unsatisfactory')),
    memo text,
    -- the whole note, tax included: the sum of its lines
    amount_minor bigint not null check (amount_minor > 0),
    created_by text not null,
    created_at timestamptz not null default now()
);
create index if not exists credit_notes_by_invoice on billing.credit_notes (invoice_id);

-- What a credit note takes off each invoice line: the credited lines' net amounts, and each
-- exclusive tax line's pro-rata share (kind 'tax'), so the ledger debits the right accounts.
create table if not exists billing.credit_note_lines (
    credit_note_id text not null references billing.credit_notes,
    line_no int not null,
    invoice_id text not null,
    invoice_line_no int not null,
    -- the credited invoice line's kind, copied: base_fee, usage, adjustment, minimum_commitment, tax
    kind text not null,
    amount_minor bigint not null check (amount_minor > 0),
    primary key (credit_note_id, line_no),
    foreign key (invoice_id, invoice_line_no) references billing.invoice_lines (invoice_id, line_no)
);

-- The gateway refund of each `refund` credit note: recorded `pending` in the note's transaction,
-- before the gateway is called, and resolved after it, so a lost answer is re-sent with the same
-- idempotency key (by re-running the command, or by the daily charge_retries run), never twice.
create table if not exists billing.refunds (
    refund_id text primary key,
    credit_note_id text not null unique references billing.credit_notes,
    invoice_id text not null references billing.invoices,
    -- the paid charge it returns money from
    gateway_charge_id text not null,
    amount_minor bigint not null check (amount_minor > 0),
    currency text not null,
    status text not null check (status in ('pending', 'succeeded', 'failed')),
    failure_code text,
    gateway_refund_id text,
    created_at timestamptz not null default now(),
    resolved_at timestamptz
);
create index if not exists refunds_pending on billing.refunds (created_at) where status = 'pending';

-- The sandbox gateway's refunds, by idempotency key: what it "refunded".
create table if not exists billing.sandbox_gateway_refunds (
    idempotency_key text primary key,
    gateway_charge_id text not null,
    amount_minor bigint not null,
    currency text not null,
    gateway_refund_id text not null,
    created_at timestamptz not null default now()
);

-- A `credit` credit note's grant lives beside the carried credits: grant id `credit_<credit note
-- id>`, origin_invoice_id the credited invoice (so an invoice may now originate several grants).
alter table billing.credit_grants add column if not exists credit_note_id text unique
    references billing.credit_notes;
alter table billing.credit_grants drop constraint if exists credit_grants_origin_invoice_id_key;

-- The credit notes' immutability, kept by the warehouse like the ledger's.
create or replace trigger credit_notes_immutable
before update or delete on billing.credit_notes
for each row execute function billing.refuse_ledger_edit();

create or replace trigger credit_note_lines_immutable
before update or delete on billing.credit_note_lines
for each row execute function billing.refuse_ledger_edit();

-- What remains to pay on each issued invoice: the one home of that rule, which charging, the
-- ledger gate, the PDFs and the marts read. An unpaid invoice owes its total less its `reduce`
-- credit notes (amount_due_minor: what a charge collects); a paid, void or uncollectible one owes
-- nothing. Beside it, for analysts and the credit-note rules: what was paid (succeeded charges),
-- credited (every credit note), reduced, and refunded (succeeded refunds). A refund not (yet) made
-- (pending, or refused by the gateway and settled by hand) is owed to the customer: the invoice's
-- receivable (receivable_minor, what the ledger's accounts_receivable holds for it) is what remains
-- to pay less that.
create or replace view billing.invoice_balances as
with

credited as (
    select
        invoice_id,
        sum(amount_minor)::bigint as credited_minor,
        coalesce(sum(amount_minor) filter (where method = 'reduce'), 0)::bigint as reduced_minor
    from billing.credit_notes
    group by invoice_id
),

paid as (
    select invoice_id, sum(amount_minor)::bigint as paid_minor
    from billing.charge_attempts
    where status = 'succeeded'
    group by invoice_id
),

refunded as (
    select
        invoice_id,
        coalesce(sum(amount_minor) filter (where status = 'succeeded'), 0)::bigint as refunded_minor,
        coalesce(sum(amount_minor) filter (where status != 'succeeded'), 0)::bigint as refund_owed_minor
    from billing.refunds
    group by invoice_id
)

select
    invoices.invoice_id,
    invoices.customer_id,
    invoices.currency,
    invoices.total_minor,
    owed.amount_remaining_minor,
    invoices.status,
    owed.amount_due_minor,
    coalesce(paid.paid_minor, 0) as paid_minor,
    coalesce(credited.credited_minor, 0) as credited_minor,
    coalesce(credited.reduced_minor, 0) as reduced_minor,
    coalesce(refunded.refunded_minor, 0) as refunded_minor,
    coalesce(refunded.refund_owed_minor, 0) as refund_owed_minor,
    owed.amount_remaining_minor - coalesce(refunded.refund_owed_minor, 0) as receivable_minor
from billing.invoices
left join credited on invoices.invoice_id = credited.invoice_id
left join paid on invoices.invoice_id = paid.invoice_id
left join refunded on invoices.invoice_id = refunded.invoice_id
cross join lateral (
    select
        due.amount_due_minor,
        case when invoices.status in ('open', 'payment_failed') then due.amount_due_minor else 0 end
            as amount_remaining_minor
    from (select invoices.total_minor - coalesce(credited.reduced_minor, 0) as amount_due_minor) as due
) as owed;
