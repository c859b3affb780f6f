"""`billing` runs its DAGs through a team's Airflow when BILLING_AIRFLOW_API_URL is set.

Against the session's real api-server, scheduler, dag-processor and Celery workers
(tests/airflow_cluster.py), whose REST API asks for credentials: `billing close-cycles` triggers
billing_cycle_close through the API (a manual run of user `billing`, with its logical date and
conf), follows it and reports it; the invoices are those computed by hand; the same command again
clears that run, which runs every task again and issues nothing new. A run whose task fails reports
that task's error, read from its log through the API. Wrong credentials, a role that may not
trigger, an unknown or paused DAG and an unreachable server each give one line.

October 2026 is billed here, closable at 2026-11-01 01:00Z (grace 1 hour); no other test uses these
dates, so no run of the session exists for them. Runtime: 30-60 s per full run under the scheduler
(three here, one of them short), plus the session's Airflow start (15-40 s) if this test is first.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from billing import airflow_api
from billing.catalog import apply_catalog
from billing.loading import load_events
from conftest import query, reset_warehouse, run_cli
from spine.events import usage, write_csv

# The session's Airflow components and its `airflow` fixture: a plugin, so that both test modules
# share one session fixture, its assertions rewritten as pytest does for a plugin's.
pytest_plugins = ["airflow_cluster"]
pytest.register_assert_rewrite("airflow_cluster")
from airflow_cluster import DAG_ID, UTC, AirflowCluster, free_port, point_billing_at  # noqa: E402

pytestmark = [pytest.mark.scheduler, pytest.mark.slow]

AS_OF = datetime(2026, 11, 1, 1, tzinfo=UTC)
FAILING_AT = datetime(2026, 11, 2, tzinfo=UTC)

CATALOG = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
plans:
  - plan_id: pro_usd
    name: Pro
    currency: USD
    interval: month
    base_fee: 10
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.01}
customers:
  - {customer_id: oct_invoiced, name: Invoiced, currency: USD, collection_method: request_payment}
  - {customer_id: oct_card, name: Card, currency: USD, collection_method: auto_charge,
     payment_method_id: pm_card_visa}
subscriptions:
  - {subscription_id: s_oct_invoiced, customer_id: oct_invoiced, plan_id: pro_usd,
     started_at: "2026-10-01T00:00:00Z", billing_anchor_day: 1}
  - {subscription_id: s_oct_card, customer_id: oct_card, plan_id: pro_usd,
     started_at: "2026-10-01T00:00:00Z", billing_anchor_day: 1}
"""

EVENTS = [
    *usage("oct_invoiced", "api_call", [1_000, 234], "2026-10-10", "inv"),  # 1,234 calls
    *usage("oct_card", "api_call", [500], "2026-10-20", "card"),  # 500 calls
    # after October's end: November's, not on these invoices
    ("inv-november", "oct_invoiced", "api_call", 99, "", "2026-11-01T00:30:00Z"),
]

# $10 base fee + calls × $0.01; the auto_charge invoice is paid by the run that issues it.
EXPECTED_INVOICES = [
    ("s_oct_card", "2026-10-01 00:00:00+00", "2026-11-01 00:00:00+00", 1_500, "paid"),
    ("s_oct_invoiced", "2026-10-01 00:00:00+00", "2026-11-01 00:00:00+00", 2_234, "open"),
]


@pytest.fixture
def api_env(airflow: AirflowCluster, monkeypatch: pytest.MonkeyPatch) -> AirflowCluster:
    """billing pointed at the session's api-server as user `billing`."""
    point_billing_at(airflow, monkeypatch)
    return airflow


def test_close_cycles_triggers_and_follows_a_run_in_the_teams_airflow_and_a_rerun_issues_nothing(
    api_env: AirflowCluster, tmp_path: Path
) -> None:
    airflow = api_env
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    apply_catalog(tmp_path / "catalog.yaml")
    load_events(write_csv(tmp_path / "events.csv", EVENTS), show_progress=False)

    first = run_cli("close-cycles", "--as-of", AS_OF.isoformat())
    [run] = runs_at(airflow, AS_OF)
    assert (run["run_type"], run["state"], run["triggered_by"], run["triggering_user_name"], run["clear_number"]) == (
        "manual", "success", "REST_API", "billing", 0,
    ), airflow.log_tails()
    assert run["conf"] == {"as_of": AS_OF.isoformat(), "grace": "1 hours"}
    assert f"{DAG_ID} run {run['run_id']}: success" in " ".join(first.stdout.split())
    assert max_try_number(airflow, run["run_id"]) == 1

    assert query(
        "select subscription_id, period_start::text, period_end::text, total_minor, status"
        " from billing.invoices order by subscription_id"
    ) == EXPECTED_INVOICES
    assert query("select subscription_id, attempts.status, amount_minor from billing.charge_attempts as attempts"
                 " join billing.invoices using (invoice_id)") == [("s_oct_card", "succeeded", 1_500)]
    ledger = snapshot()

    # --- the same command again: Airflow keeps one run per logical date, so billing clears that
    # run, which runs every task again, and the run issues nothing new
    second = run_cli("close-cycles", "--as-of", AS_OF.isoformat())
    [rerun] = runs_at(airflow, AS_OF)
    assert (rerun["run_id"], rerun["state"], rerun["clear_number"]) == (run["run_id"], "success", 1), (
        airflow.log_tails()
    )
    assert max_try_number(airflow, run["run_id"]) == 2  # every task ran again
    assert f"{DAG_ID} run {run['run_id']}: success" in " ".join(second.stdout.split())
    assert snapshot() == ledger


