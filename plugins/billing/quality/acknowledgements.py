"""Operator acknowledgements of known anomalies: one check of one gate, for one closing window.

An acknowledged check still runs and its result is stored, marked `acknowledged`; it just does not
fail the gate. The acknowledgement names the window by its `as_of` (the run's logical time, which
every gate failure message shows), so the next window is checked as strictly as ever.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime

from billing.warehouse import connect


@dataclass(frozen=True)
class Acknowledgement:
    gate: str
    check_name: str
    as_of: datetime
    reason: str
    acknowledged_by: str
    acknowledged_at: datetime


def acknowledge(*, gate: str, check_name: str, as_of: datetime, reason: str, by: str | None = None) -> Acknowledgement:
    """Record (or re-word) the acknowledgement; returns it as stored."""
    if not reason.strip():
        raise ValueError("an acknowledgement needs a reason")
    if as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    with connect() as connection:
        row = connection.execute(
            "insert into billing.quality_acknowledgements (gate, check_name, as_of, reason, acknowledged_by)"
            " values (%s, %s, %s, %s, %s)"
            " on conflict (gate, check_name, as_of) do update"
            " set reason = excluded.reason, acknowledged_by = excluded.acknowledged_by, acknowledged_at = now()"
            " returning gate, check_name, as_of, reason, acknowledged_by, acknowledged_at",
            (gate, check_name, as_of, reason.strip(), by or operator_name()),
        ).fetchone()
    return Acknowledgement(*row)


def acknowledged_checks(gate: str, as_of: datetime | None) -> dict[str, Acknowledgement]:
    """The gate's acknowledged checks for exactly this window, by check name."""
    if as_of is None:
        return {}
    with connect() as connection:
        rows = connection.execute(
            "select gate, check_name, as_of, reason, acknowledged_by, acknowledged_at"
            " from billing.quality_acknowledgements where gate = %s and as_of = %s",
            (gate, as_of),
        ).fetchall()
    return {row[1]: Acknowledgement(*row) for row in rows}


def list_acknowledgements(gate: str | None = None) -> list[Acknowledgement]:
    with connect() as connection:
        rows = connection.execute(
            "select gate, check_name, as_of, reason, acknowledged_by, acknowledged_at"
            " from billing.quality_acknowledgements where %(gate)s::text is null or gate = %(gate)s"
            " order by as_of desc, gate, check_name",
            {"gate": gate},
        ).fetchall()
    return [Acknowledgement(*row) for row in rows]


def operator_name() -> str:
    """Who is acknowledging: BILLING_OPERATOR, else the OS user."""
    return os.environ.get("BILLING_OPERATOR") or getpass.getuser()
