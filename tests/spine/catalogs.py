"""Catalogs more than one test module starts from (YAML text for `apply_catalog`)."""

# One meter, api_call, on the plan `pro`: $10 a month and $0.01 a call. Modules add their customers
# and subscriptions after it.
PRO_PLAN = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
plans:
  - plan_id: pro
    name: Pro
    currency: USD
    interval: month
    base_fee: 10
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.01}
"""

# One meter, api_call, on the plan `usage_usd`: $0.001 a call, no base fee.
USAGE_PLAN = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
plans:
  - plan_id: usage_usd
    name: Usage
    currency: USD
    interval: month
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.001}
"""

# One customer, `twice`, on that plan from June 2026 ...
TWICE = USAGE_PLAN + """
customers:
  - {customer_id: twice, name: Twice, currency: USD, collection_method: auto_charge, payment_method_id: pm_card_visa}
subscriptions:
  - {subscription_id: s_first, customer_id: twice, plan_id: usage_usd, started_at: "2026-06-01T00:00:00Z"}
"""
# ... and a second subscription the application wrote without ending the first: the raw contracts
# are broken (two subscriptions active at once), so the raw_contracts gate stops the close.
OVERLAPPING_SUBSCRIPTION = """
insert into raw.subscriptions (subscription_id, customer_id, plan_id, started_at, billing_anchor_day)
values ('s_second', 'twice', 'usage_usd', '2026-06-15T00:00:00Z', 1)
"""
