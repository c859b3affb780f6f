"""What every DAG of the project shares: how it runs (`RUN_SETTINGS`, `WINDOW_PARAMS`), its tasks'
operational settings (`DEFAULT_ARGS`), the `billing.run.failed` announcement of a task that failed
for good, the `dispatch_webhooks` and `update_usage` tasks, the settings of a task that calls
the payment gateway (`gateway_task`, billing.shards), and how a DAG orders its steps (`in_order`).

- **Retries.** Every task is idempotent, so a failed one is tried again, `RETRIES` times,
  `BILLING_TASK_RETRY_DELAY` apart (default 1 minute): a dropped connection, a dbt hiccup or a
  gateway's lost answer (the charge is resent with the same idempotency key) usually heals by then.
  Keep the delay well inside the lease's TTL (`BILLING_RUN_LEASE_TTL`, default 10 minutes), so a
  retrying run keeps the warehouse.
- **No retry** (`RETRY_POLICY`) for what re-running cannot fix: a failed gate (bad data stays bad),
  a value the run was given or read (an as_of in the future, a bad grace or config: any
  ValueError), the lease (`begin_run` already waited `BILLING_RUN_LEASE_WAIT`; a lost lease comes
  back only by clearing from `begin_run`), and a timeout (it would take as long again, holding the
  warehouse). The task fails at once and the operator is told.
- **Timeouts.** A task may run `TASK_TIMEOUT`, a dbt build `MODEL_BUILD_TIMEOUT`, many times what
  they take on the benchmark's year of history (bench/); a hung task would otherwise renew the
  run's lease forever and block every other run.
- **Failure.** A task that failed for good (`announce_failure`) logs one line naming the task, its
  error and what to do, and enqueues `billing.run.failed` once per DAG × run × task (× shard, for
  a mapped task: `charge_invoices[2]`): re-running the callback, clearing the task, or running the
  same logical date again in-process (a new Airflow run id) adds nothing.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from datetime import timedelta

import pendulum
from airflow.sdk import task
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule
from airflow.sdk.exceptions import AirflowTaskTimeout

from billing.quality.gates import GateFailed
from billing.runs import BillingRun, RunLeaseBusy, RunLeaseLost, held, leased
from billing.settings import task_retry_delay
from billing.shards import GATEWAY_POOL, ONE_SHARD, Shard, gateway_task_slots
from billing.window import EARLIEST_AS_OF

logger = logging.getLogger(__name__)

RUN_FAILED = "billing.run.failed"

RETRIES = 2
TASK_TIMEOUT = timedelta(hours=1)
MODEL_BUILD_TIMEOUT = timedelta(hours=4)

RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=[GateFailed, ValueError, RunLeaseBusy, RunLeaseLost, AirflowTaskTimeout],
            action=RetryAction.FAIL,
            reason="re-running cannot fix it",
        )
    ]
)


def announce_failure(context) -> None:
    """`on_failure_callback`: log the failed task and what to do, and enqueue `billing.run.failed`."""
    from billing.warehouse import connect
    from billing.webhooks.outbox import enqueue_event

    ti, dag_run = context["ti"], context["dag_run"]
    error = context.get("exception")
    task_id = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"  # one shard, as Airflow names it
    data = {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "as_of": _as_of(context),
        "task_id": task_id,
        "error": _one_line(error),
        "action": _what_to_do(error, task_id, context["task"].execution_timeout),
    }
    # NOTE: logged first: when the warehouse is what failed, the event cannot be enqueued. A warning:
    # the task's error is the exception Airflow logged just before, the last error-level entry of
    # the task's log (which billing.airflow_api reports).
    logger.warning("%s run %s failed in %s: %s. To do: %s", data["dag_id"], data["run_id"], data["task_id"],
                 data["error"], data["action"])
    # One event per run × task; a run's logical date names it across re-runs (a manual trigger may have none).
    run = dag_run.logical_date.isoformat() if dag_run.logical_date else dag_run.run_id
    with connect() as connection:
        enqueue_event(connection, event_type=RUN_FAILED, subject_id=f"{ti.dag_id}/{run}/{task_id}", data=data)


DEFAULT_ARGS = {
    "retries": RETRIES,
    "retry_delay": task_retry_delay(),
    "retry_policy": RETRY_POLICY,
    "execution_timeout": TASK_TIMEOUT,
    "on_failure_callback": announce_failure,
}
# How every DAG runs, besides its schedule: one run at a time; no catching up on missed schedules
# (a backfill replays the past on purpose); any logical date since EARLIEST_AS_OF (a migration
# replays years of history, SPEC §10).
RUN_SETTINGS = {
    "start_date": pendulum.instance(EARLIEST_AS_OF),
    "catchup": False,
    "max_active_runs": 1,
    "default_args": DEFAULT_ARGS,
}
# The params of a DAG that works on a window (billing.window.ClosingWindow): its as_of and grace.
WINDOW_PARAMS = {"as_of": None, "grace": "1 hour"}


def in_order(*steps) -> None:
    """Run `steps` one after another, each downstream of every step before it (not only the last).

    NOTE: when a task fails, Airflow marks the tasks after it `upstream_failed` one level of the
    graph per scheduling pass, and an in-process run (`dag.test()`, billing.orchestration) sleeps
    a second between passes: a close whose first gate failed took 9 s more to end. With every
    earlier step upstream, one pass marks all the later ones.
    """
    for position, step in enumerate(steps, start=1):
        step >> list(steps[position:])


def gateway_task() -> dict:
    """The settings of a task that calls the payment gateway (read when the DAGs are parsed): one slot
    of the gateway pool per call it may have in flight (billing.shards)."""
    return {"pool": GATEWAY_POOL, "pool_slots": gateway_task_slots()}


def gateway_calls_in_flight() -> int:
    """How many calls the running gateway task may have in flight: the pool slots it holds."""
    from airflow.sdk import get_current_context

    return get_current_context()["task"].pool_slots


@task
def dispatch_webhooks(run: dict | None = None, shard: dict | None = None) -> dict:
    """Deliver the webhook outbox (SPEC §8), to the endpoints of `shard` (a mapped task's; default
    all). Given its run (a DAG holding the warehouse's lease), only while the run holds it."""
    from billing.webhooks.dispatch import dispatch_webhooks as deliver

    with held(BillingRun(**run)) if run else nullcontext():
        return deliver(shard=Shard(**shard) if shard else ONE_SHARD).__dict__


@task(execution_timeout=MODEL_BUILD_TIMEOUT)
@leased
def update_usage(run: dict) -> dict:
    """Bring the usage models up to date with the events ingested since the last run (incremental,
    docs/incremental.md): the hourly DAGs that read usage build it first."""
    from billing import transform

    return transform.update_usage(**run["window"]).__dict__


def _as_of(context) -> str | None:
    """The run's as_of as its tasks see it; as given when that is what was refused."""
    from billing.window import ClosingWindow

    try:
        return ClosingWindow.of_dag_run(context).as_dict()["as_of"]
    except ValueError:
        return context["params"].get("as_of")


def _one_line(error: BaseException | str | None) -> str:
    if error is None:
        return "failed (see the task's log)"
    if isinstance(error, BaseException):
        text = str(error).strip()
        return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
    return str(error).strip().splitlines()[0]


def _what_to_do(error: BaseException | str | None, task_id: str, timeout: timedelta | None) -> str:
    if isinstance(error, GateFailed):
        if error.result.as_of is not None:
            return str(error).splitlines()[-1]  # the gate's own hint: fix the data, or acknowledge
        return f"fix the data, then clear {task_id} to run the gate again"
    if isinstance(error, AirflowTaskTimeout):
        return (f"{task_id} ran past its timeout ({timeout}): find what it waited on (a lock, a slow query),"
                " then clear it")
    return f"fix the cause, then clear {task_id} (or re-run the run): every task is idempotent"
