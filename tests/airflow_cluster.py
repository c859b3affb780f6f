"""The session's Airflow for the scheduler tests: docker-compose.yml's team deployment as processes
(bench/celery_cluster.py) on the session's warehouse server, with two Celery workers (`worker-1`,
`worker-2`, one task at a time each).

It is started once per session, by the first test that asks for the `airflow` fixture, and stopped
after the last one, so that the 2 cores are free again. A test module uses it with

    pytest_plugins = ["airflow_cluster"]

(a plugin, not an imported fixture: a fixture imported into two modules would be two session
fixtures, starting Airflow twice), and marks its tests `scheduler` (tests/conftest.py runs them all
on one worker, before any other group). Its api-server's tokens expire after JWT_EXPIRATION_S, so
that a client following a run must renew its token.

The in-process `dag.test()` runs of other tests (billing.orchestration) keep their SQLite metadata
under BILLING_HOME/airflow: this scheduler never sees them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite("celery_cluster")
from celery_cluster import DAG_ID, UTC, AirflowCluster, free_port, running_cluster  # noqa: E402

__all__ = ["DAG_ID", "UTC", "WORKERS", "AirflowCluster", "free_port", "point_billing_at"]

# NOTE: shorter than a run (30-55 s), so that following one through the API outlives a token.
JWT_EXPIRATION_S = 20
WORKERS = ("worker-1", "worker-2")  # their Celery hostnames: celery@worker-1, celery@worker-2


@pytest.fixture(scope="session")
def airflow_cluster(warehouse: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowCluster]:
    """The compose file's Airflow on this session's warehouse server; stopped after the last test."""
    # NOTE: one task at a time per worker (the compose default is 8): two cores, two workers.
    # The DAG is a chain, but a run waiting for the lease polls it in a task of its own
    # (begin_run, every 5 s): with one slot in all it would delay the chain of the run that
    # holds the lease.
    with running_cluster(tmp_path_factory.mktemp("airflow-cluster"), warehouse, workers=WORKERS,
                         worker_concurrency=1,
                         settings={"AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME": str(JWT_EXPIRATION_S)}) as airflow:
        yield airflow


@pytest.fixture
def airflow(airflow_cluster: AirflowCluster, request: pytest.FixtureRequest) -> Iterator[AirflowCluster]:
    """The session's Airflow; stopped after the last test that uses it."""
    assert request.node.get_closest_marker("scheduler"), f"{request.node.nodeid} uses Airflow: mark it scheduler"
    assert airflow_cluster.running, f"the session's Airflow is not running\n{airflow_cluster.log_tails()}"
    yield airflow_cluster
    users = [item for item in request.session.items if "airflow" in getattr(item, "fixturenames", ())]
    if users and request.node is users[-1]:
        airflow_cluster.stop()


def point_billing_at(airflow: AirflowCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """BILLING_AIRFLOW_* pointing at the session's api-server as user `billing`, for this process
    and the `billing` commands it starts: their runs go through the REST API to this Airflow."""
    monkeypatch.setenv("BILLING_AIRFLOW_API_URL", airflow.api_url)
    monkeypatch.setenv("BILLING_AIRFLOW_USERNAME", "billing")
    monkeypatch.setenv("BILLING_AIRFLOW_PASSWORD", airflow.passwords["billing"])
    monkeypatch.delenv("BILLING_AIRFLOW_TOKEN", raising=False)
    monkeypatch.setenv("BILLING_AIRFLOW_RUN_TIMEOUT", "600")
