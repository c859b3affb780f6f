"""docker-compose.yml's team deployment as processes: Airflow on Celery workers, for the tests and the bench.

Redis (Debian's `redis-server`) is the broker; the Airflow metadata, with the Celery results, is a
database `airflow` of its own (role `airflow`) on the warehouse's server. The compose file's
`airflow-init` command migrates it and sets the gateway pool; then its api-server, dag-processor,
scheduler and Celery workers start with their compose commands and environments (`docker compose
config`, bench/compose_file.py), translated to this machine: each container's host:port becomes a
local port, /opt/billing the project, /opt/airflow the cluster's home, and the secrets are fresh
ones. BILLING_HOME and BILLING_WAREHOUSE_URL are the caller's, so the tasks bill the warehouse the
caller reads; the other BILLING_* settings pass through from the caller's environment, as compose
passes them from the host's. No triggerer: no task defers.

The api-server authenticates (SimpleAuthManager, no "all admins"): users `billing` (role `user`,
enough to trigger, clear and read runs) and `auditor` (role `viewer`), with the passwords in
`AirflowCluster.passwords`. The scheduler runs only the runs it is given (triggers, backfills): no
hourly schedule (`LOCAL_SETTINGS`).

tests/airflow_cluster.py wraps it in the scheduler tests' session fixture; bench/celery_close.py
runs a close of 100k subscriptions on it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

import httpx
import psutil
import psycopg
from billing.settings import PROJECT_ROOT
from billing.warehouse import connect
from compose_file import SECRETS, command, resolved
from cryptography.fernet import Fernet
from psycopg import sql
from psycopg.rows import dict_row

DAG_ID = "billing_cycle_close"
UTC = UTC
BACKFILL_TIMEOUT_S = 600  # two runs of ten tasks; about 50 s a run on 2 busy cores
STARTUP_TIMEOUT_S = 180
USERS = {"billing": "user", "auditor": "viewer"}  # SimpleAuthManager users and their roles
BROKER = "redis"
# Settings of a cluster on one machine, over the compose file's.
LOCAL_SETTINGS = {
    "AIRFLOW__API__WORKERS": "1",
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
    # NOTE: the DAG files do not change while the cluster runs: parsed once at start, not every
    # 30 s on the cores the tasks need.
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
}


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
class AirflowCluster:
    """The Airflow components of docker-compose.yml, started as subprocesses, and their broker."""

    env: dict[str, str]  # the Airflow environment of the compose file, translated
    logs: Path
    api_url: str  # the api-server's base URL
    passwords: dict[str, str]  # username -> password
    metadata_url: str  # the metadata database, for psycopg
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _log_files: list = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self._log_files.append(log)
        self.processes[name] = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        """SIGTERM the Airflow components by their PIDs, then whatever they left behind, each by its
        PID, then the broker."""
        components = [process for name, process in self.processes.items() if name != BROKER]
        descendants = []
        for process in components:
            try:
                descendants += psutil.Process(process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        _terminate(components)  # all at once: each takes a few seconds to shut down
        for child in descendants:
            try:
                child.send_signal(signal.SIGTERM)
                child.wait(timeout=30)
            except psutil.NoSuchProcess:
                pass
            except psutil.TimeoutExpired:
                child.kill()
        _terminate([self.processes[BROKER]] if BROKER in self.processes else [])
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
        with psycopg.connect(self.metadata_url, row_factory=dict_row) as connection:
            return connection.execute(
                "select id, run_id, logical_date, run_type, state, clear_number, triggered_by,"
                " triggering_user_name, conf from dag_run where dag_id = %s order by logical_date", (dag_id,),
            ).fetchall()

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        completed = subprocess.run(["airflow", *args], env=self.env, capture_output=True, text=True,
                                   timeout=timeout)
        if completed.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}"
                f"\n{self.log_tails()}"
            )
        return completed

    def sql(self, statement: str, *params) -> list[tuple]:
        """A query on the metadata database (`%s` placeholders)."""
        with psycopg.connect(self.metadata_url) as connection:
            return connection.execute(statement, params).fetchall()

    def wait_for(self, what: str, condition: Callable[[], object], timeout: float) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise AssertionError(f"{name} exited {process.returncode} while waiting for {what}"
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
            lambda: not self.sql("select id from backfill where dag_id = %s and completed_at is null", DAG_ID),
            120,
        )
        [(before,)] = self.sql("select coalesce(max(id), 0) from backfill")
        self.cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", start.isoformat(),
                 "--to-date", end.isoformat(), *options)
        [(backfill_id,)] = self.sql("select max(id) from backfill where dag_id = %s and id > %s", DAG_ID, before)
        assert backfill_id is not None, "airflow backfill create created no backfill"
        # `backfill create` commits the backfill's runs (queued, or cleared back to queued) before it
        # returns, so this sees neither the runs of an earlier backfill nor a run not yet started.
        self.wait_for(f"every run of backfill {backfill_id} to finish",
                      lambda: self._runs_finished(backfill_id), BACKFILL_TIMEOUT_S)
        skipped = self.sql(
            "select logical_date, exception_reason from backfill_dag_run"
            " where backfill_id = %s and dag_run_id is null", backfill_id,
        )
        assert skipped == [], f"the backfill skipped slots: {skipped}"
        rows = self.sql(
            "select dag_run.id, run_id, dag_run.logical_date, state, clear_number, start_date, end_date"
            " from dag_run"
            " join backfill_dag_run on backfill_dag_run.dag_run_id = dag_run.id"
            " where backfill_dag_run.backfill_id = %s order by backfill_dag_run.sort_ordinal",
            backfill_id,
        )
        return [Run(*row) for row in rows]

    def _runs_finished(self, backfill_id: int) -> bool:
        states = [state for (state,) in self.sql(
            "select dag_run.state from backfill_dag_run"
            " join dag_run on dag_run.id = backfill_dag_run.dag_run_id"
            " where backfill_dag_run.backfill_id = %s", backfill_id,
        )]
        return bool(states) and all(state in ("success", "failed") for state in states)

    def resolved_window(self, run: Run) -> dict:
        """The window begin_run resolved in that run (from its XCom)."""
        values = self.sql(
            "select value from xcom where dag_run_id = %s and task_id = 'begin_run' and key = 'return_value'",
            run.id,
        )
        assert len(values) == 1, f"{run.run_id}: begin_run XComs {values}"
        value = values[0][0]
        return (json.loads(value) if isinstance(value, (str, bytes)) else value)["window"]

    def workers_of(self, run_id: str) -> dict[tuple[str, int], str | None]:
        """(task_id, map_index) -> the Celery worker that ran that task instance of the run, from its
        Celery result (result_extended); None for a task instance without one."""
        return {(task["task_id"], task["map_index"]): task["worker"] for task in self.task_instances(run_id)}

    def task_instances(self, run_id: str, dag_id: str = DAG_ID) -> list[dict]:
        """Every task instance of the run, first started first: task_id, map_index, state, queued,
        start, end, duration (s) and the Celery worker that ran it (its Celery result)."""
        with psycopg.connect(self.metadata_url, row_factory=dict_row) as connection:
            return connection.execute(
                "select task_instance.task_id, map_index, state, queued_dttm as queued, start_date as start,"
                " end_date as end, duration, celery_taskmeta.worker from task_instance"
                " left join celery_taskmeta on celery_taskmeta.task_id = task_instance.external_executor_id"
                " where dag_id = %s and run_id = %s order by start_date, map_index", (dag_id, run_id),
            ).fetchall()

    def diagnostics(self, runs: list[Run]) -> str:
        """Each run's task states and the tail of every failed task's log, then the component logs."""
        lines = []
        for run in runs:
            lines.append(f"{run.run_id} ({run.logical_date.isoformat()}): {run.state}")
            for task_id, state, _try_number in self.sql(
                "select task_id, state, try_number from task_instance where dag_id = %s and run_id = %s"
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


@contextmanager
def running_cluster(home: Path, warehouse_url: str, *, workers: Sequence[str], worker_concurrency: int,
                    settings: dict[str, str]) -> Iterator[AirflowCluster]:
    """The compose file's Airflow, with `workers` (their Celery hostnames: celery@<name>) running
    `worker_concurrency` tasks each, on the server of `warehouse_url`, its files under `home`;
    `settings` over LOCAL_SETTINGS. billing_cycle_close is unpaused. Stopped on leaving."""
    logs = home / "components"
    logs.mkdir(parents=True)
    passwords = {user: secrets.token_urlsafe(12) for user in USERS}
    compose = resolved({
        **{name: secrets.token_hex(16) for name in SECRETS},
        "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW_PASSWORDS": json.dumps(passwords),
        "AIRFLOW_USERS": ",".join(f"{user}:{role}" for user, role in USERS.items()),
        "AIRFLOW_WORKER_CONCURRENCY": str(worker_concurrency),
    }, home)["services"]
    broker_port, api_port = free_port(), free_port()
    # docker-compose.yml's places, and where they are here
    places = {
        "airflow-db:5432": f"127.0.0.1:{urlsplit(warehouse_url).port}",
        "redis:6379": f"127.0.0.1:{broker_port}",
        "airflow-api-server:8080": f"127.0.0.1:{api_port}",
        "/opt/billing": str(PROJECT_ROOT),
        "/opt/airflow": str(home),
    }

    def environment(service: str, **overrides: str) -> dict[str, str]:
        translated = {name: _translate(value, places) for name, value in compose[service]["environment"].items()
                      if value is not None}  # None: passed through from this environment, when set
        return {
            **os.environ, **translated, **LOCAL_SETTINGS, **settings,
            "AIRFLOW_HOME": str(home),
            # the caller's: its warehouse, dbt target and quality thresholds
            "BILLING_HOME": os.environ["BILLING_HOME"], "BILLING_WAREHOUSE_URL": warehouse_url,
            # NOTE: a free port each: the machine may run other sessions' schedulers and workers.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            # the image's PATH: its `airflow`, `celery` and `billing` are this environment's
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            **overrides,
        }

    env = environment("airflow-scheduler")
    airflow = AirflowCluster(
        env=env, logs=logs, api_url=f"http://127.0.0.1:{api_port}", passwords=passwords,
        metadata_url=env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg2:", "postgresql:"),
    )
    _create_metadata_database(urlsplit(airflow.metadata_url).password)
    started = datetime.now(UTC)
    try:
        airflow.start(BROKER, _broker_command(urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]), home), env)
        init = subprocess.run(command(compose["airflow-init"]), env=environment("airflow-init"),
                              capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S)
        if init.returncode != 0:
            raise AssertionError(f"airflow-init exited {init.returncode}:\n{init.stdout}\n{init.stderr}")
        airflow.start("api-server", command(compose["airflow-api-server"]), environment(
            "airflow-api-server", AIRFLOW__API__HOST="127.0.0.1", AIRFLOW__API__PORT=str(api_port)))
        airflow.start("dag-processor", command(compose["airflow-dag-processor"]), environment("airflow-dag-processor"))
        airflow.start("scheduler", command(compose["airflow-scheduler"]), env)
        for worker in workers:
            # NOTE: a container's hostname names its worker (celery@<hostname>); here, the option does.
            airflow.start(worker, [*command(compose["airflow-worker"]), "--celery-hostname", worker],
                          environment("airflow-worker"))
        airflow.wait_for(
            f"the dag-processor to parse {DAG_ID}",
            lambda: any(parsed >= started for (parsed,) in airflow.sql(
                "select last_parsed_time from dag where dag_id = %s and last_parsed_time is not null", DAG_ID)),
            STARTUP_TIMEOUT_S,
        )
        airflow.wait_for("the api-server", lambda: _responds(f"{airflow.api_url}/api/v2/monitor/health"),
                         STARTUP_TIMEOUT_S)
        for worker in workers:
            airflow.wait_for(f"Celery worker {worker}", lambda worker=worker: f"celery@{worker} ready" in
                             (logs / f"{worker}.log").read_text(errors="replace"), STARTUP_TIMEOUT_S)
        airflow.set_paused(DAG_ID, False)
        yield airflow
    finally:
        airflow.stop()


def _terminate(processes: list[subprocess.Popen]) -> None:
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _translate(value: str, places: dict[str, str]) -> str:
    for container, here in places.items():
        value = value.replace(container, here)
    return value


def _create_metadata_database(password: str) -> None:
    """Role and database `airflow` on the warehouse's server, as service airflow-db has them; a
    previous cluster's (the bench starts one per setting) is dropped first."""
    with connect(autocommit=True) as connection:
        connection.execute("drop database if exists airflow with (force)")
        connection.execute("drop role if exists airflow")
        connection.execute(sql.SQL("create role airflow login password {}").format(sql.Literal(password)))
        connection.execute("create database airflow owner airflow")


def _broker_command(url: SplitResult, home: Path) -> list[str]:
    """Debian's redis-server on the broker URL's port and password, its files under `home`, in memory only."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server not found: scripts/bootstrap.sh installs it (apt-get install redis-server)"
    return [binary, "--bind", "127.0.0.1", "--port", str(url.port), "--requirepass", url.password,
            "--dir", str(home), "--save", "", "--appendonly", "no"]


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


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return f"[{path}]\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
