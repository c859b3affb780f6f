"""`airflow backfill create` for billing_cycle_close under a real Airflow scheduler.

`tests/spine/test_backfill.py` covers `billing backfill`, which runs `dag.test()` in-process. This
module starts the real Airflow 3 components (api-server, dag-processor, scheduler with
LocalExecutor) on the test session's `BILLING_HOME/airflow` metadata, runs
`airflow backfill create --max-active-runs 1` for the two hourly slots at which three periods
become closable (`period_end + grace`), and checks that every slot ran with its own logical date as
`as_of`, that each period was closed by the first slot at which it became closable, in order, and
that a second backfill over the slot that issued two invoices (`--reprocess-behavior completed`,
which clears and re-runs it, with all three periods closable and already invoiced) issues, charges
and announces nothing new.

Berlin's February ends at local midnight, one hour before UTC's (grace 1 hour):

    berlin_co  Europe/Berlin (UTC+1)  period_end 2026-02-28 23:00Z  closable 2026-03-01 00:00Z
    utc_co     UTC                    period_end 2026-03-01 00:00Z  closable 2026-03-01 01:00Z
    half_co    UTC, from Feb 15       period_end 2026-03-01 00:00Z  closable 2026-03-01 01:00Z

The slots 2026-03-01 00:00Z and 01:00Z: the first closes Berlin's period but not the UTC ones,
which have ended at that moment but whose grace has not, the second the two UTC ones. (A slot that
closes nothing would cost a run of its own and prove no more than the UTC periods left open at
00:00Z.) No other test uses these logical dates, so no run of the session already exists for them
(a backfill without `--reprocess-behavior` skips a slot that has one).

`--max-active-runs 1` is needed: a backfill's own limit (default 10) replaces the DAG's
`max_active_runs=1`, and concurrent runs of this DAG share the dbt models between their tasks (a
later slot's `build_event_models` marks periods closed under an earlier slot's gate, which then
fails on events after its `as_of`).

Runtime: about 30-55 s per run on 2 cores shared with other work (each task is a new process that
imports dbt or Great Expectations again; `billing backfill` pays that once), so 1.5-3 minutes for
the three runs, plus up to 30 s before the second backfill can be created (the scheduler marks a
backfill complete only every 30 s) and 15-40 s to start Airflow: 2-3.5 minutes in all.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest

from billing.catalog import apply_catalog
from billing.loading import load_events
from billing.orchestration import airflow_environment, dag_bag
from billing.webhooks import WebhookReceiver
from conftest import query, reset_warehouse
from spine.events import write_csv

DAG_ID = "billing_cycle_close"
UTC = timezone.utc
SLOTS = [
    datetime(2026, 3, 1, 0, tzinfo=UTC),  # closes Berlin's period
    datetime(2026, 3, 1, 1, tzinfo=UTC),  # closes the two UTC periods
]
BACKFILL_TIMEOUT_S = 600  # two runs of ten tasks; about 50 s a run on 2 busy cores
STARTUP_TIMEOUT_S = 180

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
  - {customer_id: berlin_co, name: Berlin Co, currency: USD, timezone: Europe/Berlin,
     collection_method: auto_charge, payment_method_id: pm_card_visa}
  - {customer_id: utc_co, name: UTC Co, currency: USD, collection_method: request_payment}
  - {customer_id: half_co, name: Half Co, currency: USD, collection_method: auto_charge,
     payment_method_id: pm_card_visa}
subscriptions:
  - {subscription_id: s_berlin, customer_id: berlin_co, plan_id: pro_usd,
     started_at: "2026-01-31T23:00:00Z", billing_anchor_day: 1}
  - {subscription_id: s_utc, customer_id: utc_co, plan_id: pro_usd,
     started_at: "2026-02-01T00:00:00Z", billing_anchor_day: 1}
  - {subscription_id: s_half, customer_id: half_co, plan_id: pro_usd,
     started_at: "2026-02-15T00:00:00Z", billing_anchor_day: 1}
webhook_endpoints:
  - {endpoint_id: backfill_receiver, url: "%(url)s", secret: "%(secret)s", enabled: true}
"""

