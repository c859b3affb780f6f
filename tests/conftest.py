"""One embedded warehouse for the whole test session, under a temporary BILLING_HOME.

Every test that touches the warehouse shares it; tests that need a clean slate call
`reset_warehouse()`, which empties the tables instead of starting a new server. Under
pytest-xdist each worker is a session of its own (its own BILLING_HOME and warehouse), and runs
whole modules: tests of a module may build on each other's state. A module marked `independent`
(each of its tests builds its own state) is spread test by test instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# NOTE: set before any test module imports billing.dag_defaults (the DAGs read it when parsed): a
# task's retry waits a second here, not the minute operators get by default.
os.environ.setdefault("BILLING_TASK_RETRY_DELAY", "1 second")


# NOTE: tryfirst: xdist reads the group marks in its own modifyitems hook, which must come after.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the tests for xdist, and put the groups in the order the workers take them.

    A group runs on one worker, in collection order: a module's tests; every test marked
    `scheduler` (they share one real Airflow, tests/airflow_cluster.py); or, in a module marked
    `independent`, each test alone. Groups are handed out in list order (`--no-loadscope-reorder`):
    the scheduler's first, as the longest, then those marked `slow`, then the rest, so that both
    workers end on short groups and finish together.
    """
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        if item.get_closest_marker("scheduler"):
            group = "airflow_cluster"
        elif item.get_closest_marker("independent"):
            group = None  # xdist's default: the test is its own unit
        else:
            group = str(item.path)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
        groups.setdefault(group or item.nodeid, []).append(item)
    items[:] = [item for tests in sorted(groups.values(), key=_turn) for item in tests]


def _turn(tests: list[pytest.Item]) -> int:
    """0, 1 or 2: when a group is handed out (collection order among groups of one turn)."""
    if tests[0].get_closest_marker("scheduler"):
        return 0
    return 1 if any(test.get_closest_marker("slow") for test in tests) else 2


@pytest.fixture(scope="session", autouse=True)
def billing_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("billing_home")
    os.environ["BILLING_HOME"] = str(home)
    # the tests' webhook receivers listen on loopback, which delivery refuses by default
    os.environ.setdefault("BILLING_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    yield home
    if not os.environ.get("BILLING_WAREHOUSE_URL"):
        from billing.warehouse import stop_embedded

        stop_embedded()


@pytest.fixture(scope="session")
def warehouse(billing_home: Path) -> str:
    """The warehouse URL, with `billing init` applied."""
    from billing.schema import init_warehouse
    from billing.warehouse import warehouse_url

    init_warehouse()
    return warehouse_url()


def reset_warehouse() -> None:
    """Empty every raw and billing table (the schemas and the ledger's chart of accounts stay)."""
    from billing.warehouse import connect

    with connect() as connection:
        tables = connection.execute(
            "select format('%I.%I', schemaname, tablename) from pg_tables"
            " where schemaname in ('raw', 'billing') and tablename != 'ledger_accounts'"
        ).fetchall()
        connection.execute(f"truncate {', '.join(name for (name,) in tables)} cascade")


def run_cli(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the `billing` console script as a user would, in this session's BILLING_HOME (`env`: more variables)."""
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("billing")), *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=900,
    )
    if check and completed.returncode != 0:
        raise AssertionError(
            f"billing {' '.join(args)} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}"
        )
    return completed


def query(sql: str, *params) -> list[tuple]:
    from billing.warehouse import connect

    with connect() as connection:
        return connection.execute(sql, params).fetchall()


def run_dag(dag_id: str, logical_date: str, **conf):
    """Run a DAG through Airflow in this process (faster than the CLI: Airflow starts once)."""
    from billing.orchestration import run_dag as run
    from billing.window import parse_timestamp

    outcome = run(dag_id, logical_date=parse_timestamp(logical_date), conf=conf)
    assert outcome.succeeded, f"{dag_id} failed in {outcome.failed_tasks}: {outcome.failure_messages}"
    return outcome