def test_a_failed_task_is_reported_with_the_error_from_its_log(api_env: AirflowCluster) -> None:
    # the run's first task refuses the grace; the tasks after it never run
    outcome = airflow_api.run_dag(DAG_ID, logical_date=FAILING_AT,
                                  conf={"as_of": FAILING_AT.isoformat(), "grace": "soon"})

    assert outcome.state == "failed"
    [run] = runs_at(api_env, FAILING_AT)
    assert (run["run_id"], run["state"]) == (outcome.run_id, "failed")
    states = dict(api_env.sql("select task_id, state from task_instance where dag_id = %s and run_id = %s",
                              DAG_ID, outcome.run_id))
    assert outcome.failed_tasks == ("begin_run",), states
    assert set(outcome.not_run) == {task for task, state in states.items() if state not in ("success", "failed")}
    assert len(outcome.not_run) > 1, states  # those that never ran are listed too
    errors = [message for message in outcome.failure_messages.values() if "is not a duration" in message]
    assert len(errors) == 1 and errors[0].startswith("ValueError: 'soon' is not a duration"), outcome


def test_refusals_are_one_clear_line(api_env: AirflowCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    url = api_env.api_url
    before = api_env.dag_runs()

    # through the CLI: exit 1 and one message, no traceback
    monkeypatch.setenv("BILLING_AIRFLOW_PASSWORD", "not-the-password")
    refused = run_cli("close-cycles", "--as-of", AS_OF.isoformat(), check=False)
    assert refused.returncode == 1, refused
    assert one_line(refused.stderr) == (
        f"error: Airflow API at {url} refused the credentials of 'billing' (401):"
        " set BILLING_AIRFLOW_USERNAME/BILLING_AIRFLOW_PASSWORD to a user of that Airflow"
    )

    # in-process, the others
    monkeypatch.setenv("BILLING_AIRFLOW_USERNAME", "auditor")  # role viewer: may read, not trigger
    monkeypatch.setenv("BILLING_AIRFLOW_PASSWORD", api_env.passwords["auditor"])
    assert refusal(airflow_api.AirflowApiError) == (
        f"Airflow API at {url} does not allow user 'auditor' to trigger {DAG_ID} (403):"
        " it needs a role that may trigger and read DAG runs"
    )
    monkeypatch.setenv("BILLING_AIRFLOW_USERNAME", "billing")
    monkeypatch.setenv("BILLING_AIRFLOW_PASSWORD", api_env.passwords["billing"])
    assert refusal(LookupError, "no_such_dag") == f"no DAG 'no_such_dag' in the Airflow at {url}"

    api_env.set_paused(DAG_ID, True)
    try:
        assert refusal(airflow_api.AirflowApiError).startswith(f"DAG {DAG_ID} is paused in the Airflow at {url}:")
    finally:
        api_env.set_paused(DAG_ID, False)

    monkeypatch.delenv("BILLING_AIRFLOW_USERNAME")
    monkeypatch.setenv("BILLING_AIRFLOW_TOKEN", "not-a-token")
    assert refusal(airflow_api.AirflowApiError) == (
        f"Airflow API at {url} refused the token (401): set BILLING_AIRFLOW_TOKEN to a valid token,"
        " or BILLING_AIRFLOW_USERNAME/BILLING_AIRFLOW_PASSWORD"
    )

    nowhere = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("BILLING_AIRFLOW_API_URL", nowhere)
    assert re.fullmatch(rf"Airflow API at {re.escape(nowhere)} is unreachable \(.+\): check BILLING_AIRFLOW_API_URL",
                        refusal(airflow_api.AirflowApiError))

    assert api_env.dag_runs() == before  # none of them triggered anything


def refusal(error_type: type[Exception], dag_id: str = DAG_ID) -> str:
    with pytest.raises(error_type) as raised:
        airflow_api.run_dag(dag_id, logical_date=AS_OF, conf={})
    message = str(raised.value)
    assert "\n" not in message
    return message


def one_line(stderr: str) -> str:
    """The CLI's error message, without a traceback; rich wraps it at the terminal's width (80)."""
    assert "Traceback" not in stderr and stderr.count("error:") == 1, stderr
    return " ".join(stderr.split())


def runs_at(airflow: AirflowCluster, logical_date: datetime) -> list[dict]:
    return [run for run in airflow.dag_runs() if run["logical_date"] == logical_date]


def max_try_number(airflow: AirflowCluster, run_id: str) -> int:
    [(tries,)] = airflow.sql("select max(try_number) from task_instance where dag_id = %s and run_id = %s",
                             DAG_ID, run_id)
    return tries


def snapshot() -> dict[str, list[tuple]]:
    """Every row a cycle close writes, in a stable order."""
    tables = {
        "invoices": "select * from billing.invoices order by invoice_id",
        "invoice_lines": "select * from billing.invoice_lines order by invoice_id, line_no",
        "charge_attempts": "select * from billing.charge_attempts order by idempotency_key",
        "gateway_charges": "select * from billing.sandbox_gateway_charges order by idempotency_key",
        "webhook_events": "select * from billing.webhook_events order by event_id",
    }
    return {name: query(sql) for name, sql in tables.items()}
