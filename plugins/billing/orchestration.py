"""Run a project DAG through Airflow in this process, without a scheduler: `dag.test()`.

Airflow keeps its metadata in SQLite under `BILLING_HOME/airflow`, and its logs in
`BILLING_HOME/airflow/logs/runs.log` instead of on stdout. Task callables run in this process
(main thread), so whatever the caller started here, such as a local HTTP server, is reachable.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
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
    """Run every task of `dag_id` once for `logical_date` and wait for the run to finish."""
    folder = Path(dags_folder or os.environ.get(DAGS_FOLDER_ENV) or DAGS_DIR).resolve()
    bag = dag_bag(folder)
    if dag_id not in bag.dags:
        errors = "".join(f"\n{file}: {error}" for file, error in bag.import_errors.items())
        raise LookupError(f"no DAG {dag_id!r} in {folder}{errors}")
    dag = bag.dags[dag_id]
    if logical_date.tzinfo is None:
        logical_date = logical_date.replace(tzinfo=timezone.utc)

    # NOTE: Airflow keeps one run per (dag_id, logical_date). On a re-run, dag.test() deletes
    # that date's previous run with its task instances and creates a new run (run_id from the
    # current time), so every task runs again whatever it did last time. That is what we want:
    # the tasks are idempotent and a re-run after a crash or a fix must redo everything.
    dag_run = dag.test(logical_date=logical_date, run_conf=conf or {})

    # NOTE: dag.test() returns normally when tasks failed; the run's state tells.
    failed = tuple(sorted(ti.task_id for ti in dag_run.get_task_instances(state=["failed"])))
    errors = _FAILURES.pop(dag_run.run_id, {})
    return DagRunOutcome(
        dag_id=dag_id,
        run_id=dag_run.run_id,
        state=str(getattr(dag_run.state, "value", dag_run.state)),
        failed_tasks=failed,
        failure_messages={task_id: errors[task_id] for task_id in failed if task_id in errors},
        log_path=_log_path(),
    )


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

