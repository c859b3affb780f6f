"""Where things live. Every path and knob the project reads from the environment is here."""

from __future__ import annotations

import os
from dataclasses import dataclass
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


def invoice_pdf_path(invoice_number: str) -> Path:
    """Where an invoice's PDF is stored: `<number>.pdf` in `BILLING_INVOICE_PDF_DIR` (default
    BILLING_HOME/invoices)."""
    folder = os.environ.get("BILLING_INVOICE_PDF_DIR")
    return (Path(folder).resolve() if folder else billing_home() / "invoices") / f"{invoice_number}.pdf"


def invoice_pdf_location(invoice_number: str) -> dict[str, str]:
    """Where `billing.invoice.generated` says the PDF is: `pdf_url` under
    `BILLING_INVOICE_PDF_URL_PREFIX` when set (the operator serves or syncs the folder there), else
    the file's `pdf_path`."""
    prefix = os.environ.get("BILLING_INVOICE_PDF_URL_PREFIX")
    if prefix:
        return {"pdf_url": f"{prefix.rstrip('/')}/{invoice_number}.pdf"}
    return {"pdf_path": str(invoice_pdf_path(invoice_number))}


@dataclass(frozen=True)
class Seller:
    """Who issues the invoices, as their PDFs name them."""

    name: str
    address: tuple[str, ...]
    email: str | None


def seller() -> Seller:
    """`BILLING_SELLER_NAME`, `BILLING_SELLER_ADDRESS` (lines separated by newlines or `\\n`) and
    `BILLING_SELLER_EMAIL`. An unset name shows as a hint to set it, rather than as no seller."""
    address = os.environ.get("BILLING_SELLER_ADDRESS") or ""
    return Seller(
        name=os.environ.get("BILLING_SELLER_NAME") or "(set BILLING_SELLER_NAME)",
        address=tuple(line.strip() for line in address.replace("\\n", "\n").splitlines() if line.strip()),
        email=os.environ.get("BILLING_SELLER_EMAIL") or None,
    )


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
