"""Style is linted, not debated: ruff over the Python (pyproject.toml), sqlfluff with the dbt
templater over the models and macros (dbt_project/.sqlfluff). Fix with `ruff check --fix` and
`sqlfluff fix` (run from dbt_project/ with BILLING_DBT_* set to an empty database: the templater
compiles through dbt, and a database holding the models would compile their incremental branches,
which are not linted yet)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_python_passes_ruff():
    completed = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "."], cwd=ROOT,
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_sql_passes_sqlfluff(warehouse):
    """Linted as compiled for a first build (an empty database), whatever this session built."""
    from billing.transform import dbt_environment
    from billing.warehouse import connect

    with connect(autocommit=True) as connection:
        connection.execute("drop database if exists sqlfluff_empty")
        connection.execute("create database sqlfluff_empty")
    completed = subprocess.run(
        [str(BIN / "sqlfluff"), "lint", "models", "macros", "--processes", "2", "--disable-progress-bar"],
        cwd=ROOT / "dbt_project", capture_output=True, text=True,
        env={**os.environ, **dbt_environment(), "BILLING_DBT_DBNAME": "sqlfluff_empty"},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
