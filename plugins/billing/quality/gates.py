"""What a data-quality gate is, what running one returns, and how a failed one stops the run.

Nothing here imports Great Expectations (about 5 s), so DAG files can define gates for free;
only `billing.quality.runner.run_gate` pays for it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from psycopg import sql

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
LITERAL_TYPES = (str, bool, int, Decimal, datetime.date)  # datetime.datetime is a date
SAMPLE_SIZE = 5


@dataclass(frozen=True)
class Check:
    """One SQL query and the expectations its result must meet.

    `query` is a SELECT (a leading WITH is fine) whose `{param}` placeholders are filled from the
    gate's `params` as SQL literals; write literal braces as `{{` and `}}`. `key_columns` name the
    columns that identify a row, shown beside each offending value in failure messages.
    A check that is not `blocking` is recorded and logged when it fails, but lets the run go
    on: the rows it names are held back by the step that reads them (one customer's problem
    never stops everyone's invoices).
    """

    name: str
    query: str
    expectations: tuple[Expectation, ...]
    key_columns: tuple[str, ...] = ()
    blocking: bool = True

    def __post_init__(self) -> None:
        _require_name("check", self.name)
        if not self.expectations:
            raise ValueError(f"check {self.name} has no expectations")
        object.__setattr__(self, "expectations", tuple(self.expectations))
        object.__setattr__(self, "key_columns", tuple(self.key_columns))


@dataclass(frozen=True)
class Gate:
    """A named set of checks that must all pass before the pipeline goes on.

    `as_of` is the window the gate judges (a cycle close's logical time): operators acknowledge a
    known anomaly for one window, so a gate without one cannot be acknowledged.
    """

    name: str
    checks: tuple[Check, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    as_of: datetime.datetime | None = None

    def __post_init__(self) -> None:
        _require_name("gate", self.name)
        object.__setattr__(self, "checks", tuple(self.checks))
        names = [check.name for check in self.checks]
        if not names:
            raise ValueError(f"gate {self.name} has no checks")
        if len(set(names)) != len(names):
            raise ValueError(f"gate {self.name} has duplicate check names: {names}")
        for key, value in self.params.items():
            _require_literal(key, value)
        if self.as_of is not None:
            _require_literal("as_of", self.as_of)

    def query_of(self, check: Check) -> str:
        """The check's query with the gate's params filled in, ready to run as it is."""
        literals = {key: sql.Literal(value) for key, value in self.params.items()}
        return sql.SQL(check.query.strip().rstrip(";")).format(**literals).as_string(None)


@dataclass(frozen=True)
class GateFailure:
    """One expectation a check did not meet, with a few of the rows that broke it."""

    check: str
    expectation: str
    observed: str
    sample_rows: tuple[Mapping[str, Any], ...] = ()

    def describe(self) -> str:
        text = f"check {self.check}: {self.expectation} — {self.observed}"
        if self.sample_rows:
            text += ", e.g. " + ", ".join(format_row(row) for row in self.sample_rows)
        return text


@dataclass(frozen=True)
class GateResult:
    gate: str
    success: bool
    failures: tuple[GateFailure, ...] = ()
    # failed expectations let through by an operator's acknowledgement for this window
    acknowledged: tuple[GateFailure, ...] = ()
    as_of: datetime.datetime | None = None


class GateFailed(Exception):
    """A gate did not pass; the message names every failed check and shows offending rows."""

    def __init__(self, result: GateResult) -> None:
        self.result = result
        details = ";\n  ".join(failure.describe() for failure in result.failures)
        message = f"gate {result.gate} failed: {details}"
        if result.as_of is not None:
            checks = sorted({failure.check for failure in result.failures})
            message += (
                f"\nFix the data and clear this task to re-run the gate; or, for a known anomaly of this window"
                f" only: billing quality acknowledge --gate {result.gate} --check {checks[0]}"
                f" --as-of {result.as_of.isoformat()} --reason '…'"
            )
        super().__init__(message)


def enforce(result: GateResult) -> GateResult:
    """Raise `GateFailed` unless the gate passed; returns the result so calls can be chained."""
    if not result.success:
        raise GateFailed(result)
    return result


def format_row(row: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{key}: {format_value(value)}" for key, value in row.items()) + "}"


def format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return str(value)


def _require_name(kind: str, name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"{kind} name {name!r} must be lower_snake_case")


def _require_literal(key: str, value: Any) -> None:
    if not isinstance(value, LITERAL_TYPES):
        raise TypeError(f"gate param {key} must be one of {LITERAL_TYPES}, not {type(value).__name__}")
    # NOTE: a naive timestamp would be read in the session's time zone; insist on an explicit one.
    if isinstance(value, datetime.datetime) and value.utcoffset() is None:
        raise ValueError(f"gate param {key} must be a timezone-aware datetime")