EVENTS = [
    # Berlin: 300 calls in its February; 22:30Z on Feb 28 is 23:30 in Berlin (February), 23:30Z
    # is already March 1 there, so those 1,000 calls belong to March and are not on this invoice.
    ("b-1", "berlin_co", "api_call", 200, "", "2026-02-10T12:00:00Z"),
    ("b-2", "berlin_co", "api_call", 100, "", "2026-02-28T22:30:00Z"),
    ("b-march", "berlin_co", "api_call", 1_000, "", "2026-02-28T23:30:00Z"),
    # UTC: 500 calls
    ("u-1", "utc_co", "api_call", 500, "", "2026-02-15T08:00:00Z"),
    # half: 50 calls in its half February
    ("h-1", "half_co", "api_call", 50, "", "2026-02-20T12:00:00Z"),
]

# (invoice_number, subscription_id, period_start, period_end, total_minor, status), issued by the
# slot in the last column: $10 base fee (half of it for half_co's 14 of 28 days) + calls × $0.01.
# Within a slot, invoices are numbered by period_end, period_start, subscription_id.
EXPECTED_INVOICES = [
    ("INV-000001", "s_berlin", "2026-01-31 23:00:00+00", "2026-02-28 23:00:00+00", 1_300, "paid", SLOTS[0]),
    ("INV-000002", "s_utc", "2026-02-01 00:00:00+00", "2026-03-01 00:00:00+00", 1_500, "open", SLOTS[1]),
    ("INV-000003", "s_half", "2026-02-15 00:00:00+00", "2026-03-01 00:00:00+00", 550, "paid", SLOTS[1]),
]


def test_airflow_backfill_create_closes_each_period_in_its_own_slot_and_a_rerun_adds_nothing(
    warehouse: str, tmp_path: Path, airflow: AirflowUnderTest
) -> None:
    reset_warehouse()
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    with WebhookReceiver(secret) as receiver:
        (tmp_path / "catalog.yaml").write_text(CATALOG % {"url": receiver.url, "secret": secret})
        apply_catalog(tmp_path / "catalog.yaml")
        load_events(write_csv(tmp_path / "events.csv", EVENTS), show_progress=False)

        # --- the first backfill: every slot runs once, each period closes in its own slot
        first = airflow.backfill(SLOTS[0], SLOTS[-1], "--max-active-runs", "1")
        assert [(run.logical_date, run.state) for run in first] == [(slot, "success") for slot in SLOTS], (
            airflow.diagnostics(first)
        )
        assert all(earlier.ended <= later.started for earlier, later in zip(first, first[1:])), (
            airflow.diagnostics(first)  # one run at a time, earliest slot first
        )
        # each run's window is its logical date (CronTriggerTimetable: logical date = the slot)
        assert [airflow.resolved_window(run) for run in first] == [
            {"as_of": slot.isoformat(), "grace": "1 hours"} for slot in SLOTS
        ]

        invoices = query(
            "select invoice_number, subscription_id, period_start::text, period_end::text, total_minor, status,"
            " issued_at from billing.invoices order by invoice_number"
        )
        assert [row[:6] for row in invoices] == [expected[:6] for expected in EXPECTED_INVOICES]
        # which run issued each invoice: the one whose issue_invoices task was running at issued_at
        assert [airflow.run_issuing_at(first, issued_at) for *_, issued_at in invoices] == [
            expected[6] for expected in EXPECTED_INVOICES
        ]
        assert query(
            "select invoice_number, line_no, kind, quantity::text, amount_minor from billing.invoice_lines"
            " join billing.invoices using (invoice_id) order by invoice_number, line_no"
        ) == [
            ("INV-000001", 1, "base_fee", "1", 1_000), ("INV-000001", 2, "usage", "300", 300),
            ("INV-000002", 1, "base_fee", "1", 1_000), ("INV-000002", 2, "usage", "500", 500),
            ("INV-000003", 1, "base_fee", "0.5", 500), ("INV-000003", 2, "usage", "50", 50),
        ]
        # auto_charge invoices were charged once, by the run that issued them, at its as_of
        assert query(
            "select subscription_id, attempt_no, amount_minor, attempts.status, attempted_for"
            " from billing.charge_attempts as attempts join billing.invoices using (invoice_id)"
            " order by invoice_number"
        ) == [("s_berlin", 1, 1_300, "succeeded", SLOTS[0]), ("s_half", 1, 550, "succeeded", SLOTS[1])]
        assert sorted(query("select event_type, subject_id from billing.webhook_events")) == sorted(
            [("billing.invoice.generated", invoice_id) for (invoice_id,) in
             query("select invoice_id from billing.invoices")]
            + [("billing.charge.succeeded", key) for (key,) in
               query("select idempotency_key from billing.charge_attempts")]
        )
        assert sorted(webhook_id for webhook_id, _ in receiver.accepted) == sorted(
            event_id for (event_id,) in query("select event_id from billing.webhook_events")
        )
        assert receiver.rejected == 0

        ledger = snapshot()
        delivered = list(receiver.accepted)

        # --- a second backfill over the slot that issued two invoices re-runs it and changes
        # nothing: at its as_of all three periods are closable, and all three are invoiced
        second = airflow.backfill(
            SLOTS[1], SLOTS[1], "--max-active-runs", "1", "--reprocess-behavior", "completed"
        )
        assert [(run.logical_date, run.state) for run in second] == [(SLOTS[1], "success")], (
            airflow.diagnostics(second)
        )
        assert [run.run_id for run in second] == [first[1].run_id]  # cleared, not new
        assert second[0].clear_number == 1, airflow.diagnostics(second)
        assert second[0].started >= first[-1].ended, airflow.diagnostics(second)  # it ran again
        assert airflow.resolved_window(second[0]) == {"as_of": SLOTS[1].isoformat(), "grace": "1 hours"}
        assert snapshot() == ledger
        assert receiver.accepted == delivered


