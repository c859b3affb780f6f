"""Run a project DAG through Airflow: a team's Airflow through its REST API when
`BILLING_AIRFLOW_API_URL` is set (`billing.airflow_api`), else in this process with `dag.test()`.

In-process, Airflow keeps its metadata in SQLite under `BILLING_HOME/airflow`, the gateway pool
(billing.shards) included, and its logs in `BILLING_HOME/airflow/logs/runs.log` instead of on
stdout. Task callables run in this process (main thread), so whatever the caller started here,
such as a local HTTP server, is reachable. One process at a time uses that metadata
(`_metadata_lock`): a second `billing` command waits.
"""

from __future__ import annotations

import fcntl
import functools
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pluggy

from billing.settings import DAGS_DIR, billing_home

# NOTE: lets tests (and operators trying a DAG) point at another folder than the project's dags/.
DAGS_FOLDER_ENV = "BILLING_DAGS_FOLDER"


@dataclass(frozen=True)
class DagRunOutcome:
    dag_id: str
    run_id: str
    state: str  # "success" / "failed"
    failed_tasks: tuple[str, ...]
    failure_messages: dict[str, str] = field(default_factory=dict)  # task id -> "Error: message"
    log_path: Path | None = None  # Airflow's log, with each failed task's traceback
    not_run: tuple[str, ...] = ()  # tasks that did not run (after a failure, or never started)

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


def run_dag(
    dag_id: str,
    *,
    logical_date: datetime,
    conf: dict | None = None,
    dags_folder: Path | str | None = None,
) -> DagRunOutcome:
    """Run every task of `dag_id` once for `logical_date` and wait for the run to finish.

    A run in which a task did not run is a failure naming that task (SPEC §10), whatever state
    Airflow gave the run.
    """
    from billing import airflow_api

    if airflow_api.configured():
        return airflow_api.run_dag(dag_id, logical_date=logical_date, conf=conf)
    with _metadata_lock():
        return _run_in_process(dag_id, logical_date=logical_date, conf=conf, dags_folder=dags_folder)


def _run_in_process(dag_id: str, *, logical_date: datetime, conf: dict | None,
                    dags_folder: Path | str | None) -> DagRunOutcome:
    folder = Path(dags_folder or os.environ.get(DAGS_FOLDER_ENV) or DAGS_DIR).resolve()
    bag = dag_bag(folder)
    if dag_id not in bag.dags:
        # NOTE: the last line of each file's traceback: its error (a bad setting read at parse time)
        errors = "".join(f"\n{Path(file).name}: {error.strip().splitlines()[-1]}"
                         for file, error in bag.import_errors.items())
        raise LookupError(f"no DAG {dag_id!r} in {folder}{errors}")
    dag = bag.dags[dag_id]
    if logical_date.tzinfo is None:
        logical_date = logical_date.replace(tzinfo=UTC)

    # NOTE: Airflow keeps one run per (dag_id, logical_date). On a re-run, dag.test() deletes
    # that date's previous run with its task instances and creates a new run (run_id from the
    # current time), so every task runs again whatever it did last time. That is what we want:
    # the tasks are idempotent and a re-run after a crash or a fix must redo everything.
    dag_run = dag.test(logical_date=logical_date, run_conf=conf or {})

    # NOTE: dag.test() returns normally when tasks failed, and a run whose tasks Airflow never
    # started can end "success": each task's own state tells.
    # (before a DAG's start_date, Airflow creates none of the run's task instances)
    states = dict.fromkeys(dag.task_ids, "None") | task_states(
        (ti.task_id, str(getattr(ti.state, "value", ti.state))) for ti in dag_run.get_task_instances()
    )
    return outcome_of(dag_id, dag_run.run_id, states, _FAILURES.pop(dag_run.run_id, {}), log_path=_log_path())


def task_states(instances: Iterable[tuple[str, str]]) -> dict[str, str]:
    """task id -> state, from (task id, state) of each task instance: a mapped task is as good as its
    worst instance (its first that did not succeed)."""
    states: dict[str, str] = {}
    for task_id, state in instances:
        if states.get(task_id, "success") == "success":
            states[task_id] = state
    return states


def outcome_of(dag_id: str, run_id: str, states: dict[str, str], errors: dict[str, str], *,
               log_path: Path | None = None) -> DagRunOutcome:
    """A run's outcome from the states of all its tasks: it succeeded only if every task ran and
    succeeded (SPEC §10), whatever state Airflow gave the run."""
    failed = tuple(sorted(task_id for task_id, state in states.items() if state == "failed"))
    not_run = tuple(sorted(task_id for task_id, state in states.items() if state not in ("success", "failed")))
    return DagRunOutcome(
        dag_id=dag_id,
        run_id=run_id,
        state="failed" if failed or not_run else "success",
        failed_tasks=failed,
        failure_messages={task_id: errors.get(task_id, "failed") for task_id in failed},
        log_path=log_path,
        not_run=not_run,
    )


