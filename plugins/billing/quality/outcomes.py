"""Turn Great Expectations' validation results into plain records: what was expected, what was
seen, and which rows broke it. Works on the result objects' attributes only; imports no GX."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from billing.quality.gates import SAMPLE_SIZE, GateFailure, format_value

# Expectations judged on the whole result; their offending rows are the query's own rows.
ROW_COUNT_EXPECTATIONS = frozenset({"expect_table_row_count_to_equal", "expect_table_row_count_to_be_between"})
IGNORED_KWARGS = frozenset({"batch_id", "result_format", "catch_exceptions", "meta"})


@dataclass(frozen=True)
class Outcome:
    """One expectation's verdict on one check, as stored in `billing.quality_results`."""

    check: str
    expectation_type: str
    expectation: str
    success: bool
    observed: Mapping[str, Any]
    summary: str
    sample_rows: tuple[Mapping[str, Any], ...]
    error: str | None = None
    acknowledged: bool = False  # failed, but let through by an operator for this window
    blocking: bool = True  # a failure stops the gate (see Check.blocking)

    @property
    def wants_query_sample(self) -> bool:
        """A failed row-count check whose offending rows are the query's rows themselves."""
        return (
            not self.success
            and not self.error
            and not self.sample_rows
            and self.expectation_type in ROW_COUNT_EXPECTATIONS
        )

    def with_sample(self, rows: tuple[Mapping[str, Any], ...]) -> Outcome:
        return replace(self, observed={**self.observed, "sample_rows": list(rows)}, sample_rows=rows)

    def acknowledge(self) -> Outcome:
        return replace(self, acknowledged=True) if not self.success else self

    @property
    def blocks(self) -> bool:
        """Does this outcome stop the gate?"""
        return not self.success and not self.acknowledged and self.blocking

    def as_failure(self) -> GateFailure:
        return GateFailure(self.check, self.expectation, self.summary, self.sample_rows)


def outcome_of(check: str, validation_result: Any) -> Outcome:
    """The outcome of one `ExpectationValidationResult`."""
    config = validation_result.expectation_config
    result = dict(validation_result.result or {})
    error = exception_message(validation_result.exception_info)
    observed = {**result, "exception": error} if error else result
    sample = sample_rows(result)
    return Outcome(
        check=check,
        expectation_type=config.type,
        expectation=expectation_text(config.type, config.kwargs),
        success=bool(validation_result.success),
        observed={**observed, "sample_rows": list(sample)} if sample else observed,
        summary=summary_text(result, error),
        sample_rows=sample,
        error=error,
    )


def failed_to_run(check: str, config: Any, error: str) -> Outcome:
    """The outcome of an expectation (its `ExpectationConfiguration`) whose query raised `error`."""
    return Outcome(
        check=check,
        expectation_type=config.type,
        expectation=expectation_text(config.type, config.kwargs),
        success=False,
        observed={"exception": error},
        summary=summary_text({}, error),
        sample_rows=(),
        error=error,
    )


def expectation_text(expectation_type: str, kwargs: Mapping[str, Any]) -> str:
    """E.g. `expect_column_values_to_not_be_null(column=customer_id)`."""
    arguments = ", ".join(
        f"{key}={argument_text(value)}"
        for key, value in kwargs.items()
        if key not in IGNORED_KWARGS and value is not None
    )
    return f"{expectation_type}({arguments})"


def argument_text(value: Any) -> str:
    """Expectation arguments are mostly column names: shown bare, unlike row values."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(argument_text(item) for item in value) + "]"
    return format_value(value)


def summary_text(result: Mapping[str, Any], error: str | None) -> str:
    if error:
        return f"raised {error}"
    if "unexpected_count" in result:
        return f"{result['unexpected_count']} of {result.get('element_count')} rows"
    if "observed_value" in result:
        return f"observed {format_value(result['observed_value'])}"
    return "failed"


def sample_rows(result: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """Offending rows GX reported: key columns and the checked columns of each."""
    rows = result.get("partial_unexpected_index_list") or []
    if not rows:
        # NOTE: multi-column expectations report whole rows here, not in the index list.
        rows = [row for row in result.get("partial_unexpected_list") or [] if isinstance(row, Mapping)]
    return tuple(dict(row) for row in rows[:SAMPLE_SIZE])


def exception_message(exception_info: Any) -> str | None:
    """GX reports errors either flat or keyed by metric; either way, the first message."""
    if not exception_info:
        return None
    if "raised_exception" in exception_info:
        infos = [exception_info]
    else:
        infos = list(exception_info.values())
    for info in infos:
        if info.get("raised_exception"):
            return info.get("exception_message") or "an exception"
    return None
