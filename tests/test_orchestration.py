"""Real Airflow runs (dag.test on SQLite) of a throwaway two-task DAG.

The first run in a process pays about 8 s (Airflow import, metadata DB, the in-process
Execution API); each later run takes a fraction of a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from billing.orchestration import run_dag

pytestmark = pytest.mark.slow

# Each task appends "<task> <pid>" to the file named by conf["out"]; "load" raises when
# conf["fail"] is set.
DAG_FILE = '''
import os

import pendulum
from airflow.sdk import dag, get_current_context, task


def note(name):
    conf = get_current_context()["dag_run"].conf
    with open(conf["out"], "a") as out:
        out.write(f"{name} {os.getpid()}\\n")
    return conf


@dag(dag_id="two_steps", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def two_steps():
    @task
    def extract():
        note("extract")

    @task
    def load():
        if note("load").get("fail"):
            raise RuntimeError("load failed on purpose")

    extract() >> load()


two_steps()
'''

LOGICAL_DATE = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def dags_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dags")
    (folder / "two_steps.py").write_text(DAG_FILE)
    return folder


def run(dags_folder: Path, out: Path, *, fail: bool = False, logical_date: datetime = LOGICAL_DATE):
    conf = {"out": str(out), "fail": fail}
    return run_dag("two_steps", logical_date=logical_date, conf=conf, dags_folder=dags_folder)


def lines(out: Path) -> list[str]:
    return out.read_text().splitlines()


def test_a_successful_run_runs_every_task_in_this_process(
    dags_folder: Path, tmp_path: Path, billing_home: Path
) -> None:
    out = tmp_path / "out.txt"

    outcome = run(dags_folder, out, logical_date=datetime(2024, 4, 1))  # naive means UTC

    assert outcome.succeeded, outcome
    assert (outcome.dag_id, outcome.state, outcome.failed_tasks) == ("two_steps", "success", ())
    assert lines(out) == [f"extract {os.getpid()}", f"load {os.getpid()}"]
    assert (billing_home / "airflow" / "airflow.db").is_file()


def test_a_failed_run_names_the_failed_task_and_its_error(dags_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"

    outcome = run(dags_folder, out, fail=True)

    assert not outcome.succeeded
    assert outcome.state == "failed"
    assert outcome.failed_tasks == ("load",)
    assert outcome.failure_messages == {"load": "RuntimeError: load failed on purpose"}
    assert "load failed on purpose" in outcome.log_path.read_text()


def test_a_rerun_of_the_same_logical_date_runs_every_task_again(dags_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"

    failed = run(dags_folder, out, fail=True)
    resumed = run(dags_folder, out)
    again = run(dags_folder, out)

    assert (failed.state, resumed.state, again.state) == ("failed", "success", "success")
    assert len({failed.run_id, resumed.run_id, again.run_id}) == 3
    assert [line.split()[0] for line in lines(out)] == ["extract", "load"] * 3


def test_an_unknown_dag_is_an_error(dags_folder: Path) -> None:
    with pytest.raises(LookupError, match="no DAG 'nope'"):
        run_dag("nope", logical_date=LOGICAL_DATE, dags_folder=dags_folder)



def test_a_run_in_which_no_task_ran_is_a_failure_naming_the_tasks(dags_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"

    # before the DAG's start_date, Airflow creates the run but starts none of its tasks
    outcome = run(dags_folder, out, logical_date=datetime(2023, 6, 1, tzinfo=UTC))

    assert not out.exists()
    assert (outcome.state, outcome.failed_tasks, outcome.not_run) == ("failed", (), ("extract", "load"))


RUN_TWO_STEPS = """
import sys
from datetime import datetime, timezone
from billing.orchestration import run_dag
outcome = run_dag("two_steps", logical_date=datetime(2024, 5, 1, tzinfo=timezone.utc),
                  conf={"out": sys.argv[1]}, dags_folder=sys.argv[2])
print(outcome.state)
"""


def test_two_processes_on_one_billing_home_take_turns(dags_folder: Path, tmp_path: Path) -> None:
    # a new BILLING_HOME: both also race to create Airflow's metadata DB
    env = {**os.environ, "BILLING_HOME": str(tmp_path / "home")}
    outs = [tmp_path / "first.txt", tmp_path / "second.txt"]
    processes = [
        subprocess.Popen([sys.executable, "-c", RUN_TWO_STEPS, str(out), str(dags_folder)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for out in outs
    ]
    results = [(process.wait(timeout=300), *process.communicate()) for process in processes]

    assert [(code, stdout.strip()) for code, stdout, _ in results] == [(0, "success"), (0, "success")], results
    assert [[line.split()[0] for line in lines(out)] for out in outs] == [["extract", "load"]] * 2
