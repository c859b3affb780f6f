"""Run a project DAG through a team's Airflow, over its REST API, instead of in this process.

When `BILLING_AIRFLOW_API_URL` is set (the api-server's base URL, e.g. http://airflow.internal:8080),
`billing close-cycles`, `billing run` and `billing backfill` do not run DAGs with `dag.test()`:
`orchestration.run_dag` hands them to `run_dag` here, which triggers the run through the
api-server (the official `apache-airflow-client`) and follows it until it finishes. The run then
happens where the team's runs happen: it shows in their UI, waits for their pools and the DAG's
`max_active_runs`, and runs on their workers. Those need this project's DAGs and the billing
package, and must reach the same warehouse.

Credentials: `BILLING_AIRFLOW_USERNAME` and `BILLING_AIRFLOW_PASSWORD`, exchanged for a JWT at the
api-server's `/auth/token` (Airflow 3's SimpleAuthManager and the FAB auth manager both provide it),
or `BILLING_AIRFLOW_TOKEN`, a JWT used as is. The user needs a role that may read and trigger DAG
runs and read their logs (SimpleAuthManager: `user`; FAB: `User`).

Choices a team would otherwise be surprised by:

- A paused DAG is refused, not unpaused: a pause is the team's decision, and unpausing an
  `@hourly` DAG would also restart its schedule.
- Airflow keeps one run per (DAG, logical date). A re-run of a date that already has a finished
  run clears that run, which runs every task again under the same run id (its earlier tries stay in
  the UI) — the counterpart of `dag.test()` replacing the earlier run in-process; every task is
  idempotent. A run still in progress, or one created with another `conf` (e.g. another grace, or
  the hourly schedule's run, conf `{}`), is left alone and refused with what to do instead.
- The wait is bounded: `BILLING_AIRFLOW_RUN_TIMEOUT` seconds (default 3600). A run that outlasts it
  goes on in Airflow; the error says where to follow it.
- The outcome is judged as in-process (`orchestration.outcome_of`): a run succeeds only if every
  task ran and succeeded (SPEC §10), whatever state Airflow gave the run; the tasks that never ran
  (upstream_failed, skipped, still queued when the run failed, …) are listed as such. The message
  of each failed task is the last error of its log, read through the API, else a link to the task
  in the UI.

Every refusal is one line: `LookupError` for a DAG the api-server does not know (as in-process),
`AirflowApiError` for the rest (unreachable server, refused credentials, paused DAG, …).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from billing.orchestration import DagRunOutcome

URL_ENV = "BILLING_AIRFLOW_API_URL"
USERNAME_ENV = "BILLING_AIRFLOW_USERNAME"
PASSWORD_ENV = "BILLING_AIRFLOW_PASSWORD"
TOKEN_ENV = "BILLING_AIRFLOW_TOKEN"
TIMEOUT_ENV = "BILLING_AIRFLOW_RUN_TIMEOUT"

DEFAULT_RUN_TIMEOUT_S = 3600
POLL_INTERVAL_S = 2.0
REQUEST_TIMEOUT_S = 30.0  # per HTTP request, so that an unanswering server cannot hang the CLI
PAGE_SIZE = 100  # the api-server's default maximum_page_limit

FINISHED_RUN_STATES = {"success", "failed"}


class AirflowApiError(RuntimeError):
    """The api-server could not be used, refused a request, or the run did not finish in time."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status of a refused request


def configured() -> bool:
    """Whether DAG runs go through an Airflow api-server (`BILLING_AIRFLOW_API_URL` set)."""
    return bool(os.environ.get(URL_ENV, "").strip())


def run_dag(dag_id: str, *, logical_date: datetime, conf: dict | None = None) -> DagRunOutcome:
    """Trigger `dag_id` for `logical_date` through the api-server and wait until the run finishes."""
    from billing.orchestration import outcome_of, task_states

    if logical_date.tzinfo is None:
        logical_date = logical_date.replace(tzinfo=UTC)  # as in-process: naive means UTC
    api = AirflowApi.from_environment()
    api.check_runnable(dag_id)
    run_id = api.trigger_or_rerun(dag_id, logical_date, conf or {}).dag_run_id
    api.follow(dag_id, run_id, timeout=_run_timeout())
    tasks = api.task_instances(dag_id, run_id)
    # NOTE: the outcome follows from the tasks' states by the same rule as in-process (a task
    # that did not succeed, or a run without tasks, is a failure), not from the run's state.
    states = task_states((task.task_id, str(_value(task.state))) for task in tasks)
    failed = [task for task in tasks if states[task.task_id] == "failed"]
    return outcome_of(dag_id, run_id, states, api.failure_messages(dag_id, run_id, failed))