def snapshot() -> dict[str, list[tuple]]:
    """Every row of the system of record a cycle close writes, in a stable order."""
    tables = {
        "invoices": "select * from billing.invoices order by invoice_id",
        "invoice_lines": "select * from billing.invoice_lines order by invoice_id, line_no",
        "credit_applications": "select * from billing.credit_applications order by 1, 2",
        "charge_attempts": "select * from billing.charge_attempts order by idempotency_key",
        "gateway_charges": "select * from billing.sandbox_gateway_charges order by idempotency_key",
        "webhook_events": "select * from billing.webhook_events order by event_id",
        "webhook_deliveries": "select * from billing.webhook_deliveries order by event_id, endpoint_id",
        "webhook_delivery_attempts": "select * from billing.webhook_delivery_attempts order by 1, 2, 3",
    }
    return {name: query(sql) for name, sql in tables.items()}


# ---------------------------------------------------------------------------------------------
# The Airflow components


@dataclass(frozen=True)
class Run:
    id: int
    run_id: str
    logical_date: datetime
    state: str
    clear_number: int
    started: datetime | None
    ended: datetime | None


@dataclass
class AirflowUnderTest:
    """api-server, dag-processor and scheduler started as subprocesses on one metadata DB."""

    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _log_files: list = field(default_factory=list)

    @property
    def database(self) -> Path:
        return Path(self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))

    def start(self, name: str, *args: str) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self._log_files.append(log)
        self.processes[name] = subprocess.Popen(
            [_airflow_executable(), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        """SIGTERM every component by its PID, then whatever they left behind, each by its PID."""
        descendants = []
        for process in self.processes.values():
            try:
                descendants += psutil.Process(process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        running = [process for process in self.processes.values() if process.poll() is None]
        for process in running:  # all at once: each takes a few seconds to shut down
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        for child in descendants:
            try:
                child.send_signal(signal.SIGTERM)
                child.wait(timeout=30)
            except psutil.NoSuchProcess:
                pass
            except psutil.TimeoutExpired:
                child.kill()
        for log in self._log_files:
            log.close()

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        completed = subprocess.run(
            [_airflow_executable(), *args], env=self.env, capture_output=True, text=True, timeout=timeout,
        )
        if completed.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}"
                f"\n{self.log_tails()}"
            )
        return completed

    def sql(self, statement: str, *params) -> list[tuple]:
        with sqlite3.connect(self.database, timeout=30) as connection:
            return connection.execute(statement, params).fetchall()

    def wait_for(self, what: str, condition: Callable[[], object], timeout: float) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise AssertionError(f"airflow {name} exited {process.returncode} while waiting for {what}"
                                         f"\n{self.log_tails()}")
            if result := condition():
                return result
            time.sleep(1)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.log_tails()}")

    def backfill(self, start: datetime, end: datetime, *options: str) -> list[Run]:
        """`airflow backfill create` for [start, end]; waits until every run of it has finished."""
        # NOTE: `backfill create` refuses while a backfill of the DAG is not marked complete, which
        # the scheduler does only every 30 s, after all its runs have finished.
        self.wait_for(
            f"the scheduler to mark every backfill of {DAG_ID} complete",
            lambda: not self.sql("select id from backfill where dag_id = ? and completed_at is null", DAG_ID),
            120,
        )
        [(before,)] = self.sql("select coalesce(max(id), 0) from backfill")
        self.cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", start.isoformat(),
                 "--to-date", end.isoformat(), *options)
        [(backfill_id,)] = self.sql("select max(id) from backfill where dag_id = ? and id > ?", DAG_ID, before)
        assert backfill_id is not None, "airflow backfill create created no backfill"
        # `backfill create` commits the backfill's runs (queued, or cleared back to queued) before it
        # returns, so this sees neither the runs of an earlier backfill nor a run not yet started.
        self.wait_for(f"every run of backfill {backfill_id} to finish",
                      lambda: self._runs_finished(backfill_id), BACKFILL_TIMEOUT_S)
        skipped = self.sql(
            "select logical_date, exception_reason from backfill_dag_run"
            " where backfill_id = ? and dag_run_id is null", backfill_id,
        )
        assert skipped == [], f"the backfill skipped slots: {skipped}"
        rows = self.sql(
            "select dag_run.id, run_id, dag_run.logical_date, state, clear_number, start_date, end_date"
            " from dag_run"
            " join backfill_dag_run on backfill_dag_run.dag_run_id = dag_run.id"
            " where backfill_dag_run.backfill_id = ? order by backfill_dag_run.sort_ordinal",
            backfill_id,
        )
        return [Run(id, run_id, _utc(logical), state, clear, _utc(started), _utc(ended))
                for id, run_id, logical, state, clear, started, ended in rows]

    def _runs_finished(self, backfill_id: int) -> bool:
        states = [state for (state,) in self.sql(
            "select dag_run.state from backfill_dag_run"
            " join dag_run on dag_run.id = backfill_dag_run.dag_run_id"
            " where backfill_dag_run.backfill_id = ?", backfill_id,
        )]
        return bool(states) and all(state in ("success", "failed") for state in states)

    def resolved_window(self, run: Run) -> dict:
        """What resolve_window returned in that run (its XCom)."""
        values = self.sql(
            "select value from xcom where dag_run_id = ? and task_id = 'resolve_window' and key = 'return_value'",
            run.id,
        )
        assert len(values) == 1, f"{run.run_id}: resolve_window XComs {values}"
        value = values[0][0]
        return json.loads(value) if isinstance(value, (str, bytes)) else value

    def run_issuing_at(self, runs: list[Run], moment: datetime) -> datetime | None:
        """The logical date of the run whose issue_invoices task was running at `moment`."""
        spans = self.sql(
            "select run_id, start_date, end_date from task_instance"
            " where dag_id = ? and task_id = 'issue_invoices'", DAG_ID,
        )
        by_run_id = {run.run_id: run for run in runs}
        matches = [by_run_id[run_id].logical_date for run_id, started, ended in spans
                   if run_id in by_run_id and _utc(started) <= moment <= _utc(ended)]
        assert len(matches) == 1, f"issued at {moment}: runs {matches}; issue_invoices spans {spans}"
        return matches[0]

    def diagnostics(self, runs: list[Run]) -> str:
        """Each run's task states and the tail of every failed task's log, then the component logs."""
        lines = []
        for run in runs:
            lines.append(f"{run.run_id} ({run.logical_date.isoformat()}): {run.state}")
            for task_id, state, try_number in self.sql(
                "select task_id, state, try_number from task_instance where dag_id = ? and run_id = ?"
                " order by start_date", DAG_ID, run.run_id,
            ):
                lines.append(f"    {task_id}: {state}")
                if state not in ("success", None):
                    folder = Path(self.env["AIRFLOW_HOME"]) / "logs" / f"dag_id={DAG_ID}" / f"run_id={run.run_id}"
                    for log in sorted(folder.glob(f"task_id={task_id}/attempt=*.log")):
                        errors = [line for line in log.read_text(errors="replace").splitlines()
                                  if '"level":"error"' in line or '"level":"critical"' in line]
                        lines.append(f"[{log}]\n" + "\n".join(errors[-10:]) if errors else _tail(log, 40))
        return "\n".join(lines) + "\n" + self.log_tails()

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(
            f"--- {name} (pid {process.pid}, "
            f"{'running' if process.poll() is None else f'exited {process.returncode}'})"
            f"\n{_tail(self.logs / f'{name}.log', lines)}"
            for name, process in self.processes.items()
        )


