CREATE SCHEMA billing;
CREATE SCHEMA raw;
CREATE FUNCTION raw.count_usage_events_rewrite() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
    perform nextval('raw.usage_events_rewrites');
    return null;
end
$$;
CREATE TABLE billing.charge_attempts (
    idempotency_key text NOT NULL,
    invoice_id text NOT NULL,
    attempt_no integer NOT NULL,
    payment_method_id text,
    amount_minor bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,
    failure_code text,
    gateway_charge_id text,
    attempted_for timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    resolved_at timestamp with time zone,
    CONSTRAINT charge_attempts_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'succeeded'::text, 'failed'::text])))
);
CREATE TABLE billing.credit_applications (
    grant_id text NOT NULL,
    invoice_id text NOT NULL,
    amount_minor bigint NOT NULL,
    currency text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT credit_applications_amount_minor_check CHECK ((amount_minor > 0))
);
CREATE TABLE billing.invoice_lines (
    invoice_id text NOT NULL,
    line_no integer NOT NULL,
    kind text NOT NULL,
    event_name text,
    description text NOT NULL,
    quantity numeric,
    included_units numeric,
    amount_minor bigint NOT NULL,
    detail jsonb,
    CONSTRAINT invoice_lines_kind_check CHECK ((kind = ANY (ARRAY['base_fee'::text, 'usage'::text, 'credit'::text, 'adjustment'::text])))
);
CREATE TABLE billing.invoices (
    invoice_id text NOT NULL,
    invoice_number text NOT NULL,
    customer_id text NOT NULL,
    subscription_id text NOT NULL,
    period_start timestamp with time zone NOT NULL,
    period_end timestamp with time zone NOT NULL,
    currency text NOT NULL,
    subtotal_minor bigint NOT NULL,
    credits_minor bigint DEFAULT 0 NOT NULL,
    total_minor bigint NOT NULL,
    status text NOT NULL,
    issued_at timestamp with time zone NOT NULL,
    CONSTRAINT invoices_status_check CHECK ((status = ANY (ARRAY['open'::text, 'paid'::text, 'payment_failed'::text, 'uncollectible'::text, 'void'::text]))),
    CONSTRAINT invoices_total_minor_check CHECK ((total_minor >= 0))
);
CREATE TABLE billing.quality_acknowledgements (
    gate text NOT NULL,
    check_name text NOT NULL,
    as_of timestamp with time zone NOT NULL,
    reason text NOT NULL,
    acknowledged_by text NOT NULL,
    acknowledged_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT quality_acknowledgements_reason_check CHECK ((btrim(reason) <> ''::text))
);
CREATE TABLE billing.quality_results (
    run_label text NOT NULL,
    gate text NOT NULL,
    check_name text NOT NULL,
    expectation text NOT NULL,
    success boolean NOT NULL,
    observed jsonb NOT NULL,
    checked_at timestamp with time zone DEFAULT now() NOT NULL,
    acknowledged boolean DEFAULT false NOT NULL
);
CREATE TABLE billing.sandbox_gateway_charges (
    idempotency_key text NOT NULL,
    payment_method_id text NOT NULL,
    amount_minor bigint NOT NULL,
    currency text NOT NULL,
    succeeded boolean NOT NULL,
    failure_code text,
    gateway_charge_id text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE billing.webhook_deliveries (
    event_id text NOT NULL,
    endpoint_id text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    attempt_count integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    delivered_at timestamp with time zone,
    last_error text,
    attempts_before_replay integer DEFAULT 0 NOT NULL,
    CONSTRAINT webhook_deliveries_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'delivered'::text, 'dead_lettered'::text])))
);
CREATE TABLE billing.webhook_delivery_attempts (
    event_id text NOT NULL,
    endpoint_id text NOT NULL,
    attempt_no integer NOT NULL,
    attempted_at timestamp with time zone NOT NULL,
    response_status integer,
    latency_ms integer NOT NULL,
    error text
);
CREATE TABLE billing.webhook_events (
    event_id text NOT NULL,
    event_type text NOT NULL,
    subject_id text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    data jsonb NOT NULL,
    fanned_out_at timestamp with time zone
);
CREATE TABLE raw.credit_grants (
    grant_id text NOT NULL,
    customer_id text NOT NULL,
    currency text NOT NULL,
    amount numeric NOT NULL,
    granted_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone
);
CREATE TABLE raw.customers (
    customer_id text NOT NULL,
    name text NOT NULL,
    email text,
    currency text NOT NULL,
    timezone text DEFAULT 'UTC'::text NOT NULL,
    collection_method text NOT NULL,
    payment_method_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE raw.meters (
    event_name text NOT NULL,
    display_name text NOT NULL,
    description text,
    aggregation text NOT NULL,
    property text,
    unit text
);
CREATE TABLE raw.plan_charge_tiers (
    plan_id text NOT NULL,
    event_name text NOT NULL,
    tier integer NOT NULL,
    up_to numeric,
    unit_price numeric NOT NULL,
    flat_fee numeric DEFAULT 0 NOT NULL
);
CREATE TABLE raw.plan_charges (
    plan_id text NOT NULL,
    event_name text NOT NULL,
    pricing_model text NOT NULL,
    unit_price numeric,
    included_units numeric DEFAULT 0 NOT NULL,
    package_size numeric,
    percentage_rate numeric,
    fixed_fee_per_event numeric DEFAULT 0 NOT NULL,
    alert_thresholds integer[]
);
CREATE TABLE raw.plans (
    plan_id text NOT NULL,
    name text NOT NULL,
    currency text NOT NULL,
    "interval" text NOT NULL,
    base_fee numeric DEFAULT 0 NOT NULL
);
CREATE TABLE raw.subscriptions (
    subscription_id text NOT NULL,
    customer_id text NOT NULL,
    plan_id text NOT NULL,
    started_at timestamp with time zone NOT NULL,
    ended_at timestamp with time zone,
    billing_anchor_day smallint
);
CREATE TABLE raw.usage_events (
    reference text,
    customer_id text,
    event_name text,
    value numeric,
    properties jsonb,
    action text,
    occurred_at timestamp with time zone,
    ingested_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE SEQUENCE raw.usage_events_rewrites
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
CREATE TABLE raw.webhook_endpoints (
    endpoint_id text NOT NULL,
    url text NOT NULL,
    secret text NOT NULL,
    event_types text[],
    enabled boolean DEFAULT true NOT NULL,
    previous_secret text,
    previous_secret_expires_at timestamp with time zone
);
INSERT INTO billing.charge_attempts VALUES ('ch_a828b946de2910ca6d2969edaa9fb62c', 'in_6460bd27f6ac85edd8ee3286', 1, 'pm_card_visa', 1200, 'USD', 'succeeded', NULL, 'sbch_6bfaf2022f6f83bfd5254cdfb5c0a12b', '2026-03-01 02:00:00+00', '2026-12-03 20:27:31.074867+00', '2026-12-03 20:27:31.103932+00');
INSERT INTO billing.invoice_lines VALUES ('in_6460bd27f6ac85edd8ee3286', 1, 'base_fee', NULL, 'Pro base fee', 1, NULL, 1000, '{"base_fee": 10, "regular_end": "2026-02-28T15:00:00+00:00", "regular_start": "2026-01-31T15:00:00+00:00", "period_fraction": 1}');
INSERT INTO billing.invoice_lines VALUES ('in_6460bd27f6ac85edd8ee3286', 2, 'usage', 'api_call', 'API calls', 200, 0, 200, '{"unit_price": 0.01, "count_events": 1, "pricing_model": "per_unit", "billable_units": 200}');
INSERT INTO billing.invoice_lines VALUES ('in_82e75521f46b8e0044e8df13', 1, 'base_fee', NULL, 'Pro base fee', 1, NULL, 1000, '{"base_fee": 10, "regular_end": "2026-03-01T00:00:00+00:00", "regular_start": "2026-02-01T00:00:00+00:00", "period_fraction": 1}');
INSERT INTO billing.invoice_lines VALUES ('in_82e75521f46b8e0044e8df13', 2, 'usage', 'api_call', 'API calls', 500, 0, 500, '{"unit_price": 0.01, "count_events": 1, "pricing_model": "per_unit", "billable_units": 500}');
INSERT INTO billing.invoices VALUES ('in_82e75521f46b8e0044e8df13', 'INV-000002', 'utc_co', 's_utc', '2026-02-01 00:00:00+00', '2026-03-01 00:00:00+00', 'USD', 1500, 0, 1500, 'open', '2026-12-03 20:27:30.462673+00');
INSERT INTO billing.invoices VALUES ('in_6460bd27f6ac85edd8ee3286', 'INV-000001', 'tokyo_co', 's_tokyo', '2026-01-31 15:00:00+00', '2026-02-28 15:00:00+00', 'USD', 1200, 0, 1200, 'paid', '2026-12-03 20:27:30.462673+00');
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'credit_grants__columns', 'expect_column_values_to_not_be_null(column=grant_id)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["grant_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'credit_grants__columns', 'expect_column_values_to_be_unique(column=grant_id)', true, '{"element_count": 0, "missing_count": 0, "missing_percent": null, "unexpected_count": 0, "unexpected_percent": null, "partial_unexpected_list": [], "unexpected_percent_total": null, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["grant_id"], "unexpected_percent_nonmissing": null}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'credit_grants__columns', 'expect_column_values_to_not_be_null(column=customer_id)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["grant_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'credit_grants__columns', 'expect_column_values_to_not_be_null(column=currency)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["grant_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'credit_grants__columns', 'expect_column_values_to_not_be_null(column=amount)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["grant_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'credit_grants__columns', 'expect_column_values_to_be_between(column=amount, min_value=0)', true, '{"element_count": 0, "missing_count": 0, "missing_percent": null, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "unexpected_percent_total": null, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["grant_id"], "unexpected_percent_nonmissing": null}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'credit_grants__columns', 'expect_column_values_to_not_be_null(column=granted_at)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["grant_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'credit_grants__customer_id_references_customers', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'credit_grants__currency_is_iso_4217', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'customers__columns', 'expect_column_values_to_not_be_null(column=customer_id)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["customer_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'customers__columns', 'expect_column_values_to_be_unique(column=customer_id)', true, '{"element_count": 2, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["customer_id"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'customers__columns', 'expect_column_values_to_not_be_null(column=name)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["customer_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'customers__columns', 'expect_column_values_to_not_be_null(column=currency)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["customer_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'customers__columns', 'expect_column_values_to_not_be_null(column=timezone)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["customer_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'customers__columns', 'expect_column_values_to_not_be_null(column=collection_method)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["customer_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'customers__columns', 'expect_column_values_to_be_in_set(column=collection_method, value_set=[auto_charge, request_payment])', true, '{"element_count": 2, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["customer_id"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'customers__columns', 'expect_column_values_to_not_be_null(column=created_at)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["customer_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'customers__currency_is_iso_4217', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'customers__timezone_is_iana_timezone', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'meters__columns', 'expect_column_values_to_not_be_null(column=event_name)', true, '{"element_count": 1, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["event_name"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'meters__columns', 'expect_column_values_to_match_regex(column=event_name, regex=^[a-z][a-z0-9_]*$)', true, '{"element_count": 1, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["event_name"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'meters__columns', 'expect_column_values_to_be_unique(column=event_name)', true, '{"element_count": 1, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["event_name"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'meters__columns', 'expect_column_values_to_not_be_null(column=display_name)', true, '{"element_count": 1, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["event_name"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'meters__columns', 'expect_column_values_to_not_be_null(column=aggregation)', true, '{"element_count": 1, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["event_name"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'meters__columns', 'expect_column_values_to_be_in_set(column=aggregation, value_set=[count, sum, count_unique, max, min, average, last_during_period, last_ever, time_duration, weighted_sum, markup_percentage])', true, '{"element_count": 1, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["event_name"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'meters__property_is_named_where_read', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__columns', 'expect_column_values_to_not_be_null(column=plan_id)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name", "tier"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__columns', 'expect_column_values_to_not_be_null(column=event_name)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name", "tier"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__columns', 'expect_column_values_to_not_be_null(column=tier)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name", "tier"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__columns', 'expect_column_values_to_be_between(column=tier, min_value=1)', true, '{"element_count": 0, "missing_count": 0, "missing_percent": null, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "unexpected_percent_total": null, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name", "tier"], "unexpected_percent_nonmissing": null}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__columns', 'expect_column_values_to_be_between(column=up_to, min_value=0)', true, '{"element_count": 0, "missing_count": 0, "missing_percent": null, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "unexpected_percent_total": null, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name", "tier"], "unexpected_percent_nonmissing": null}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__columns', 'expect_column_values_to_not_be_null(column=unit_price)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name", "tier"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__columns', 'expect_column_values_to_be_between(column=unit_price, min_value=0)', true, '{"element_count": 0, "missing_count": 0, "missing_percent": null, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "unexpected_percent_total": null, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name", "tier"], "unexpected_percent_nonmissing": null}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__columns', 'expect_column_values_to_not_be_null(column=flat_fee)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name", "tier"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__columns', 'expect_column_values_to_be_between(column=flat_fee, min_value=0)', true, '{"element_count": 0, "missing_count": 0, "missing_percent": null, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "unexpected_percent_total": null, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name", "tier"], "unexpected_percent_nonmissing": null}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__columns', 'expect_compound_columns_to_be_unique(column_list=[plan_id, event_name, tier])', true, '{"element_count": 0, "missing_count": 0, "missing_percent": null, "unexpected_count": 0, "unexpected_percent": null, "partial_unexpected_list": [], "unexpected_percent_total": null, "partial_unexpected_counts": [], "unexpected_index_column_names": ["plan_id", "event_name", "tier"], "unexpected_percent_nonmissing": null}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__plan_id_references_plans', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__event_name_references_meters', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__last_tier_is_unbounded', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charge_tiers__tiers_are_ordered', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__columns', 'expect_column_values_to_not_be_null(column=plan_id)', true, '{"element_count": 1, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__columns', 'expect_column_values_to_not_be_null(column=event_name)', true, '{"element_count": 1, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__columns', 'expect_column_values_to_not_be_null(column=pricing_model)', true, '{"element_count": 1, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__columns', 'expect_column_values_to_be_in_set(column=pricing_model, value_set=[per_unit, graduated, volume, package, percentage])', true, '{"element_count": 1, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__columns', 'expect_column_values_to_be_between(column=unit_price, min_value=0)', true, '{"element_count": 1, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__columns', 'expect_column_values_to_not_be_null(column=included_units)', true, '{"element_count": 1, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__columns', 'expect_column_values_to_be_between(column=included_units, min_value=0)', true, '{"element_count": 1, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__columns', 'expect_column_values_to_be_between(column=package_size, min_value=0)', true, '{"element_count": 1, "missing_count": 1, "missing_percent": 100.0, "unexpected_count": 0, "unexpected_percent": null, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name"], "unexpected_percent_nonmissing": null}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__columns', 'expect_column_values_to_be_between(column=percentage_rate, min_value=0)', true, '{"element_count": 1, "missing_count": 1, "missing_percent": 100.0, "unexpected_count": 0, "unexpected_percent": null, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name"], "unexpected_percent_nonmissing": null}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__columns', 'expect_column_values_to_not_be_null(column=fixed_fee_per_event)', true, '{"element_count": 1, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__columns', 'expect_column_values_to_be_between(column=fixed_fee_per_event, min_value=0)', true, '{"element_count": 1, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id", "event_name"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__columns', 'expect_compound_columns_to_be_unique(column_list=[plan_id, event_name])', true, '{"element_count": 1, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "unexpected_index_column_names": ["plan_id", "event_name"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__plan_id_references_plans', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__event_name_references_meters', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plan_charges__pricing_model_has_its_prices', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plans__columns', 'expect_column_values_to_not_be_null(column=plan_id)', true, '{"element_count": 1, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plans__columns', 'expect_column_values_to_be_unique(column=plan_id)', true, '{"element_count": 1, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plans__columns', 'expect_column_values_to_not_be_null(column=name)', true, '{"element_count": 1, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plans__columns', 'expect_column_values_to_not_be_null(column=currency)', true, '{"element_count": 1, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plans__columns', 'expect_column_values_to_not_be_null(column=interval)', true, '{"element_count": 1, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plans__columns', 'expect_column_values_to_be_in_set(column=interval, value_set=[month, year])', true, '{"element_count": 1, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plans__columns', 'expect_column_values_to_not_be_null(column=base_fee)', true, '{"element_count": 1, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plans__columns', 'expect_column_values_to_be_between(column=base_fee, min_value=0)', true, '{"element_count": 1, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["plan_id"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'plans__currency_is_iso_4217', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'subscriptions__columns', 'expect_column_values_to_not_be_null(column=subscription_id)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["subscription_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'subscriptions__columns', 'expect_column_values_to_be_unique(column=subscription_id)', true, '{"element_count": 2, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["subscription_id"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'subscriptions__columns', 'expect_column_values_to_not_be_null(column=customer_id)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["subscription_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'subscriptions__columns', 'expect_column_values_to_not_be_null(column=plan_id)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["subscription_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'subscriptions__columns', 'expect_column_values_to_not_be_null(column=started_at)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["subscription_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'subscriptions__columns', 'expect_column_values_to_be_between(column=billing_anchor_day, min_value=1, max_value=31)', true, '{"element_count": 2, "missing_count": 1, "missing_percent": 50.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["subscription_id"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'subscriptions__customer_id_references_customers', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'subscriptions__plan_id_references_plans', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'subscriptions__one_active_subscription_per_customer', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'subscriptions__ends_after_it_starts', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'subscriptions__plan_currency_is_the_customers', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'webhook_endpoints__columns', 'expect_column_values_to_not_be_null(column=endpoint_id)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["endpoint_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'webhook_endpoints__columns', 'expect_column_values_to_be_unique(column=endpoint_id)', true, '{"element_count": 0, "missing_count": 0, "missing_percent": null, "unexpected_count": 0, "unexpected_percent": null, "partial_unexpected_list": [], "unexpected_percent_total": null, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["endpoint_id"], "unexpected_percent_nonmissing": null}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'webhook_endpoints__columns', 'expect_column_values_to_not_be_null(column=url)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["endpoint_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'webhook_endpoints__columns', 'expect_column_values_to_match_regex(column=url, regex=^https?://)', true, '{"element_count": 0, "missing_count": 0, "missing_percent": null, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "unexpected_percent_total": null, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["endpoint_id"], "unexpected_percent_nonmissing": null}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'webhook_endpoints__columns', 'expect_column_values_to_not_be_null(column=secret)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["endpoint_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'webhook_endpoints__columns', 'expect_column_values_to_not_be_null(column=enabled)', true, '{"element_count": 0, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["endpoint_id"]}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'webhook_endpoints__secret_matches_its_pattern', 'expect_column_values_to_be_in_set(column=matches_pattern, value_set=[True])', true, '{"element_count": 0, "missing_count": 0, "missing_percent": null, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "unexpected_percent_total": null, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["endpoint_id"], "unexpected_percent_nonmissing": null}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'raw_contracts', 'webhook_endpoints__previous_secret_matches_its_pattern', 'expect_column_values_to_be_in_set(column=matches_pattern, value_set=[True])', true, '{"element_count": 0, "missing_count": 0, "missing_percent": null, "unexpected_count": null, "unexpected_percent": null, "partial_unexpected_list": [], "unexpected_percent_total": null, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["endpoint_id"], "unexpected_percent_nonmissing": null}', '2026-12-03 20:27:09.385706+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'events_are_complete', 'expect_column_values_to_be_unique(column=reference)', true, '{"element_count": 2, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["reference"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'events_are_complete', 'expect_column_values_to_not_be_null(column=reference)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["reference"]}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'events_are_complete', 'expect_column_values_to_not_be_null(column=customer_id)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["reference"]}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'events_are_complete', 'expect_column_values_to_not_be_null(column=subscription_id)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["reference"]}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'events_are_complete', 'expect_column_values_to_not_be_null(column=plan_id)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["reference"]}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'events_are_complete', 'expect_column_values_to_not_be_null(column=event_name)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["reference"]}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'events_are_complete', 'expect_column_values_to_not_be_null(column=aggregation)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["reference"]}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'events_are_complete', 'expect_column_values_to_not_be_null(column=action)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["reference"]}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'events_are_complete', 'expect_column_values_to_not_be_null(column=occurred_at)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["reference"]}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'events_are_complete', 'expect_column_values_to_not_be_null(column=ingested_at)', true, '{"element_count": 2, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["reference"]}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'values_are_in_range', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'timestamps_are_inside_the_window', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'reject_rate_is_below_threshold', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'closing_events', 'volume_is_within_band_of_recent_periods', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:24.749053+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'draft_invoices', 'totals_equal_the_sum_of_lines', 'expect_column_pair_values_to_be_equal(column_A=subtotal_minor, column_B=lines_total_minor)', true, '{"element_count": 2, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["invoice_id"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:30.049479+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'draft_invoices', 'no_negative_totals', 'expect_column_values_to_be_between(column=charges_minor, min_value=0)', true, '{"element_count": 2, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["invoice_id"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:30.049479+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'draft_invoices', 'no_negative_totals', 'expect_column_values_to_be_between(column=smallest_line_minor, min_value=0)', true, '{"element_count": 2, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["invoice_id"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:30.049479+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'draft_invoices', 'one_draft_per_subscription_period', 'expect_column_values_to_be_unique(column=invoice_id)', true, '{"element_count": 2, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["invoice_id"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:30.049479+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'draft_invoices', 'one_draft_per_subscription_period', 'expect_compound_columns_to_be_unique(column_list=[subscription_id, period_start])', true, '{"element_count": 2, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "unexpected_index_column_names": ["invoice_id"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:30.049479+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'draft_invoices', 'currency_is_the_plans', 'expect_column_pair_values_to_be_equal(column_A=currency, column_B=plan_currency)', true, '{"element_count": 2, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": ["invoice_id"], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:30.049479+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'draft_invoices', 'every_active_subscription_has_a_draft', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:30.049479+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'draft_invoices', 'usage_events_reconcile', 'expect_column_pair_values_to_be_equal(column_A=raw_rows, column_B=accounted_for)', true, '{"element_count": 1, "missing_count": 0, "missing_percent": 0.0, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": [], "unexpected_percent_total": 0.0, "partial_unexpected_counts": [], "partial_unexpected_index_list": [], "unexpected_index_column_names": [], "unexpected_percent_nonmissing": 0.0}', '2026-12-03 20:27:30.049479+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'draft_invoices', 'draft_quantities_match_the_events', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:30.049479+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'ledger', 'no_invoice_with_two_successful_charges', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:30.724512+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'ledger', 'charged_amount_equals_invoice_total', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:30.724512+00', false);
INSERT INTO billing.quality_results VALUES ('as_of=2026-03-01T02:00:00+00:00', 'ledger', 'chargeable_invoices_equal_their_lines', 'expect_table_row_count_to_equal(value=0)', true, '{"observed_value": 0}', '2026-12-03 20:27:30.724512+00', false);
INSERT INTO billing.sandbox_gateway_charges VALUES ('ch_a828b946de2910ca6d2969edaa9fb62c', 'pm_card_visa', 1200, 'USD', true, NULL, 'sbch_6bfaf2022f6f83bfd5254cdfb5c0a12b', '2026-12-03 20:27:31.09439+00');
INSERT INTO billing.webhook_events VALUES ('msg_910e3bef32b9356c4e66a7033494954b', 'billing.invoice.generated', 'in_82e75521f46b8e0044e8df13', '2026-12-03 20:27:30.462673+00', '{"status": "open", "currency": "USD", "invoice_id": "in_82e75521f46b8e0044e8df13", "period_end": "2026-03-01T00:00:00Z", "customer_id": "utc_co", "total_minor": 1500, "period_start": "2026-02-01T00:00:00Z", "credits_minor": 0, "invoice_number": "INV-000002", "subtotal_minor": 1500, "subscription_id": "s_utc"}', '2026-12-03 20:27:31.220053+00');
INSERT INTO billing.webhook_events VALUES ('msg_3ce122d4613ff337642d3a3e00ef598c', 'billing.charge.succeeded', 'ch_a828b946de2910ca6d2969edaa9fb62c', '2026-12-03 20:27:31.103932+00', '{"invoice": {"status": "paid", "currency": "USD", "invoice_id": "in_6460bd27f6ac85edd8ee3286", "period_end": "2026-02-28T15:00:00Z", "customer_id": "tokyo_co", "total_minor": 1200, "period_start": "2026-01-31T15:00:00Z", "credits_minor": 0, "invoice_number": "INV-000001", "subtotal_minor": 1200, "subscription_id": "s_tokyo"}, "currency": "USD", "attempt_no": 1, "amount_minor": 1200, "failure_code": null, "gateway_charge_id": "sbch_6bfaf2022f6f83bfd5254cdfb5c0a12b"}', '2026-12-03 20:27:31.220053+00');
INSERT INTO billing.webhook_events VALUES ('msg_88ef91e5ea4fce9f991c21ee1185a995', 'billing.invoice.generated', 'in_6460bd27f6ac85edd8ee3286', '2026-12-03 20:27:31.103932+00', '{"status": "paid", "currency": "USD", "invoice_id": "in_6460bd27f6ac85edd8ee3286", "period_end": "2026-02-28T15:00:00Z", "customer_id": "tokyo_co", "total_minor": 1200, "period_start": "2026-01-31T15:00:00Z", "credits_minor": 0, "invoice_number": "INV-000001", "subtotal_minor": 1200, "subscription_id": "s_tokyo"}', '2026-12-03 20:27:31.220053+00');
INSERT INTO raw.customers VALUES ('tokyo_co', 'Tokyo Co', NULL, 'USD', 'Asia/Tokyo', 'auto_charge', 'pm_card_visa', '2026-12-03 20:26:47.926866+00');
INSERT INTO raw.customers VALUES ('utc_co', 'UTC Co', NULL, 'USD', 'UTC', 'request_payment', NULL, '2026-12-03 20:26:47.926866+00');
INSERT INTO raw.meters VALUES ('api_call', 'API calls', NULL, 'sum', NULL, NULL);
INSERT INTO raw.plan_charges VALUES ('pro', 'api_call', 'per_unit', 0.01, 0, NULL, NULL, 0, NULL);
INSERT INTO raw.plans VALUES ('pro', 'Pro', 'USD', 'month', 10);
INSERT INTO raw.subscriptions VALUES ('s_tokyo', 'tokyo_co', 'pro', '2026-01-31 15:00:00+00', NULL, 1);
INSERT INTO raw.subscriptions VALUES ('s_utc', 'utc_co', 'pro', '2026-02-01 00:00:00+00', NULL, NULL);
INSERT INTO raw.usage_events VALUES ('t1', 'tokyo_co', 'api_call', 200, NULL, NULL, '2026-02-10 00:00:00+00', '2026-12-03 20:26:48.953898+00');
INSERT INTO raw.usage_events VALUES ('u1', 'utc_co', 'api_call', 500, NULL, NULL, '2026-02-15 00:00:00+00', '2026-12-03 20:26:48.953898+00');
SELECT pg_catalog.setval('raw.usage_events_rewrites', 1, false);
ALTER TABLE ONLY billing.charge_attempts
    ADD CONSTRAINT charge_attempts_invoice_id_attempt_no_key UNIQUE (invoice_id, attempt_no);
ALTER TABLE ONLY billing.charge_attempts
    ADD CONSTRAINT charge_attempts_pkey PRIMARY KEY (idempotency_key);
ALTER TABLE ONLY billing.credit_applications
    ADD CONSTRAINT credit_applications_pkey PRIMARY KEY (grant_id, invoice_id);
ALTER TABLE ONLY billing.invoice_lines
    ADD CONSTRAINT invoice_lines_pkey PRIMARY KEY (invoice_id, line_no);
ALTER TABLE ONLY billing.invoices
    ADD CONSTRAINT invoices_invoice_number_key UNIQUE (invoice_number);
ALTER TABLE ONLY billing.invoices
    ADD CONSTRAINT invoices_pkey PRIMARY KEY (invoice_id);
ALTER TABLE ONLY billing.invoices
    ADD CONSTRAINT invoices_subscription_id_period_start_key UNIQUE (subscription_id, period_start);
ALTER TABLE ONLY billing.quality_acknowledgements
    ADD CONSTRAINT quality_acknowledgements_pkey PRIMARY KEY (gate, check_name, as_of);
ALTER TABLE ONLY billing.sandbox_gateway_charges
    ADD CONSTRAINT sandbox_gateway_charges_pkey PRIMARY KEY (idempotency_key);
ALTER TABLE ONLY billing.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (event_id, endpoint_id);
ALTER TABLE ONLY billing.webhook_delivery_attempts
    ADD CONSTRAINT webhook_delivery_attempts_pkey PRIMARY KEY (event_id, endpoint_id, attempt_no);
ALTER TABLE ONLY billing.webhook_events
    ADD CONSTRAINT webhook_events_pkey PRIMARY KEY (event_id);
ALTER TABLE ONLY raw.credit_grants
    ADD CONSTRAINT credit_grants_pkey PRIMARY KEY (grant_id);
ALTER TABLE ONLY raw.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (customer_id);
ALTER TABLE ONLY raw.meters
    ADD CONSTRAINT meters_pkey PRIMARY KEY (event_name);
ALTER TABLE ONLY raw.plan_charge_tiers
    ADD CONSTRAINT plan_charge_tiers_pkey PRIMARY KEY (plan_id, event_name, tier);
ALTER TABLE ONLY raw.plan_charges
    ADD CONSTRAINT plan_charges_pkey PRIMARY KEY (plan_id, event_name);
ALTER TABLE ONLY raw.plans
    ADD CONSTRAINT plans_pkey PRIMARY KEY (plan_id);
ALTER TABLE ONLY raw.subscriptions
    ADD CONSTRAINT subscriptions_pkey PRIMARY KEY (subscription_id);
ALTER TABLE ONLY raw.webhook_endpoints
    ADD CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (endpoint_id);
CREATE INDEX quality_results_by_run ON billing.quality_results USING btree (run_label, gate, checked_at);
CREATE INDEX webhook_deliveries_due ON billing.webhook_deliveries USING btree (next_attempt_at) WHERE (status = 'pending'::text);
CREATE INDEX webhook_deliveries_due_by_endpoint ON billing.webhook_deliveries USING btree (endpoint_id, next_attempt_at) WHERE (status = 'pending'::text);
CREATE INDEX webhook_events_awaiting_fan_out ON billing.webhook_events USING btree (created_at) WHERE (fanned_out_at IS NULL);
CREATE INDEX subscriptions__customer_id__started_at_idx ON raw.subscriptions USING btree (customer_id, started_at);
CREATE INDEX usage_events__ingested_at_idx ON raw.usage_events USING btree (ingested_at);
CREATE TRIGGER usage_events_rewritten AFTER DELETE OR UPDATE OR TRUNCATE ON raw.usage_events FOR EACH STATEMENT EXECUTE FUNCTION raw.count_usage_events_rewrite();
ALTER TABLE ONLY billing.charge_attempts
    ADD CONSTRAINT charge_attempts_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES billing.invoices(invoice_id);
ALTER TABLE ONLY billing.credit_applications
    ADD CONSTRAINT credit_applications_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES billing.invoices(invoice_id);
ALTER TABLE ONLY billing.invoice_lines
    ADD CONSTRAINT invoice_lines_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES billing.invoices(invoice_id);
ALTER TABLE ONLY billing.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_event_id_fkey FOREIGN KEY (event_id) REFERENCES billing.webhook_events(event_id);
ALTER TABLE ONLY billing.webhook_delivery_attempts
    ADD CONSTRAINT webhook_delivery_attempts_event_id_endpoint_id_fkey FOREIGN KEY (event_id, endpoint_id) REFERENCES billing.webhook_deliveries(event_id, endpoint_id);
