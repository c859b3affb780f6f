"""docker-compose.yml validates with Docker Compose v2 and keeps the rules of a production deployment.

No Docker engine is needed: `docker compose config` only parses, validates and resolves the file
(bench/compose_file.py). bench/celery_cluster.py runs the same services' commands and environments
as processes, and tests/test_airflow_celery.py closes a month on them.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from billing.settings import PROJECT_ROOT
from billing.shards import GATEWAY_POOL, GATEWAY_POOL_DESCRIPTION
from compose_file import COMPOSE_FILE, SECRETS, command, compose_config, resolved

AIRFLOW_SERVICES = {  # service -> its command
    "airflow-api-server": None,  # writes the passwords file first: see test_the_api_server_asks_for_a_login
    "airflow-scheduler": ["airflow", "scheduler"],
    "airflow-dag-processor": ["airflow", "dag-processor"],
    "airflow-triggerer": ["airflow", "triggerer"],
    "airflow-worker": ["airflow", "celery", "worker"],
}
IMAGE_SERVICES = {*AIRFLOW_SERVICES, "airflow-init", "billing-init", "dashboard"}
ONE_OFF = {"airflow-init", "billing-init"}
TRIAL = {name: f"{name.lower()}-value" for name in SECRETS}  # a value for each secret, for a trial
# Settings the project reads that the containers do not take from the operator: set by the compose
# file itself, by billing for its own tools, or meant for a `billing` client outside the deployment.
NOT_PASSED = {
    "BILLING_HOME", "BILLING_WAREHOUSE_URL",  # set: the volume, the warehouse service
    "BILLING_DAGS_FOLDER",  # the image's dags/
    "BILLING_DASHBOARD_WAREHOUSE_URL", "BILLING_DBT_HOST", "BILLING_DBT_PORT", "BILLING_DBT_USER",
    "BILLING_DBT_PASSWORD", "BILLING_DBT_DBNAME",  # billing sets them for Streamlit and dbt
    "BILLING_AIRFLOW_API_URL", "BILLING_AIRFLOW_USERNAME", "BILLING_AIRFLOW_PASSWORD", "BILLING_AIRFLOW_TOKEN",
    "BILLING_AIRFLOW_RUN_TIMEOUT",  # a client's way to this Airflow
}


@pytest.fixture(scope="module")
def docker_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docker")


@pytest.fixture(scope="module")
def services(docker_config: Path) -> dict:
    return resolved(TRIAL, docker_config)["services"]


def test_the_compose_check_catches_an_invalid_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  a:\n    image: x\n    depends_on: [missing]\n")

    result = compose_config({}, tmp_path, broken)

    assert result.returncode != 0
    assert "undefined service" in result.stderr


def test_the_services(services: dict) -> None:
    assert set(services) == {"airflow-db", "warehouse", "redis", *IMAGE_SERVICES}
    for name in IMAGE_SERVICES:
        assert services[name]["build"] == {"context": str(PROJECT_ROOT), "dockerfile": "Dockerfile"}, name
    for name, command_line in AIRFLOW_SERVICES.items():
        assert command_line is None or services[name]["command"] == command_line, name


def test_the_image_is_the_tested_airflow_with_the_project_installed_at_build_time(services: dict) -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    pins = dict(re.findall(r'"([\w-]+)==([\w.]+)"', (PROJECT_ROOT / "pyproject.toml").read_text()))
    python = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f"FROM apache/airflow:{pins['apache-airflow']}-python3.11\n" in dockerfile and "<3.12" in python
    assert "pip install --no-cache-dir --constraint /opt/billing/constraints.txt --editable /opt/billing" in dockerfile
    for name in IMAGE_SERVICES:  # nothing installs when a container starts
        assert "pip" not in " ".join(services[name].get("command") or []), name
        assert not any(key.startswith("_PIP") for key in services[name]["environment"]), name
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", ".venv", ".billing", ".git"} <= set(ignored)  # no secrets or local state in the image


def test_every_secret_is_required_and_has_no_default(docker_config: Path) -> None:
    text = COMPOSE_FILE.read_text()
    assert set(re.findall(r"\$\{(\w+):\?", text)) == set(SECRETS)
    for name in SECRETS:
        assert not re.search(rf"\$\{{{name}:?-", text), f"{name} has a default"
        for missing in ({k: v for k, v in TRIAL.items() if k != name}, {**TRIAL, name: ""}):
            result = compose_config(missing, docker_config)
            assert result.returncode != 0, name
            assert f"required variable {name} is missing a value: set {name} (see .env.example)" in result.stderr
    example = dict(re.findall(r"^(\w+)=(.*)$", (PROJECT_ROOT / ".env.example").read_text(), re.MULTILINE))
    assert example == dict.fromkeys(SECRETS, ""), "the template lists every secret, empty"


def test_only_the_api_server_and_the_dashboard_are_published(services: dict, docker_config: Path) -> None:
    published = {name: [(port.get("host_ip", ""), port["published"], port["target"]) for port in service["ports"]]
                 for name, service in services.items() if service.get("ports")}
    assert published == {"airflow-api-server": [("", "8080", 8080)], "dashboard": [("127.0.0.1", "8501", 8501)]}

    with_port = resolved(TRIAL, docker_config, COMPOSE_FILE, PROJECT_ROOT / "docker-compose.warehouse-port.yml")
    [port] = with_port["services"]["warehouse"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "5432", 5432)


def test_airflow_runs_on_celery_with_redis_and_its_results_in_the_metadata_database(services: dict) -> None:
    for name in {*AIRFLOW_SERVICES, "airflow-init"}:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:redis_password-value@redis:6379/0", name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert json.loads(env["AIRFLOW__CELERY__EXTRA_CELERY_CONFIG"]) == {
            "result_extended": True,  # worker names
            "imports": ["billing.celery_worker"],  # the billing tasks' libraries, imported once per worker
        }, name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-api-server:8080/execution/", name
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/billing/dags", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name
    assert services["redis"]["environment"]["REDISCLI_AUTH"] == "redis_password-value"  # requirepass, and ping


def test_the_api_server_asks_for_a_login(services: dict) -> None:
    env = services["airflow-api-server"]["environment"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".SimpleAuthManager")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "false"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin,billing:user"  # AIRFLOW_USERS
    assert env["AIRFLOW_PASSWORDS"] == TRIAL["AIRFLOW_PASSWORDS"]
    assert command(services["airflow-api-server"]) == [
        "bash", "-c", 'umask 077 && printenv AIRFLOW_PASSWORDS > "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}"'
        " && exec airflow api-server",
    ]
    assert not any("AIRFLOW_PASSWORDS" in service.get("environment", {})
                   for name, service in services.items() if name != "airflow-api-server")


def test_metadata_and_warehouse_are_separate_servers_with_their_own_roles(services: dict, docker_config: Path) -> None:
    metadata = urlsplit(services["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert (metadata.username, metadata.hostname, metadata.path) == ("airflow", "airflow-db", "/airflow")
    for name in IMAGE_SERVICES:
        warehouse = urlsplit(services[name]["environment"]["BILLING_WAREHOUSE_URL"])
        assert (warehouse.username, warehouse.password, warehouse.hostname, warehouse.path) == (
            "billing", "billing_db_password-value", "warehouse", "/billing"), name
    assert services["airflow-db"]["environment"]["POSTGRES_USER"] == "airflow"
    # the warehouse's superuser is `postgres`; `billing` owns the database and is no superuser
    assert "POSTGRES_USER" not in services["warehouse"]["environment"]
    owner = resolved(TRIAL, docker_config)["configs"]["warehouse-owner"]["content"]
    assert "create role billing login createrole password :'password';" in owner
    assert "create database billing owner billing;" in owner
    assert services["warehouse"]["configs"] == [
        {"source": "warehouse-owner", "target": "/docker-entrypoint-initdb.d/10-billing-owner.sh"}]


def test_billing_home_is_a_volume_shared_by_every_service_of_the_image(services: dict) -> None:
    for name in IMAGE_SERVICES:
        service = services[name]
        volumes = {mount["target"]: mount for mount in service["volumes"]}
        home = service["environment"]["BILLING_HOME"]
        assert (volumes[home]["type"], volumes[home]["source"]) == ("volume", "billing-home"), name


def test_every_billing_setting_is_passed_through(services: dict, docker_config: Path) -> None:
    read = set(re.findall(r'"(BILLING_[A-Z0-9_]*[A-Z0-9])"', "".join(
        path.read_text() for path in (PROJECT_ROOT / "plugins").rglob("*.py"))))
    assert {"BILLING_PAYMENT_GATEWAY", "BILLING_STRIPE_API_KEY", "BILLING_WEBHOOK_ALLOW_HOSTS"} <= read
    settings = read - NOT_PASSED
    operator = {name: f"{name.lower()}-value" for name in settings}

    with_settings = resolved({**TRIAL, **operator}, docker_config)["services"]

    for name in {*AIRFLOW_SERVICES, "airflow-init"}:
        passed = {key: value for key, value in with_settings[name]["environment"].items() if key in settings}
        assert passed == operator, name
    # unset, they stay unset, so that the project's defaults apply
    assert all(services["airflow-worker"]["environment"][name] is None for name in settings)


def test_the_init_step_sets_the_gateway_pool(services: dict) -> None:
    # the command a team's Airflow runs (README "Fan-out"), for the pool the gateway tasks use
    set_pool = f'airflow pools set {GATEWAY_POOL} "${{BILLING_GATEWAY_POOL_SLOTS:-16}}" "{GATEWAY_POOL_DESCRIPTION}"'
    assert f"```bash\n{set_pool}\n```" in (PROJECT_ROOT / "README.md").read_text()
    assert command(services["airflow-init"]) == ["bash", "-c", f"airflow db migrate && {set_pool}"]
    assert services["billing-init"]["command"] == ["bash", "-c", "exec billing init"]


def test_services_start_in_order_and_report_their_health(services: dict) -> None:
    for name in AIRFLOW_SERVICES:
        depends_on = {service: condition["condition"] for service, condition in services[name]["depends_on"].items()}
        assert depends_on == {
            "airflow-db": "service_healthy", "warehouse": "service_healthy", "redis": "service_healthy",
            "airflow-init": "service_completed_successfully", "billing-init": "service_completed_successfully",
        }, name
    for name in set(services) - ONE_OFF:
        assert services[name]["healthcheck"]["test"], name
    for name in ONE_OFF:
        assert services[name]["restart"] == "no", name


def test_workers_scale(services: dict) -> None:
    # a fixed container name or a published port would stop a second worker
    worker = services["airflow-worker"]
    assert "container_name" not in worker and not worker.get("ports")
    assert worker["environment"]["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "8"  # AIRFLOW_WORKER_CONCURRENCY