@pytest.fixture
def airflow(warehouse: str, tmp_path: Path) -> Iterator[AirflowUnderTest]:
    """The real Airflow components on this session's BILLING_HOME/airflow metadata; stopped after."""
    bag = dag_bag()  # migrates the metadata DB, as `billing` does before a run
    assert bag.import_errors == {} and DAG_ID in bag.dags, bag.import_errors
    port = _free_port()
    logs = tmp_path / "airflow-logs"
    logs.mkdir()
    env = {
        **os.environ,
        **airflow_environment(),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "1",  # LocalExecutor forks this many workers; the DAG is a chain
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # NOTE: the scheduler signs the tokens its task workers present to the api-server.
        "AIRFLOW__API_AUTH__JWT_SECRET": base64.b64encode(os.urandom(24)).decode(),
        # NOTE: backfill runs start only while the DAG is unpaused, and an unpaused @hourly DAG
        # (catchup=False) would also get a scheduled run for the latest slot, as_of now, closing
        # every period up to today ahead of the backfill. This makes the scheduler run only the runs
        # it is given (backfills, triggers), as in a deployment whose hourly schedule is held.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # NOTE: a task's supervisor sometimes notices that its task process has exited only at its
        # next heartbeat (default every 5 s), holding the only worker until then; about 10 s a run.
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    }
    airflow = AirflowUnderTest(env=env, logs=logs)
    started = datetime.now(UTC)
    try:
        airflow.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        airflow.start("dag-processor", "dag-processor")
        airflow.start("scheduler", "scheduler")
        airflow.wait_for(
            f"the dag-processor to parse {DAG_ID}",
            lambda: any(_utc(parsed) >= started for (parsed,) in airflow.sql(
                "select last_parsed_time from dag where dag_id = ? and last_parsed_time is not null", DAG_ID)),
            STARTUP_TIMEOUT_S,
        )
        airflow.cli("dags", "unpause", DAG_ID)  # the dag-processor parses first; the api-server may still start
        airflow.wait_for("the api-server", lambda: _responds(f"http://127.0.0.1:{port}/execution/health"),
                         STARTUP_TIMEOUT_S)
        yield airflow
    finally:
        airflow.stop()


def _airflow_executable() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _utc(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return f"[{path}]\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
