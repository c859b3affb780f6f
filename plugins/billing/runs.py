"""Runs that build models or move money, and the lease that keeps them apart (SPEC §10).

Two such runs never interleave on one warehouse, whoever starts them: the team's scheduler, an
`airflow backfill create`, the CLI of any machine. A run takes the warehouse's lease
(`billing.run_lease`) in its first task, `begin_run`; every task after it works only while its run
holds the lease (`leased`); its teardown task, `end_run`, gives it back however the run ended.
`billing.runs` records every run that asked: when it asked, got and gave back the lease, how it
ended, and whether it was a backfill.

- **Waiting.** A run that finds the lease taken waits for it (`begin_run` is a sensor in reschedule
  mode, so a waiting run holds no worker slot), then fails naming the holder once it has waited
  `BILLING_RUN_LEASE_WAIT` (default 30 minutes). Waiting runs take the lease in order of `as_of`,
  so the overlapping runs of a backfill close their slots earliest first.
- **Crashes.** A holder renews the lease while its tasks run. One that stops (its process died)
  loses it `BILLING_RUN_LEASE_TTL` (default 10 minutes) after its last renewal.
- **Losing it.** A task whose run's lease was taken by another run fails: the models it would
  read may have been rebuilt for another `as_of`. Clearing the task re-runs `begin_run` (its
  setup), which takes the lease again.

CLI work that rebuilds models outside a DAG (`billing rebuild`, a backfill's plan) holds the same
lease through `exclusive`.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from billing.settings import run_lease_ttl, run_lease_wait

POKE_INTERVAL_S = 5
# A waiting run that has not asked again for this long is gone (its process died).
WAITER_GONE_AFTER = "2 minutes"


class RunLeaseBusy(RuntimeError):
    """Another run held the warehouse for longer than this run may wait."""


class RunLeaseLost(RuntimeError):
    """The run's lease was taken by another run since its first task."""


@dataclass(frozen=True)
class BillingRun:
    """One run, as its tasks pass it to each other (an XCom)."""

    token: str  # unique per run whoever orchestrates it: the id of its begin_run task instance
    dag_id: str
    run_id: str
    backfill: bool
    window: dict[str, str]  # `as_of` (ISO 8601, UTC) and `grace`, as the transform and gates take them

    def describe(self) -> str:
        return f"{self.dag_id} run {self.run_id} (as_of {self.window['as_of']})"

    def sql_params(self) -> dict:
        return {"token": self.token, "dag_id": self.dag_id, "run_id": self.run_id, "backfill": self.backfill,
                "as_of": self.window["as_of"]}


def of_dag_run(context) -> BillingRun:
    """The run of an Airflow task context; its window is validated here (no future as_of)."""
    from billing.window import ClosingWindow

    dag_run = context["dag_run"]
    window = ClosingWindow.of_dag_run(context)
    return BillingRun(
        token=str(context["ti"].id),
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        backfill=str(getattr(dag_run.run_type, "value", dag_run.run_type)) == "backfill"
        or bool((dag_run.conf or {}).get("backfill")),
        window=window.as_dict(),
    )


def begin(context) -> dict | None:
    """`begin_run`'s poke: the run (as a dict) once it holds the lease, None while it waits."""
    run = of_dag_run(context)
    return asdict(run) if _take(run) else None


def end(run: dict, *, succeeded: bool) -> None:
    """Give the lease back and record how the run ended."""
    from billing.warehouse import connect

    with connect() as connection:
        connection.execute("delete from billing.run_lease where run_token = %s", (run["token"],))
        connection.execute(
            "update billing.runs set released_at = now(), outcome = %s where run_token = %s",
            ("succeeded" if succeeded else "failed", run["token"]),
        )


def leased(task: Callable) -> Callable:
    """Run a task callable whose first argument is the run (dict) only while that run holds the lease."""

    @functools.wraps(task)
    def run_leased(run: dict, *args, **kwargs):
        with held(BillingRun(**run)):
            return task(run, *args, **kwargs)

    return run_leased


def lease_tasks(*, last_task_id: str):
    """A DAG's `begin_run` (its setup: takes the lease, returns the run) and `end_run` (its
    teardown: gives the lease back, the run counting as succeeded when `last_task_id` did, every
    shard of it when it is mapped)."""
    from airflow.sdk import PokeReturnValue, get_current_context, task

    @task.sensor(poke_interval=POKE_INTERVAL_S, mode="reschedule")
    def begin_run() -> PokeReturnValue:
        """The run's window (`as_of`, `grace`, validated once for every task), once it holds the lease."""
        run = begin(get_current_context())
        return PokeReturnValue(is_done=run is not None, xcom_value=run)

    @task
    def end_run(run: dict) -> None:
        """Give the lease back, however the run went (a teardown: the run's state ignores it)."""
        ti = get_current_context()["ti"]
        last = ti.get_task_states(dag_id=ti.dag_id, task_ids=[last_task_id], run_ids=[ti.run_id]).get(ti.run_id, {})
        end(run, succeeded=bool(last) and set(last.values()) == {"success"})

    return begin_run, end_run


@contextmanager
def held(run: BillingRun) -> Iterator[None]:
    """Check that `run` holds the lease, and renew it while the block runs."""
    _confirm(run)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew_until, args=(run, stop), daemon=True, name="run-lease-renewal")
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()


