"""Where things live. Every path and knob the project reads from the environment is here."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DAGS_DIR = PROJECT_ROOT / "dags"
CONTRACTS_DIR = PROJECT_ROOT / "data_contracts"
CURRENCIES_CSV = DBT_PROJECT_DIR / "seeds" / "currencies.csv"

DEFAULT_GRACE = "1 hour"


def billing_home() -> Path:
    """`BILLING_HOME`, default `.billing/` in the current directory; created on first use."""
    home = Path(os.environ.get("BILLING_HOME", ".billing")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def configured_warehouse_url() -> str | None:
    """`BILLING_WAREHOUSE_URL` when the operator points us at their own PostgreSQL."""
    return os.environ.get("BILLING_WAREHOUSE_URL") or None


def run_lease_ttl() -> timedelta:
    """How long a run's lease outlives its last renewal (`BILLING_RUN_LEASE_TTL`): a crashed run's hold."""
    return _duration("BILLING_RUN_LEASE_TTL", "10 minutes")


def run_lease_wait() -> timedelta:
    """How long a run waits for another run's lease before failing (`BILLING_RUN_LEASE_WAIT`)."""
    return _duration("BILLING_RUN_LEASE_WAIT", "30 minutes")


def task_retry_delay() -> timedelta:
    """How long a failed DAG task waits before its retry (`BILLING_TASK_RETRY_DELAY`), read when the
    DAGs are parsed."""
    return _duration("BILLING_TASK_RETRY_DELAY", "1 minute")


def shards() -> int:
    """How many shards a run's charging and webhook delivery are split into (`BILLING_SHARDS`,
    default 1), each its own mapped task (billing.shards); read when the DAGs are parsed."""
    return _count("BILLING_SHARDS", 1)


def charge_concurrency() -> int:
    """Gateway calls one charging task has in flight at once (`BILLING_CHARGE_CONCURRENCY`, default 16)."""
    return _count("BILLING_CHARGE_CONCURRENCY", 16)


def gateway_pool_slots() -> int:
    """Gateway calls in flight at once across every worker (`BILLING_GATEWAY_POOL_SLOTS`, default 16):
    the slots of the Airflow pool `billing_gateway` (billing.shards)."""
    return _count("BILLING_GATEWAY_POOL_SLOTS", 16)


def _count(variable: str, default: int) -> int:
    text = (os.environ.get(variable) or str(default)).strip()
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"{variable}: expected a whole number of at least 1, got {text!r}")
    return count


def _duration(variable: str, default: str) -> timedelta:
    from billing.window import duration

    try:
        return duration(os.environ.get(variable) or default)
    except ValueError as error:
        raise ValueError(f"{variable}: {error}") from None
