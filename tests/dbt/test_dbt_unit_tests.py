"""The dbt unit tests (`unit_tests:` in the models' YAML) run against the embedded warehouse.

A dbt unit test mocks a model's parents with its `given` rows, but dbt still reads the parents'
columns from the warehouse, so the parents must exist: one build of seeds, staging and intermediate
on an empty warehouse creates them (empty tables and views are enough).
"""

from __future__ import annotations

import yaml
from billing import transform
from billing.settings import DBT_PROJECT_DIR
from conftest import reset_warehouse

# Every model in these folders reads only seeds, staging and intermediate models, so building those
# is all the unit tests of intermediate models need; the trial balance reads the general ledger (a view).
PARENT_LAYERS = ("resource_type:seed", "fqn:staging", "fqn:intermediate", "fct_general_ledger")

UNIT_TESTED_MODELS = {
    "int_subscription_periods",
    "int_subscription_periods__awaiting_invoice",
    "int_usage_events__ranked",
    "int_usage_events__deduped",
    "int_usage_events__validated",
    "int_meter_state__segments",
    "int_meter_usage__aggregated",
    "int_meter_usage__period_local",
    "int_meter_usage__stateful",
    "int_usage_lines__charged",
    "int_usage_lines__priced",
    "int_invoice_lines__drafted",
    "int_invoice_adjustments",
    "int_invoice_discounts",
    "int_invoice_totals",
    "int_invoice_taxes",
}


def test_every_dbt_unit_test_passes(warehouse: str) -> None:
    reset_warehouse()
    transform.build(PARENT_LAYERS, as_of="2026-01-01T00:00:00Z", grace="1 hour")

    defined = _defined_unit_tests()
    assert UNIT_TESTED_MODELS <= {model for _, model in defined}, "a model lost its unit tests"

    # `dbt test --select test_type:unit` raises TransformFailed on any failing unit test; the count
    # proves the selection found every test, not none.
    assert transform.run_unit_tests() == len(defined)


def _defined_unit_tests() -> list[tuple[str, str]]:
    """(name, model) of every unit test declared in the dbt project's YAML."""
    found = []
    for path in sorted((DBT_PROJECT_DIR / "models").rglob("*.yml")):
        for unit_test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", []):
            found.append((unit_test["name"], unit_test["model"]))
    return found
