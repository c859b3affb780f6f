"""`billing catalog apply`: validated against the data contracts, all or nothing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from billing.catalog import CatalogError, apply_catalog
from conftest import query, reset_warehouse, run_cli

VALID = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
plans:
  - plan_id: tiered
    name: Tiered
    currency: EUR
    interval: month
    base_fee: 19.99
    charges:
      - event_name: api_call
        pricing_model: graduated
        tiers:
          - {up_to: 10000, unit_price: 0.02}
          - {up_to: 50000, unit_price: 0.01}
          - {up_to: null, unit_price: 0.005}
customers:
  - {customer_id: c1, name: C One, currency: eur, timezone: Europe/Berlin, collection_method: request_payment}
subscriptions:
  - {subscription_id: s1, customer_id: c1, plan_id: tiered, started_at: "2026-06-01T00:00:00+02:00"}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


def test_valid_catalog_is_upserted_with_exact_numbers(warehouse, tmp_path):
    reset_warehouse()
    written = apply_catalog(write(tmp_path, VALID))
    assert written == {
        "meters": 1, "plans": 1, "plan_charges": 1, "plan_charge_tiers": 3, "customers": 1, "subscriptions": 1,
    }
    assert query("select tier, up_to, unit_price from raw.plan_charge_tiers order by tier") == [
        (1, Decimal("10000"), Decimal("0.02")), (2, Decimal("50000"), Decimal("0.01")), (3, None, Decimal("0.005")),
    ]
    assert query("select base_fee, currency from raw.plans") == [(Decimal("19.99"), "EUR")]
    assert query("select currency from raw.customers") == [("EUR",)]
    # applying it again changes nothing
    apply_catalog(write(tmp_path, VALID))
    assert query("select count(*) from raw.plan_charge_tiers") == [(3,)]


@pytest.mark.parametrize("change, message", [
    (("aggregation: sum", "aggregation: median"), "meters[0].aggregation (line 3): Input should be 'count', 'sum',"),
    (("pricing_model: graduated", "pricing_model: tiered"), "plans[0].charges[0].pricing_model (line 12): Input should"
     " be 'per_unit', 'graduated', 'volume', 'package' or 'percentage', got 'tiered'"),
    # the contracts' table rules, judged on the rows as written, reported at the offending entry
    (("{up_to: null, unit_price: 0.005}", "{up_to: 90000, unit_price: 0.005}"),
     "plans[0].charges[0].tiers[2] (line 16): rule last_tier_is_unbounded"),
    (("{up_to: 50000, unit_price: 0.01}", "{up_to: 5000, unit_price: 0.01}"),
     "plans[0].charges[0].tiers[1] (line 15): rule tiers_are_ordered"),
    (("currency: eur", "currency: usd"), "subscriptions[0] (line 20): rule plan_currency_is_the_customers"),
    (("aggregation: sum}", "aggregation: count_unique}"), "meters[0] (line 3): rule property_is_named_where_read"),
    (("aggregation: sum}", "aggregation: time_duration, property: ' '}"),
     "meters[0] (line 3): rule property_is_named_where_read"),
    # SPEC §16: only sums and counts can be synced; Stripe bills only customers it knows
    (("aggregation: sum}", "aggregation: max, stripe_meter_event_name: stripe_calls}"),
     "meters[0] (line 3): rule synced_meter_sums_or_counts (A count_unique/max/min/average/last/stateful meter"
     " cannot be synced to Stripe: "),
    (("    interval: month\n", "    interval: month\n    invoiced_by: stripe\n"),
     "customers[0] (line 19): rule stripe_invoiced_customer_has_a_stripe_id"),
    (("    interval: month\n", "    interval: month\n    invoiced_by: paypal\n"),
     "plans[0].invoiced_by (line 9): Input should be 'warehouse' or 'stripe', got 'paypal'"),
    (("Europe/Berlin", "Europe/Atlantis"),
     "customers[0].timezone (line 18): 'Europe/Atlantis' is not an IANA timezone"),
    (("currency: EUR", "currency: EURO"), "plans[0].currency (line 7): 'EURO' is not a supported ISO 4217 currency"),
    (("- event_name: api_call\n", "- event_name: api_calls\n"),
     "plans[0].charges[0].event_name (line 11): unknown meter 'api_calls'"),
    (("started_at: \"2026-06-01T00:00:00+02:00\"", "started_at: \"2026-06-01\""),
     "subscriptions[0].started_at (line 20): Input should have timezone info, got '2026-06-01'"),
    (("base_fee: 19.99", "base_fee: lots"), "plans[0].base_fee (line 9): Input should be a valid decimal, got 'lots'"),
    (("    name: Tiered\n", ""), "plans[0] (line 5): 'name' is required"),
    (("aggregation: sum}", "aggregation: sum, unit: calls, colour: red}"), "meters[0] (line 3): unknown key 'colour'"),
    # a key given twice: YAML would keep the last, changing the price without a word
    (("    base_fee: 19.99\n", "    base_fee: 19.99\n    base_fee: 1999\n"),
     "key 'base_fee' is given twice (lines 9 and 10)"),
    # an entry given twice: the upsert would merge the two into one row
    (("collection_method: request_payment}\n",
      "collection_method: request_payment}\n  - {customer_id: c1, name: C Again, currency: eur,"
      " collection_method: auto_charge}\n"),
     "customers[1] (line 19): customer_id 'c1' is given again; first at customers[0] (line 18)"),
    (("base_fee: 19.99", "base_fee: .inf"),
     "plans[0].base_fee (line 9): Input should be a finite number, got Infinity"),
    (("      - event_name: api_call\n        pricing_model: graduated\n", "      - per_unit api_call\n"
      "      - event_name: api_call\n        pricing_model: graduated\n"),
     "plans[0].charges[0] (line 11): expected a mapping, got 'per_unit api_call'"),
    (("        tiers:\n          - {up_to: 10000, unit_price: 0.02}\n          - {up_to: 50000, unit_price: 0.01}\n"
      "          - {up_to: null, unit_price: 0.005}\n", "        tiers: {up_to: null, unit_price: 0.005}\n"),
     "plans[0].charges[0].tiers (line 13): expected a list, got a mapping"),
    # usage limits (SPEC §15)
    (("pricing_model: graduated\n", "pricing_model: graduated\n        limit_behavior: block\n"),
     "plans[0].charges[0].limit_behavior (line 13): Input should be 'notify', 'soft' or 'hard', got 'block'"),
    (("pricing_model: graduated\n", "pricing_model: graduated\n        usage_limit: -1\n"),
     "plans[0].charges[0].usage_limit (line 13): Input should be greater than or equal to 0"),
    (("      - event_name: api_call\n        pricing_model: graduated\n        tiers:\n"
      "          - {up_to: 10000, unit_price: 0.02}\n          - {up_to: 50000, unit_price: 0.01}\n"
      "          - {up_to: null, unit_price: 0.005}\n",
      "      - {event_name: api_call, pricing_model: percentage, percentage_rate: 2.9, usage_limit: 100,"
      " limit_behavior: hard}\n"),
     "plans[0].charges[0] (line 11): rule hard_limit_caps_a_quantity"),
    (("customers:\n", "webhook_endpoints:\n  - {endpoint_id: e1, url: 'https://example.com/hook',"
      " secret: 'whsec_dGVzdA==', event_types: [billing.subscriber_limit.reached, billing.limit.reached]}\n"
      "customers:\n"),
     "webhook_endpoints[0].event_types (line 18): unknown event type billing.limit.reached;"),
    (("customers:\n", "webhook_endpoints:\n  - {endpoint_id: e1, url: 'https://example.com/hook',"
      " secret: 'whsec_not*base64!'}\ncustomers:\n"),
     "webhook_endpoints[0].secret (line 18): not a Standard Webhooks secret (whsec_ then base64)"),
])
def test_invalid_catalog_is_refused_with_its_place_and_nothing_written(warehouse, tmp_path, change, message):
    reset_warehouse()
    with pytest.raises(CatalogError) as refused:
        apply_catalog(write(tmp_path, VALID.replace(*change)))
    assert message in str(refused.value)
    assert query("select count(*) from raw.meters") == [(0,)]


def test_cli_reports_every_problem_without_a_traceback(warehouse, tmp_path):
    reset_warehouse()
    text = VALID.replace("aggregation: sum", "aggregation: median").replace("interval: month", "interval: week")
    refused = run_cli("catalog", "apply", str(write(tmp_path, text)), check=False)
    assert refused.returncode == 1
    assert "meters[0].aggregation (line 3): Input should be 'count', 'sum'," in refused.stderr
    assert "plans[0].interval (line 8): Input should be 'month' or 'year', got 'week'" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_an_upsert_sets_the_fields_given_and_null_clears_one(warehouse, tmp_path):
    reset_warehouse()
    ended = VALID.replace('started_at: "2026-06-01T00:00:00+02:00"}',
                          'started_at: "2026-06-01T00:00:00+02:00", ended_at: "2026-09-01T00:00:00Z"}')
    apply_catalog(write(tmp_path, ended))
    assert query("select ended_at::text from raw.subscriptions") == [("2026-09-01 00:00:00+00",)]

    # left out: kept as stored (a file may update a few fields of a row)
    apply_catalog(write(tmp_path, VALID))
    assert query("select ended_at::text from raw.subscriptions") == [("2026-09-01 00:00:00+00",)]

    # given as null: cleared
    apply_catalog(write(tmp_path, ended.replace('ended_at: "2026-09-01T00:00:00Z"', "ended_at: null")))
    assert query("select ended_at from raw.subscriptions") == [(None,)]


def test_a_meter_names_its_property_as_stored(warehouse, tmp_path):
    """The rule is the contract's, judged on the row as written: an entry may leave a stored
    property out, but not clear it."""
    reset_warehouse()
    meter = "meters:\n  - {event_name: seats, display_name: Seats, aggregation: count_unique%s}\n"
    apply_catalog(write(tmp_path, meter % ", property: user_id"))
    apply_catalog(write(tmp_path, meter.replace("Seats,", "Seats used,") % ""))
    assert query("select display_name, property from raw.meters") == [("Seats used", "user_id")]

    with pytest.raises(CatalogError) as refused:
        apply_catalog(write(tmp_path, meter % ", property: null"))
    assert ("meters[0] (line 2): rule property_is_named_where_read (count_unique and time_duration read"
            " `properties ->> property`, so they name it.) broken by {event_name: seats, aggregation: count_unique,"
            " property: None}") in str(refused.value)
    assert query("select display_name, property from raw.meters") == [("Seats used", "user_id")]
