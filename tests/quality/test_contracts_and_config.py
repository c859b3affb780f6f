"""Contract format, contract-derived checks, the catalog running contract rules, quality configuration."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from billing.catalog import CatalogError, apply_catalog
from billing.contracts import ContractError, contracts, parse_contract
from billing.quality.config import QualityConfigError, load_quality_config
from conftest import query, reset_warehouse


def test_every_contract_parses_and_its_references_exist():
    found = contracts()
    assert found["usage_events"].on_violation == "quarantine"
    assert found["subscriptions"].by_name["customer_id"].referenced == ("customers", "customer_id")
    assert "one_active_subscription_per_customer" in [rule.name for rule in found["subscriptions"].rules]


@pytest.mark.parametrize("document, error", [
    ({"columns": [{"name": "a", "type": "text", "nullabel": False}]}, "nullabel"),
    ({"columns": [{"name": "a", "type": "text", "rule": "iso_4218"}]}, "unknown rule"),
    ({"columns": [{"name": "a", "type": "text"}], "primary_key": ["b"]}, "key column 'b'"),
    ({"columns": [{"name": "a", "type": "text"}], "on_violation": "ignore"}, "on_violation"),
    ({"columns": [{"name": "a", "type": "text"}],
      "rules": [{"name": "Bad Name", "description": "x", "query": "select 1"}]},
     "lower_snake_case"),
])
def test_malformed_contracts_are_refused(document, error):
    with pytest.raises((ContractError, TypeError), match=error):
        parse_contract({"table": "t", "description": "d", **document})


def test_raw_contracts_gate_is_generated_from_the_contracts():
    from billing.quality.contract_gate import raw_contracts_gate

    gate = raw_contracts_gate()
    names = [check.name for check in gate.checks]
    assert not any(name.startswith("usage_events__") for name in names)  # quarantined, not stopped
    for name in ("customers__columns", "customers__currency_is_iso_4217",
                 "customers__timezone_is_iana_timezone", "subscriptions__plan_id_references_plans",
                 "plan_charge_tiers__last_tier_is_unbounded", "subscriptions__one_active_subscription_per_customer"):
        assert name in names
    # a secret is checked without selecting its value
    [secret_check] = [check for check in gate.checks if check.name == "webhook_endpoints__secret_matches_its_pattern"]
    assert secret_check.query.startswith("select endpoint_id, secret ~ '^whsec_' as matches_pattern from")
    expectations = [type(item).__name__ for item in gate.checks[names.index("meters__columns")].expectations]
    assert "ExpectColumnValuesToMatchRegex" in expectations and "ExpectColumnValuesToBeInSet" in expectations


def test_catalog_apply_runs_the_contract_rules_and_writes_nothing_on_a_break(warehouse, tmp_path: Path):
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text("""
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
plans:
  - {plan_id: p, name: P, currency: USD, interval: month}
customers:
  - {customer_id: c, name: C, currency: USD, collection_method: request_payment}
subscriptions:
  - {subscription_id: s1, customer_id: c, plan_id: p, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s2, customer_id: c, plan_id: p, started_at: "2026-06-15T00:00:00Z"}
""")
    with pytest.raises(
        CatalogError,
        match=r"subscriptions\[0\] \(line 9\): rule one_active_subscription_per_customer .* "
              r"broken by \{customer_id: c, subscription_id: s1, overlapping_subscription_id: s2",
    ):
        apply_catalog(tmp_path / "catalog.yaml")
    assert query("select count(*) from raw.subscriptions") == [(0,)]


def test_quality_config_defaults_overrides_and_typos(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("BILLING_QUALITY_CONFIG", raising=False)
    assert load_quality_config(tmp_path / "absent.yml").closing_events.max_reject_rate == Decimal("0.05")

    path = tmp_path / "quality.yml"
    path.write_text("closing_events:\n  max_reject_rate: 0.2\n  future_tolerance: 10m\n"
                    "  volume: {min_ratio: null, history_periods: 6}\n  meters: {api_call: {max_value: 5e6}}\n")
    config = load_quality_config(path).closing_events
    assert (config.max_reject_rate, config.future_tolerance) == (Decimal("0.2"), "10 minutes")
    assert (config.volume.min_ratio, config.volume.max_ratio, config.volume.history_periods) == (None, Decimal("10"), 6)
    bounds = config.bounds_of("api_call")
    assert (bounds.max_value, bounds.has("max_value"), bounds.has("min_value")) == (Decimal("5E+6"), True, False)

    path.write_text("closing_events:\n  volume: {min_raito: 0.5}\n")
    with pytest.raises(QualityConfigError, match=r"closing_events\.volume \(line 2\): unknown key 'min_raito'"):
        load_quality_config(path)
    path.write_text("closing_events:\n  max_reject_rate: .nan\n  volume:\n    history_periods: 0\n")
    with pytest.raises(QualityConfigError) as refused:
        load_quality_config(path)
    assert str(refused.value) == (
        f"{path}: closing_events.max_reject_rate (line 2): Input should be a finite number, got NaN; "
        "closing_events.volume.history_periods (line 4): Input should be greater than or equal to 1, got 0"
    )
    monkeypatch.setenv("BILLING_QUALITY_CONFIG", str(tmp_path / "missing.yml"))
    with pytest.raises(QualityConfigError, match="does not exist"):
        load_quality_config()


def test_quality_cli_acknowledges_known_checks_only(warehouse):
    from billing.quality.commands import app
    from typer.testing import CliRunner

    runner = CliRunner()
    as_of = ["--as-of", "2026-07-01T01:00:00Z"]
    unknown = runner.invoke(app, ["acknowledge", "--gate", "ledger", "--check", "no_such_check", *as_of,
                                  "--reason", "x"])
    assert unknown.exit_code == 2 and "no_invoice_with_two_successful_charges" in unknown.output
    no_reason = runner.invoke(app, ["acknowledge", "--gate", "ledger", "--check", "charged_amount_equals_invoice_total",
                                    *as_of, "--reason", " "])
    assert no_reason.exit_code == 2

    done = runner.invoke(app, ["acknowledge", "--gate", "closing_events", "--check",
                               "volume_is_within_band_of_recent_periods",
                               *as_of, "--reason", "producer outage INC-42", "--by", "alice"])
    assert done.exit_code == 0, done.output
    assert query(
        "select gate, check_name, as_of, reason, acknowledged_by from billing.quality_acknowledgements"
        " where acknowledged_by = 'alice'"
    ) == [("closing_events", "volume_is_within_band_of_recent_periods",
           datetime(2026, 7, 1, 1, tzinfo=UTC),
           "producer outage INC-42", "alice")]
    assert "INC-42" in runner.invoke(app, ["acknowledgements"], terminal_width=200).output
    assert runner.invoke(app, ["config"]).exit_code == 0
