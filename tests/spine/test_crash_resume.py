"""A crash between "charge attempt recorded" and "outcome recorded" is resumed, not repeated.

The sandbox's `pm_card_timeoutOnce` charges the card and then loses the response, as a gateway
timeout does: charge_invoices fails with the attempt still pending. Its retry (a minute later,
billing.dag_defaults) re-sends the same idempotency key and the gateway answers with the charge it
already made; the run succeeds, announcing no failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import query, reset_warehouse, run_cli, run_dag

from spine.catalogs import USAGE_PLAN
from spine.events import usage, write_csv

pytestmark = pytest.mark.slow

CATALOG = USAGE_PLAN + """
customers:
  - {customer_id: flaky, name: Flaky, currency: USD, collection_method: auto_charge,
     payment_method_id: pm_card_timeoutOnce}
subscriptions:
  - {subscription_id: s_flaky, customer_id: flaky, plan_id: usage_usd, started_at: "2026-06-01T00:00:00Z"}
"""


def test_charge_interrupted_after_recording_is_resumed_with_the_same_key(warehouse, tmp_path: Path):
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    run_cli("catalog", "apply", str(tmp_path / "catalog.yaml"))
    run_cli(
        "load",
        "events",
        str(write_csv(tmp_path / "events.csv", usage("flaky", "api_call", [12_345], "2026-06-03", "x"))),
    )

    run_dag("billing_cycle_close", "2026-07-01T01:00:00Z", as_of="2026-07-01T01:00:00Z")

    log = (Path(os.environ["BILLING_HOME"]) / "airflow" / "logs" / "runs.log").read_text()
    assert "ChargesUnresolved: outcome unknown, will be resumed with the same key" in log  # the first try
    [(key, status)] = query("select idempotency_key, status from billing.charge_attempts")
    assert status == "succeeded"
    assert query("select idempotency_key, amount_minor from billing.sandbox_gateway_charges") == [(key, 1_235)]
    assert query("select status, total_minor from billing.invoices") == [("paid", 1_235)]
    assert query("select event_type from billing.webhook_events order by 1") == [
        ("billing.charge.succeeded",), ("billing.invoice.generated",),
    ]
