"""A real Airflow 3 for the tests: api-server, dag-processor and scheduler (LocalExecutor) as subprocesses.

They share the test session's `BILLING_HOME/airflow` metadata (SQLite) with the in-process runs of
`billing.orchestration`, and are started once per session, by the first test that asks for the
`airflow` fixture, and stopped after the last one (so that no scheduler picks up the in-process
runs of later tests, and the 2 cores are free again). A test module uses them with

    pytest_plugins = ["airflow_cluster"]

(a plugin, not an imported fixture: a fixture imported into two modules would be two session
fixtures, starting Airflow twice), marks its tests `scheduler` (tests/conftest.py runs them all on
one worker, before any other group), and gets `billing_cycle_close` unpaused for each test.

The api-server authenticates (SimpleAuthManager, no "all admins"): users `billing` (role `user`,
enough to trigger, clear and read runs) and `auditor` (role `viewer`), with the passwords in
`AirflowUnderTest.passwords`. Its tokens expire after JWT_EXPIRATION_S, so that a client following
a run must renew its token. The scheduler runs only the runs it is given (triggers, backfills): no
hourly schedule.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import pytest
from billing.orchestration import airflow_environment, dag_bag

DAG_ID = "billing_cycle_close"
UTC = UTC
BACKFILL_TIMEOUT_S = 600  # two runs of ten tasks; about 50 s a run on 2 busy cores
STARTUP_TIMEOUT_S = 180
# NOTE: shorter than a run (30-55 s), so that following one through the API outlives a token.
JWT_EXPIRATION_S = 20
USERS = {"billing": "user", "auditor": "viewer"}  # SimpleAuthManager users and their roles


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
    api_url: str  # the api-server's base URL
    passwords: dict[str, str]  # username -> password
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

    @property
    def running(self) -> bool:
        return bool(self.processes) and all(process.poll() is None for process in self.processes.values())

    def api(self, method: str, path: str, *, user: str = "billing", **kwargs) -> httpx.Response:
        """A request to the REST API (`path` under /api/v2) as `user`, with a token of its own."""
        login = httpx.post(f"{self.api_url}/auth/token", json={"username": user, "password": self.passwords[user]},
                           timeout=30)
        login.raise_for_status()
        response = httpx.request(method, f"{self.api_url}/api/v2{path}", timeout=30,
                                 headers={"Authorization": f"Bearer {login.json()['access_token']}"}, **kwargs)
        response.raise_for_status()
        return response

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def dag_runs(self, dag_id: str = DAG_ID) -> list[dict]:
        """Every run of `dag_id` in the metadata DB, oldest logical date first."""
        with sqlite3.connect(self.database, timeout=30) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute(
                "select id, run_id, logical_date, run_type, state, clear_number, triggered_by,"
                " triggering_user_name, conf from dag_run where dag_id = ? order by logical_date", (dag_id,),
            ).fetchall()
        return [{**dict(row), "logical_date": _utc(row["logical_date"])} for row in rows]

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
        """The window begin_run resolved in that run (from its XCom)."""
        values = self.sql(
            "select value from xcom where dag_run_id = ? and task_id = 'begin_run' and key = 'return_value'",
            run.id,
        )
        assert len(values) == 1, f"{run.run_id}: begin_run XComs {values}"
        value = values[0][0]
        return (json.loads(value) if isinstance(value, (str, bytes)) else value)["window"]

    def diagnostics(self, runs: list[Run]) -> str:
        """Each run's task states and the tail of every failed task's log, then the component logs."""
        lines = []
        for run in runs:
            lines.append(f"{run.run_id} ({run.logical_date.isoformat()}): {run.state}")
            for task_id, state, _try_number in self.sql(
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


@pytest.fixture(scope="session")
def airflow_cluster(warehouse: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowUnderTest]:
    """The real Airflow components on this session's BILLING_HOME/airflow metadata; stopped after."""
    bag = dag_bag()  # migrates the metadata DB, as `billing` does before a run
    assert bag.import_errors == {} and DAG_ID in bag.dags, bag.import_errors
    port = free_port()
    logs = tmp_path_factory.mktemp("airflow-logs")
    passwords = {user: secrets.token_urlsafe(12) for user in USERS}
    passwords_file = logs / "simple_auth_manager_passwords.json"
    passwords_file.write_text(json.dumps(passwords))
    env = {
        **os.environ,
        **airflow_environment(),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # NOTE: LocalExecutor forks this many workers. The DAG is a chain, but a run waiting for the
        # lease polls it in a task of its own (begin_run, every 5 s): with one worker it delays the
        # chain of the run that holds the lease.
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # NOTE: the scheduler signs the tokens its task workers present to the api-server.
        "AIRFLOW__API_AUTH__JWT_SECRET": base64.b64encode(os.urandom(24)).decode(),
        "AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME": str(JWT_EXPIRATION_S),
        # NOTE: the REST API asks for a user's token, as a team's Airflow does.
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{user}:{role}" for user, role in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        # NOTE: backfill runs start only while the DAG is unpaused, and an unpaused @hourly DAG
        # (catchup=False) would also get a scheduled run for the latest slot, as_of now, closing
        # every period up to today ahead of the backfill. This makes the scheduler run only the runs
        # it is given (backfills, triggers), as in a deployment whose hourly schedule is held.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # NOTE: a task's supervisor sometimes notices that its task process has exited only at its
        # next heartbeat (default every 5 s), holding its worker until then; about 10 s a run.
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        # NOTE: an idle scheduler loop sleeps 1 s by default before it queues the next task of a chain.
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
        # NOTE: the DAG files do not change during a session: parsed once at start, not every 30 s
        # on the cores the other worker's tests need.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
    }
    airflow = AirflowUnderTest(env=env, logs=logs, api_url=f"http://127.0.0.1:{port}", passwords=passwords)
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
        airflow.wait_for("the api-server", lambda: _responds(f"{airflow.api_url}/api/v2/monitor/health"),
                         STARTUP_TIMEOUT_S)
        yield airflow
    finally:
        airflow.stop()


@pytest.fixture
def airflow(airflow_cluster: AirflowUnderTest, request: pytest.FixtureRequest) -> Iterator[AirflowUnderTest]:
    """The session's Airflow, with billing_cycle_close unpaused during the test."""
    assert request.node.get_closest_marker("scheduler"), f"{request.node.nodeid} uses Airflow: mark it scheduler"
    assert airflow_cluster.running, f"the session's Airflow is not running\n{airflow_cluster.log_tails()}"
    airflow_cluster.set_paused(DAG_ID, False)
    yield airflow_cluster
    # NOTE: paused between its tests, and stopped after the last: a scheduler would otherwise run
    # the tasks of the in-process `dag.test()` runs of other tests too (they are "running" runs
    # of an unpaused DAG in the same metadata DB).
    users = [item for item in request.session.items if "airflow" in getattr(item, "fixturenames", ())]
    if users and request.node is users[-1]:
        airflow_cluster.stop()
    else:
        airflow_cluster.set_paused(DAG_ID, True)


def _airflow_executable() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def free_port() -> int:
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