@contextmanager
def exclusive(dag_id: str, as_of: str, *, backfill: bool = False) -> Iterator[BillingRun]:
    """Hold the lease for work outside a DAG run (waiting for it as a run would), then give it back."""
    from billing.window import ClosingWindow

    run = BillingRun(token=str(uuid.uuid4()), dag_id=dag_id, run_id=f"cli__{uuid.uuid4().hex[:12]}",
                     backfill=backfill, window=ClosingWindow.parse(as_of).as_dict())
    while not _take(run):
        time.sleep(POKE_INTERVAL_S)
    succeeded = False
    try:
        with held(run):
            yield run
        succeeded = True
    finally:
        end(asdict(run), succeeded=succeeded)


# ---------------------------------------------------------------------------------------------

RECORD_REQUEST = """
insert into billing.runs (run_token, dag_id, run_id, as_of, backfill)
values (%(token)s, %(dag_id)s, %(run_id)s, %(as_of)s, %(backfill)s)
on conflict (run_token) do update set seen_at = now()
returning now() - requested_at > %(wait)s::interval as waited_too_long
"""

# The holder, if any, and whether its lease has run out.
HOLDER = """
select runs.run_token, runs.dag_id, runs.run_id, runs.as_of, runs.acquired_at, lease.expires_at < now()
from billing.run_lease as lease
join billing.runs using (run_token)
"""

# A live waiter that goes first: earlier as_of, then earlier request.
EARLIER_WAITER = f"""
select exists (
    select 1 from billing.runs
    where acquired_at is null and released_at is null
        and seen_at > now() - interval '{WAITER_GONE_AFTER}'
        and (as_of, requested_at, run_token) < (
            select as_of, requested_at, run_token from billing.runs where run_token = %(token)s
        )
)
"""


def _take(run: BillingRun) -> bool:
    """Take the lease if it is free (or has run out) and no earlier run waits; True when held."""
    from billing.warehouse import connect

    with connect() as connection:
        # NOTE: one taker at a time; renewals (row updates) are not blocked by it.
        connection.execute("lock table billing.run_lease in exclusive mode")
        [(waited_too_long,)] = connection.execute(
            RECORD_REQUEST, {**run.sql_params(), "wait": run_lease_wait()}
        ).fetchall()
        holder = connection.execute(HOLDER).fetchone()
        if holder is not None and holder[0] == run.token:
            _extend(connection, run)
            return True
        if holder is not None and holder[5]:
            _expire(connection, holder[0])
            holder = None
        if holder is None and not connection.execute(EARLIER_WAITER, run.sql_params()).fetchone()[0]:
            _grant(connection, run)
            return True
        if waited_too_long:
            connection.execute(
                "update billing.runs set released_at = now(), outcome = 'gave_up' where run_token = %s",
                (run.token,),
            )
            connection.commit()
            busy = (
                f"{holder[1]} run {holder[2]} (as_of {holder[3].isoformat()}, since {holder[4]:%Y-%m-%d %H:%M:%S} UTC)"
                if holder else "runs with an earlier as_of"
            )
            raise RunLeaseBusy(
                f"{run.describe()} waited {run_lease_wait()} for the warehouse, held by {busy};"
                f" nothing was built. Re-run it once that run has ended (BILLING_RUN_LEASE_WAIT sets the wait)"
            )
        return False


def _confirm(run: BillingRun) -> None:
    """Renew the run's lease; take it back if it ran out and no other run took it since."""
    from billing.warehouse import connect

    with connect() as connection:
        connection.execute("lock table billing.run_lease in exclusive mode")
        holder = connection.execute(HOLDER).fetchone()
        if holder is not None and holder[0] == run.token:
            _extend(connection, run)
            return
        if holder is None or holder[5]:
            [last] = connection.execute(
                "select run_token from billing.runs where acquired_at is not null"
                " order by acquired_at desc limit 1"
            ).fetchall() or [(None,)]
            if last == run.token:
                if holder is not None:
                    connection.execute("delete from billing.run_lease")
                _grant(connection, run)
                return
        raise RunLeaseLost(
            f"{run.describe()} lost the warehouse to another run since it began"
            + (f" ({holder[1]} run {holder[2]}, as_of {holder[3].isoformat()})" if holder else "")
            + "; nothing was done: clear this run from begin_run, or re-run it"
        )


def _grant(connection, run: BillingRun) -> None:
    connection.execute(
        "insert into billing.run_lease (run_token, expires_at) values (%s, now() + %s::interval)",
        (run.token, run_lease_ttl()),
    )
    connection.execute(
        "update billing.runs set acquired_at = now(), released_at = null, outcome = null where run_token = %s",
        (run.token,),
    )


def _extend(connection, run: BillingRun) -> bool:
    return connection.execute(
        "update billing.run_lease set expires_at = now() + %s::interval where run_token = %s",
        (run_lease_ttl(), run.token),
    ).rowcount == 1


def _expire(connection, token: str) -> None:
    """A holder that stopped renewing: its process died. Free the lease and say so."""
    connection.execute("delete from billing.run_lease where run_token = %s", (token,))
    connection.execute(
        "update billing.runs set released_at = now(), outcome = 'expired' where run_token = %s", (token,)
    )


def _renew_until(run: BillingRun, stop: threading.Event) -> None:
    from billing.warehouse import connect

    with connect(autocommit=True) as connection:
        while not stop.wait(run_lease_ttl().total_seconds() / 4):
            _extend(connection, run)