def _run_timeout() -> float:
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        return float(text) if text else DEFAULT_RUN_TIMEOUT_S
    except ValueError:
        raise AirflowApiError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds") from None


def _value(state: Any) -> str | None:
    """The client's enums (DagRunState, TaskInstanceState) as their plain string values."""
    return getattr(state, "value", state)


@dataclass
class AirflowApi:
    """The few calls billing makes to the api-server, each refusal turned into one clear line."""

    url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    _client: Any = field(default=None, init=False, repr=False)

    @classmethod
    def from_environment(cls) -> AirflowApi:
        url = os.environ.get(URL_ENV, "").strip().rstrip("/")
        # NOTE: the client's paths start with /api/v2; accept the URL with or without it.
        url = url.removesuffix("/api/v2")
        if not url.startswith(("http://", "https://")):
            raise AirflowApiError(f"{URL_ENV}={url!r} is not an http(s) URL (e.g. http://airflow.internal:8080)")
        return cls(
            url=url,
            username=os.environ.get(USERNAME_ENV) or None,
            password=os.environ.get(PASSWORD_ENV) or None,
            token=os.environ.get(TOKEN_ENV) or None,
        )

    # --- what run_dag does

    def check_runnable(self, dag_id: str) -> None:
        try:
            dag = self._call(f"to read DAG {dag_id}", "DAGApi", "get_dag", dag_id)
        except AirflowApiError as error:
            if error.status == 404:
                raise LookupError(f"no DAG {dag_id!r} in the Airflow at {self.url}") from None
            raise
        if dag.is_stale:
            raise LookupError(f"DAG {dag_id!r} in the Airflow at {self.url} is stale: no DAG bundle has its file")
        if dag.is_paused:
            raise AirflowApiError(
                f"DAG {dag_id} is paused in the Airflow at {self.url}: unpause it there (UI, or"
                f" `airflow dags unpause {dag_id}`) to run it; billing does not unpause a team's DAG,"
                f" which would also restart its schedule"
            )

    def trigger_or_rerun(self, dag_id: str, logical_date: datetime, conf: dict):
        """A new run for `logical_date`, or that date's finished run cleared to run again."""
        from airflow_client.client import TriggerDAGRunPostBody

        body = TriggerDAGRunPostBody(logical_date=logical_date, conf=conf)
        try:
            return self._call(f"to trigger {dag_id}", "DagRunApi", "trigger_dag_run", dag_id, body)
        except AirflowApiError as error:
            if error.status != 409:  # 409: that logical date has a run already
                raise
            existing = self._run_at(dag_id, logical_date)
            if existing is None:
                raise
        return self._rerun(dag_id, existing, conf)

    def follow(self, dag_id: str, run_id: str, *, timeout: float):
        """The run once it has finished (success or failed), polled every few seconds."""
        deadline = time.monotonic() + timeout
        while True:
            run = self._call(f"to read run {run_id}", "DagRunApi", "get_dag_run", dag_id, run_id)
            state = _value(run.state)
            if state in FINISHED_RUN_STATES:
                return run
            if time.monotonic() >= deadline:
                raise AirflowApiError(
                    f"{dag_id} run {run_id} has not finished after {timeout:.0f} s (state {state}); it goes on in"
                    f" Airflow: {self.ui_url(dag_id, run_id)} ({TIMEOUT_ENV} sets how long billing waits)"
                )
            time.sleep(POLL_INTERVAL_S)

    def task_instances(self, dag_id: str, run_id: str) -> list:
        tasks: list = []
        while True:
            page = self._call(f"to list the tasks of run {run_id}", "TaskInstanceApi", "get_task_instances",
                              dag_id, run_id, limit=PAGE_SIZE, offset=len(tasks))
            tasks += page.task_instances
            if not page.task_instances or (page.total_entries is not None and len(tasks) >= page.total_entries):
                return tasks

    def failure_messages(self, dag_id: str, run_id: str, failed: list) -> dict[str, str]:
        """task id -> the last error of its log, for each failed task that ran, else where to see it."""
        messages = {}
        for task in failed:
            if task.try_number < 1 or task.task_id in messages:
                continue  # never ran (upstream_failed, …): its state says enough
            messages[task.task_id] = self._last_error(dag_id, run_id, task) or (
                f"ended {_value(task.state)}; log: {self.ui_url(dag_id, run_id, task.task_id)}"
            )
        return messages

    def ui_url(self, dag_id: str, run_id: str, task_id: str | None = None) -> str:
        url = f"{self.url}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
        return f"{url}/tasks/{quote(task_id, safe='')}" if task_id else url

    # --- re-runs and logs

    def _run_at(self, dag_id: str, logical_date: datetime):
        runs = self._call(f"to list the runs of {dag_id}", "DagRunApi", "get_dag_runs", dag_id,
                          logical_date_gte=logical_date, logical_date_lte=logical_date).dag_runs
        return runs[0] if runs else None

    def _rerun(self, dag_id: str, run, conf: dict):
        from airflow_client.client import DAGRunClearBody

        date, state = run.logical_date.isoformat(), _value(run.state)
        if state not in FINISHED_RUN_STATES:
            raise AirflowApiError(
                f"{dag_id} already has run {run.dag_run_id} for {date}, still {state}: wait until it has"
                f" finished ({self.ui_url(dag_id, run.dag_run_id)}), then run again to re-run it"
            )
        if (run.conf or {}) != conf:
            # NOTE: a cleared run keeps its own conf; re-running it silently with other settings
            # (another grace, or the schedule's conf {}) would not be the run that was asked for.
            raise AirflowApiError(
                f"{dag_id} already has run {run.dag_run_id} for {date} with conf {run.conf or {}}, not {conf}:"
                f" clear it in the Airflow UI to re-run it as it was, or delete it there to run it with this"
                f" conf ({self.ui_url(dag_id, run.dag_run_id)})"
            )
        # NOTE: every task, not only the failed ones, as in-process; on the DAG's latest version,
        # so that a re-run after a fix runs the fixed code.
        body = DAGRunClearBody(dry_run=False, only_failed=False, run_on_latest_version=True)
        self._call(f"to clear run {run.dag_run_id}", "DagRunApi", "clear_dag_run", dag_id, run.dag_run_id, body)
        return run

    def _last_error(self, dag_id: str, run_id: str, task) -> str | None:
        """The last error-level entry of the task's latest try, as "ErrorType: message"."""
        try:
            # NOTE: the raw JSON: the client's model of a log entry keeps only `event` and
            # `timestamp`, dropping `level` and `error_detail`.
            response = self._call(f"to read the log of {task.task_id}", "TaskInstanceApi", "get_log_with_http_info",
                                  dag_id, run_id, task.task_id, task.try_number, full_content=True,
                                  map_index=task.map_index)
            entries = json.loads(response.raw_data)["content"]
        except (AirflowApiError, KeyError, TypeError, ValueError):
            return None  # NOTE: a message is a convenience; the outcome stands without it
        errors = [text for text in map(_error_text, entries) if text]
        return errors[-1] if errors else None

    # --- the client, authenticated

    def _call(self, what: str, api: str, method: str, *args, **kwargs):
        """`api(client).method(*args, **kwargs)`, e.g. ("DagRunApi", "get_dag_run", …); a refusal
        raises AirflowApiError with its HTTP status; an expired token is renewed once."""
        import airflow_client.client
        from airflow_client.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        for attempt in (1, 2):
            endpoint = getattr(getattr(airflow_client.client, api)(self._authenticated()), method)
            try:
                return endpoint(*args, **kwargs, _request_timeout=REQUEST_TIMEOUT_S)
            except HTTPError as error:
                raise self._unreachable(error) from None
            except ApiException as error:
                # NOTE: the api-server's tokens last 10 minutes by default ([api_auth]
                # jwt_expiration_time), less than many runs: log in again and retry once.
                if error.status == 401 and attempt == 1 and self.username:
                    self.token = self._client = None
                    continue
                raise self._refusal(what, error) from None

    def _authenticated(self):
        if self._client is None:
            from airflow_client.client import ApiClient, Configuration

            if self.token is None and self.username:
                self.token = self._login()
            configuration = Configuration(host=self.url, access_token=self.token)
            # NOTE: fewer retries than urllib3's 3: each one waits REQUEST_TIMEOUT_S again for a silent server.
            configuration.retries = 2
            self._client = ApiClient(configuration)
        return self._client

    def _login(self) -> str:
        """A JWT for BILLING_AIRFLOW_USERNAME/PASSWORD from the api-server's /auth/token."""
        import httpx

        if not self.password:
            raise AirflowApiError(f"{USERNAME_ENV} is set but {PASSWORD_ENV} is not")
        try:
            response = httpx.post(f"{self.url}/auth/token", json={"username": self.username, "password": self.password},
                                  timeout=REQUEST_TIMEOUT_S)
        except httpx.HTTPError as error:
            raise self._unreachable(error) from None
        status = response.status_code
        if status in (401, 403):
            raise AirflowApiError(
                f"Airflow API at {self.url} refused the credentials of {self.username!r} ({status}):"
                f" set {USERNAME_ENV}/{PASSWORD_ENV} to a user of that Airflow", status=status,
            )
        if status in (404, 405):
            raise AirflowApiError(
                f"Airflow API at {self.url} has no /auth/token ({status}): is {URL_ENV} the api-server's base"
                f" URL? If its auth manager issues tokens elsewhere, set {TOKEN_ENV} instead", status=status,
            )
        token = _json(response).get("access_token")
        if status >= 300 or not token:
            raise AirflowApiError(
                f"Airflow API at {self.url} gave no token for {self.username!r} ({status}):"
                f" {' '.join(response.text.split())[:200]}", status=status,
            )
        return token

    def _refusal(self, what: str, error) -> AirflowApiError:
        status = error.status
        # NOTE: Airflow answers 401 to a missing or expired token, but 403 to an invalid one
        # ("Invalid JWT token", e.g. signed by another api-server): that is a refused token too.
        if status == 403 and _detail(error) == "Invalid JWT token":
            status = 401
        if status == 401 and self.username:
            message = f"refused the credentials of {self.username!r} (401): set {USERNAME_ENV}/{PASSWORD_ENV}"
        elif status == 401 and self.token:
            message = f"refused the token (401): set {TOKEN_ENV} to a valid token, or {USERNAME_ENV}/{PASSWORD_ENV}"
        elif status == 401:
            message = f"requires credentials (401): set {USERNAME_ENV}/{PASSWORD_ENV} or {TOKEN_ENV}"
        elif status == 403:
            who = f"user {self.username!r}" if self.username else "this token"
            message = f"does not allow {who} {what} (403): it needs a role that may trigger and read DAG runs"
        else:
            message = f"refused {what} ({status}): {_detail(error)}"
        return AirflowApiError(f"Airflow API at {self.url} {message}", status=error.status)

    def _unreachable(self, error: Exception) -> AirflowApiError:
        reason = " ".join(str(getattr(error, "reason", None) or error).split())
        # NOTE: urllib3's reasons start with the repr of a connection object; the errno says it.
        errno = re.search(r"\[Errno -?\d+\][^'\")]*", reason)
        reason = errno.group(0).strip() if errno else reason[:200]
        return AirflowApiError(f"Airflow API at {self.url} is unreachable ({reason}): check {URL_ENV}")


def _error_text(entry: dict | str) -> str | None:
    """ "ErrorType: message" of an error-level structured log entry, else None."""
    if not isinstance(entry, dict) or entry.get("level") not in ("error", "critical"):
        return None
    for detail in entry.get("error_detail") or []:  # the raised exception first, then its causes
        if isinstance(detail, dict) and detail.get("exc_type"):
            return f"{detail['exc_type']}: {detail.get('exc_value', '')}".strip()
    return " ".join(str(entry.get("event", "")).split()) or None


def _detail(error) -> str:
    """The api-server's `detail` of a refused request, on one line."""
    try:
        detail = json.loads(error.body).get("detail", error.body)
    except (TypeError, ValueError, AttributeError):
        detail = error.body or error.reason
    return " ".join(str(detail).split())[:300]


def _json(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