# How often a busy metadata lock is tried again.
_LOCK_POLL_S = 1.0


@contextmanager
def _metadata_lock() -> Iterator[None]:
    """Hold `BILLING_HOME/airflow/.lock` while this process uses the SQLite metadata.

    NOTE: two processes running dag.test() on one SQLite metadata DB crash each other (a
    concurrent migration; a re-run deleting the other's run). The second waits, then fails with
    one line, after BILLING_RUN_LEASE_WAIT, as a second run waits for the warehouse's lease.
    """
    from billing.settings import run_lease_wait

    path = billing_home() / "airflow" / ".lock"
    path.parent.mkdir(exist_ok=True)
    deadline = time.monotonic() + run_lease_wait().total_seconds()
    with path.open("a+") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.seek(0)
                    raise MetadataBusy(
                        f"another billing command ({lock.read().strip() or 'unknown'}) has been running DAGs"
                        f" on {path.parent} for over {run_lease_wait()}; wait for it to end, or raise"
                        " BILLING_RUN_LEASE_WAIT"
                    ) from None
                time.sleep(_LOCK_POLL_S)
        lock.truncate(0)
        lock.write(f"pid {os.getpid()}: {' '.join(sys.argv)}")
        lock.flush()
        try:
            yield
        finally:
            lock.truncate(0)
            fcntl.flock(lock, fcntl.LOCK_UN)


class MetadataBusy(RuntimeError):
    """Another process kept the in-process Airflow metadata for longer than a run may wait."""


def _log_path() -> Path:
    return billing_home() / "airflow" / "logs" / "runs.log"


def airflow_environment(dags_folder: Path | str | None = None) -> dict[str, str]:
    """The Airflow settings of this project's runs: home, DAG folder and SQLite metadata DB.

    `run_dag` applies them to this process; give them to an Airflow command started as a
    subprocess (scheduler, dag-processor, `airflow backfill create`, …) to make it share the same
    `BILLING_HOME/airflow` metadata.
    """
    folder = Path(dags_folder) if dags_folder else Path(os.environ.get(DAGS_FOLDER_ENV) or DAGS_DIR).resolve()
    home = billing_home() / "airflow"
    home.mkdir(exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }


def _configure_airflow(dags_folder: Path) -> None:
    environment = airflow_environment(dags_folder)
    home = Path(environment["AIRFLOW_HOME"])
    database = environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    folder = environment["AIRFLOW__CORE__DAGS_FOLDER"]
    # NOTE: set unconditionally, before Airflow is imported (it reads them on import): dag.test()
    # deletes earlier runs, so it must never touch a real Airflow's metadata DB that an
    # operator's environment happens to point at.
    os.environ.update(environment)
    from airflow import settings

    if (settings.SQL_ALCHEMY_CONN, settings.DAGS_FOLDER) != (database, folder):
        # NOTE: Airflow was imported earlier in this process with other settings (e.g. a test
        # module importing a DAG); point its globals and its ORM at ours.
        settings.configure_vars()
        settings.reconfigure_orm()
    _log_to_file(_log_path())
    _migrate_if_needed(home / "airflow.db")
    _listen_for_failures()


@functools.cache
def _log_to_file(path: Path) -> Path:
    from airflow.sdk.log import configure_logging

    path.parent.mkdir(parents=True, exist_ok=True)
    # NOTE: Airflow logs to stdout by default, which would bury the CLI's own output.
    configure_logging(output=path.open("a"), colored_console_log=False, cache_logger_on_first_use=False)
    return path


def _migrate_if_needed(database_file: Path) -> None:
    """`airflow db migrate`, skipped (about 0.6 s instead of 1.2 s) when the DB is up to date."""
    from airflow.utils import db

    if database_file.exists():
        try:
            db.check_migrations(timeout=0)
            return
        except TimeoutError:
            pass
    db.upgradedb()


# run_id -> task_id -> "ErrorType: message", filled while dag.test() runs the tasks.
_FAILURES: dict[str, dict[str, str]] = {}


class _FailureListener:
    """An Airflow listener: the task runner hands it each failed task's exception."""

    # NOTE: airflow.listeners.hookimpl is this marker; importing it would import Airflow too early.
    @pluggy.HookimplMarker("airflow")
    def on_task_instance_failed(self, previous_state, task_instance, error) -> None:
        if error is not None:
            message = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
            _FAILURES.setdefault(task_instance.run_id, {})[task_instance.task_id] = message


@functools.cache
def _listen_for_failures() -> None:
    from airflow.sdk.listener import get_listener_manager

    get_listener_manager().add_listener(_FailureListener())


def dag_bag(dags_folder: Path = DAGS_DIR):
    """The DAGs of a folder, parsed as the dag-processor does (the "dags-folder" bundle)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    _configure_airflow(dags_folder)
    return BundleDagBag(dag_folder=dags_folder, bundle_path=dags_folder, bundle_name="dags-folder")

