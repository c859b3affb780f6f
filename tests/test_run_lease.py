"""One run at a time per warehouse (SPEC §10, billing.runs): two closes from two orchestrators take
turns, a crashed holder's lease runs out, a run that waits too long fails naming the holder, and the
shard tasks of one run (billing.shards) hold its lease together."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from billing import runs
from conftest import query, reset_warehouse
from spine.test_time import AS_OF, INVOICE_COLUMNS, _load

pytestmark = [pytest.mark.slow, pytest.mark.independent]

HOLD_THE_LEASE = """
import sys, time
from billing.runs import exclusive
with exclusive("lease holder", "2024-04-02T20:00:00Z"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_two_closes_started_at_once_from_two_orchestrators_take_turns(warehouse, tmp_path):
    _load(tmp_path)
    # two `billing` commands with their own Airflow metadata (as two machines, or the CLI beside a
    # team's scheduler would be) on one warehouse
    other_home = tmp_path / "other_billing_home"
    environments = [
        os.environ.copy(),
        {**os.environ, "BILLING_HOME": str(other_home), "BILLING_WAREHOUSE_URL": warehouse},
    ]
    closes = [
        subprocess.Popen([str(Path(sys.executable).with_name("billing")), "close-cycles", "--as-of", AS_OF],
                         env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for environment in environments
    ]
    results = [(close.wait(timeout=600), *close.communicate()) for close in closes]

    assert [code for code, _, _ in results] == [0, 0], results
    assert [row[:5] for row in query(INVOICE_COLUMNS)] == [
        ("INV-000001", "s_tokyo", "2024-01-31", 1_200, "paid"),
        ("INV-000002", "s_utc", "2024-02-01", 1_500, "open"),
        ("INV-000003", "s_tokyo", "2024-02-29", 1_300, "paid"),
        ("INV-000004", "s_utc", "2024-03-01", 1_100, "open"),
    ]
    assert query("select count(*) from billing.charge_attempts") == [(2,)]
    spans = query("select acquired_at, released_at, outcome from billing.runs order by acquired_at")
    assert [outcome for _, _, outcome in spans] == ["succeeded", "succeeded"]
    assert spans[0][1] <= spans[1][0], spans  # the second took the lease after the first gave it back
    # the first issued everything; the second found it issued
    assert query("select count(distinct issued_by_run) from billing.invoices") == [(1,)]


@pytest.fixture
def holder(warehouse, monkeypatch):
    """A process holding the lease with a 2-second TTL (it renews every half second)."""
    reset_warehouse()
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LEASE], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "BILLING_RUN_LEASE_TTL": "2 seconds"},
    )
    assert process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait(timeout=30)


def test_a_run_that_waits_too_long_fails_naming_the_holder(holder, monkeypatch):
    monkeypatch.setenv("BILLING_RUN_LEASE_WAIT", "3 seconds")

    with pytest.raises(runs.RunLeaseBusy, match="waited 0:00:03 for the warehouse, held by lease holder run cli__"):
        with runs.exclusive("billing rebuild", AS_OF):
            pytest.fail("took a lease that another process holds")

    assert query("select dag_id, outcome from billing.runs order by requested_at") == [
        ("lease holder", None), ("billing rebuild", "gave_up"),
    ]


def test_a_crashed_holders_lease_runs_out(holder):
    holder.kill()  # SIGKILL: no chance to give the lease back
    holder.wait(timeout=30)
    started = time.monotonic()

    with runs.exclusive("billing rebuild", AS_OF):
        waited = time.monotonic() - started

    assert waited < 15, waited
    assert query("select dag_id, outcome from billing.runs order by requested_at") == [
        ("lease holder", "expired"), ("billing rebuild", "succeeded"),
    ]
    assert query("select count(*) from billing.run_lease") == [(0,)]


def begin_run(token: str, run_id: str) -> dict | None:
    """`begin_run`'s poke for a run of billing_cycle_close: the run once it holds the lease, else None."""
    dag_run = SimpleNamespace(dag_id="billing_cycle_close", run_id=run_id, run_type="manual", conf={})
    return runs.begin({"dag_run": dag_run, "ti": SimpleNamespace(id=token), "params": {"as_of": AS_OF}})


def test_the_shard_tasks_of_one_run_hold_its_lease_together(warehouse, monkeypatch):
    reset_warehouse()
    monkeypatch.setenv("BILLING_RUN_LEASE_TTL", "2 seconds")  # a holder renews every half second
    run = begin_run("close", "sharded")
    assert run is not None
    works = {0: 1.0, 1: 3.0, 2: 5.0}  # seconds each shard works, on a worker of its own (here a thread)
    ended, errors = [], []

    def shard(index: int) -> None:
        try:
            with runs.held(runs.BillingRun(**run)):
                time.sleep(works[index])
            ended.append(index)
        except Exception as error:  # the assertion below names it
            errors.append(error)

    workers = [threading.Thread(target=shard, args=(index,)) for index in works]
    for worker in workers:
        worker.start()
    time.sleep(4)  # twice the TTL since begin_run; shards 0 and 1 are done, shard 2 still renews
    other_got_it = begin_run("backfill", "other")
    for worker in workers:
        worker.join()

    assert (errors, ended, other_got_it) == ([], [0, 1, 2], None)
    runs.end(run, succeeded=True)  # end_run
    assert begin_run("backfill", "other") is not None
    assert query("select run_id, outcome from billing.runs order by requested_at") == [
        ("sharded", "succeeded"), ("other", None),
    ]
