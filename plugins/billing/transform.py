"""Run the dbt project in-process (dbt's programmatic runner), against the warehouse.

One `dbt build` per pipeline slice keeps dbt's 3–5 s parse to once per task; the target and log
folders live under BILLING_HOME so partial parsing is reused across runs.
"""

from __future__ import annotations

import json
import os
from billing.settings import DBT_PROJECT_DIR, billing_home
from billing.warehouse import connection_parts

# The slices the cycle-close DAG builds, each followed by its quality gate.
EVENTS_SLICE = ("path:seeds", "path:models/staging", "path:models/intermediate/events",
                "path:models/intermediate/periods", "path:models/marts/events")
RATING_SLICE = ("path:models/intermediate/usage", "path:models/intermediate/rating",
                "path:models/intermediate/invoicing", "path:models/marts/billing", "path:models/marts/usage")


class TransformFailed(RuntimeError):
    """dbt reported errors or failing tests; the message names each failed node."""


def build(select: tuple[str, ...], *, as_of: str, grace: str) -> int:
    """`dbt build --select …` for a closing window (ISO `as_of`, interval `grace`); returns nodes built.

    Unit tests are left out: they prove the SQL, not the data, and run in the test suite.
    """
    return _invoke(
        "build", "--select", *select, "--exclude-resource-type", "unit_test",
        "--vars", json.dumps({"as_of": as_of, "grace": grace}),
    )


def run_unit_tests() -> int:
    """Every `unit_tests:` block of the models' YAML (they need the models' parents built once)."""
    return _invoke("test", "--select", "test_type:unit")


def _invoke(command: str, *arguments: str) -> int:
    from dbt.cli.main import dbtRunner

    os.environ.update(_dbt_environment())
    dbt_home = billing_home() / "dbt"
    result = dbtRunner().invoke([
        command,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(dbt_home / "target"),
        "--log-path", str(dbt_home / "logs"),
        "--quiet",
        *arguments,
    ])
    if result.exception is not None:
        raise TransformFailed(f"dbt could not run: {result.exception}")
    failures = [
        f"{node.node.name}: {node.message}"
        for node in result.result
        if str(node.status) in {"error", "fail"}
    ]
    if failures or not result.success:
        raise TransformFailed(f"dbt {command} failed:\n  " + "\n  ".join(failures))
    return len(result.result)


def _dbt_environment() -> dict[str, str]:
    parts = connection_parts()
    return {
        "BILLING_DBT_HOST": parts["host"],
        "BILLING_DBT_PORT": parts["port"],
        "BILLING_DBT_USER": parts["user"],
        "BILLING_DBT_PASSWORD": parts["password"],
        "BILLING_DBT_DBNAME": parts["dbname"],
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
