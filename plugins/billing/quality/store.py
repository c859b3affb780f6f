"""The warehouse side of a gate run: offending rows of row-count checks, and the results table."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from billing.quality.gates import SAMPLE_SIZE
from billing.quality.outcomes import Outcome
from billing.warehouse import connect


def first_rows(query: str, limit: int = SAMPLE_SIZE) -> tuple[Mapping[str, Any], ...]:
    """The first rows of a check's (already formatted) query."""
    statement = sql.SQL("select * from (\n{}\n) as check_rows limit {}").format(sql.SQL(query), limit)
    with connect() as connection, connection.cursor(row_factory=dict_row) as cursor:
        return tuple(cursor.execute(statement).fetchall())


def save_outcomes(run_label: str, gate: str, outcomes: Iterable[Outcome]) -> None:
    """Append one `billing.quality_results` row per expectation, all with the same `checked_at`."""
    rows = [
        (run_label, gate, outcome.check, outcome.expectation, outcome.success, outcome.acknowledged,
         _jsonb(outcome.observed))
        for outcome in outcomes
    ]
    with connect() as connection, connection.cursor() as cursor:
        cursor.executemany(
            "insert into billing.quality_results"
            " (run_label, gate, check_name, expectation, success, acknowledged, observed)"
            " values (%s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


def _jsonb(observed: Mapping[str, Any]) -> Jsonb:
    # NOTE: GX results hold dates, Decimals and numpy scalars; a round trip through str keeps them.
    return Jsonb(json.loads(json.dumps(observed, default=str)))


def passed_unchanged(gate: str, fingerprint: str, data_version: str) -> str | None:
    """The run label of the gate's last pass if it checked the same checks on the same data version."""
    with connect() as connection:
        row = connection.execute(
            "select run_label from billing.gate_passes where gate = %s and fingerprint = %s and data_version = %s",
            (gate, fingerprint, data_version),
        ).fetchone()
    return row[0] if row else None


def record_pass(gate: str, fingerprint: str, data_version: str, run_label: str) -> None:
    with connect() as connection:
        connection.execute(
            "insert into billing.gate_passes (gate, fingerprint, data_version, run_label) values (%s, %s, %s, %s)"
            " on conflict (gate) do update set fingerprint = excluded.fingerprint,"
            " data_version = excluded.data_version, run_label = excluded.run_label, passed_at = now()",
            (gate, fingerprint, data_version, run_label),
        )
