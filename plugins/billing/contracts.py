"""The raw tables' data contracts (`data_contracts/*.yml`): the one source of their schema and rules.

Three things derive from them, so they cannot drift apart:

- `billing init` creates (and upgrades) the `raw` tables from the columns (`create_table_sql`);
- `billing catalog apply` validates every row against the column rules, and after writing runs the
  table rules (`rules:`) on the result, in the same transaction;
- the `raw_contracts` quality gate (`billing.quality.contract_gate`) turns every column rule, key,
  reference and table rule into Great Expectations checks on the warehouse.

The format is documented in `data_contracts/README.md`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml

from billing.settings import CONTRACTS_DIR

# Named column rules (`rule:`), each checked in Python by the catalog and in SQL by the gate.
COLUMN_RULES = ("iso_4217", "iana_timezone")
# `json_type:` of a jsonb column, enforced by the table itself (a CHECK constraint), so every
# writer (catalog, event loads in any format, the application) meets the same rule.
JSON_TYPES = ("object",)
# What a violation does: `stop` = the raw_contracts gate stops the run; `quarantine` = the
# pipeline sets the offending row aside with a reason (usage events, SPEC §2) and the gate skips it.
ON_VIOLATION = ("stop", "quarantine")
# `partition_by:` intervals: one range partition per calendar month (UTC) of the column.
PARTITION_INTERVALS = ("month",)
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
REFERENCE = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)$")


class ContractError(ValueError):
    """A contract file does not follow the format of data_contracts/README.md."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    default: str | None = None
    accepted_values: tuple[str, ...] = ()
    pattern: str | None = None
    rule: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    references: str | None = None  # "table.column" of another contract
    json_type: str | None = None
    secret: bool = False
    identity: bool = False  # numbered by the table (`generated always as identity`); never written
    description: str | None = None

    @property
    def required(self) -> bool:
        """A value must be given when the row is written (no default fills it in)."""
        return not self.nullable and self.default is None and not self.identity

    @property
    def referenced(self) -> tuple[str, str] | None:
        """(table, column) this column points at, if it is a reference."""
        if self.references is None:
            return None
        match = REFERENCE.match(self.references)
        return (match.group(1), match.group(2)) if match else None


@dataclass(frozen=True)
class Rule:
    """A table-level semantic rule: a query selecting the raw rows that break it (none = kept)."""

    name: str
    description: str
    query: str
    key_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class PartitionBy:
    """`partition_by:`: the table is partitioned by range of `column`, one partition per `interval`."""

    column: str
    interval: str


@dataclass(frozen=True)
class Contract:
    table: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique_keys: tuple[tuple[str, ...], ...] = ()
    dedupe_key: str | None = None
    indexes: tuple[tuple[str, ...], ...] = ()  # column sets `billing init` indexes (docs/incremental.md)
    on_violation: str = "stop"
    rules: tuple[Rule, ...] = ()
    partition_by: PartitionBy | None = None
    by_name: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)

    @property
    def keys(self) -> tuple[tuple[str, ...], ...]:
        """Every set of columns that must be unique: the primary key, then the other unique keys."""
        return ((self.primary_key,) if self.primary_key else ()) + self.unique_keys

    @property
    def key_columns(self) -> tuple[str, ...]:
        """Columns that identify a row in failure messages."""
        return self.primary_key or ((self.dedupe_key,) if self.dedupe_key else ())

    @property
    def checks(self) -> dict[str, tuple[Column, str]]:
        """The table's CHECK constraints, by name: (the column, its condition)."""
        return {
            f"{self.table}__{column.name}_is_a_json_{column.json_type}":
                (column, f"{column.name} is null or jsonb_typeof({column.name}) = '{column.json_type}'")
            for column in self.columns if column.json_type
        }

    @property
    def written_columns(self) -> tuple[Column, ...]:
        """The columns a writer gives values for (identity columns are the table's)."""
        return tuple(column for column in self.columns if not column.identity)

    def create_table_sql(self, *, checks: bool = True) -> str:
        """`create table if not exists`; without `checks`, `add_missing_columns_sql` adds them not valid."""
        lines = [_column_sql(column) for column in self.columns]
        if checks:
            lines += [f"constraint {name} check ({condition})" for name, (_, condition) in self.checks.items()]
        if self.primary_key:
            lines.append(f"primary key ({', '.join(self.primary_key)})")
        body = ",\n    ".join(lines)
        partitioned = f" partition by range ({self.partition_by.column})" if self.partition_by else ""
        return f"create table if not exists raw.{self.table} (\n    {body}\n){partitioned}"

    def create_indexes_sql(self) -> list[str]:
        """`create index if not exists` for each of `indexes`, named after the table and columns."""
        return [
            f"create index if not exists {self.table}__{'__'.join(columns)}_idx"
            f" on raw.{self.table} ({', '.join(columns)})"
            for columns in self.indexes
        ]

    def add_missing_columns_sql(self) -> list[str]:
        """`alter table` statements that upgrade an older table in place (new columns only)."""
        return [
            f"alter table raw.{self.table} add column if not exists {_column_sql(column)}"
            for column in self.columns
        ] + [
            # NOTE: not valid: rows written before the check stay as they were; new rows must meet it.
            f"do $$ begin alter table raw.{self.table} add constraint {name} check ({condition}) not valid;"
            " exception when duplicate_object then null; end $$"
            for name, (_, condition) in self.checks.items()
        ]


@cache
def contracts() -> dict[str, Contract]:
    """Every raw table's contract, by table name."""
    found = {}
    for path in sorted(CONTRACTS_DIR.glob("*.yml")):
        try:
            contract = parse_contract(yaml.safe_load(path.read_text()))
        except (TypeError, KeyError, ValueError) as error:
            raise ContractError(f"{path.name}: {error}") from None
        found[contract.table] = contract
    _check_references(found)
    return found


def parse_contract(document: dict[str, Any]) -> Contract:
    """One contract from its YAML document; raises ContractError on anything malformed."""
    columns = tuple(_column(spec) for spec in document["columns"])
    by_name = {column.name: column for column in columns}
    contract = Contract(
        table=document["table"],
        description=document["description"].strip(),
        columns=columns,
        primary_key=tuple(document.get("primary_key", ())),
        unique_keys=tuple(tuple(key) for key in document.get("unique_keys", ())),
        dedupe_key=document.get("dedupe_key"),
        indexes=tuple(tuple(columns) for columns in document.get("indexes", ())),
        on_violation=document.get("on_violation", "stop"),
        rules=tuple(_rule(spec) for spec in document.get("rules", ())),
        partition_by=PartitionBy(**document["partition_by"]) if "partition_by" in document else None,
        by_name=by_name,
    )
    if contract.on_violation not in ON_VIOLATION:
        raise ContractError(f"on_violation must be one of {', '.join(ON_VIOLATION)}")
    if contract.partition_by is not None:
        partition_by = contract.partition_by
        if contract.table != "usage_events":
            raise ContractError("partition_by: only usage_events is partitioned (plugins/billing/raw_events.py)")
        if partition_by.interval not in PARTITION_INTERVALS:
            raise ContractError(f"partition_by: interval must be one of {', '.join(PARTITION_INTERVALS)}")
        column = by_name.get(partition_by.column)
        if column is None or column.nullable or column.type != "timestamptz":
            raise ContractError(f"partition_by: {partition_by.column!r} must be a timestamptz column, nullable: false")
    for key in contract.keys + contract.indexes + ((contract.dedupe_key,) if contract.dedupe_key else (),):
        for name in key:
            if name not in by_name:
                raise ContractError(f"key column {name!r} is not a column")
    names = [rule.name for rule in contract.rules]
    if len(set(names)) != len(names):
        raise ContractError(f"duplicate rule names: {names}")
    return contract


def _column(spec: dict[str, Any]) -> Column:
    column = Column(**{**spec, "accepted_values": tuple(spec.get("accepted_values", ()))})
    if not NAME.match(column.name):
        raise ContractError(f"column name {column.name!r} must be lower_snake_case")
    if column.rule is not None and column.rule not in COLUMN_RULES:
        raise ContractError(f"{column.name}: unknown rule {column.rule!r} (known: {', '.join(COLUMN_RULES)})")
    if column.references is not None and column.referenced is None:
        raise ContractError(f"{column.name}: references must read table.column, got {column.references!r}")
    if column.pattern is not None:
        re.compile(column.pattern)
    if column.json_type is not None and (column.json_type not in JSON_TYPES or column.type != "jsonb"):
        raise ContractError(f"{column.name}: json_type must be one of {', '.join(JSON_TYPES)}, on a jsonb column")
    if column.identity and (column.type not in ("integer", "bigint") or column.default is not None):
        raise ContractError(f"{column.name}: identity is for an integer or bigint column without a default")
    return column


def _rule(spec: dict[str, Any]) -> Rule:
    rule = Rule(
        name=spec["name"],
        description=" ".join(spec["description"].split()),
        query=spec["query"].strip().rstrip(";"),
        key_columns=tuple(spec.get("key_columns", ())),
    )
    if not NAME.match(rule.name):
        raise ContractError(f"rule name {rule.name!r} must be lower_snake_case")
    return rule


def _check_references(found: dict[str, Contract]) -> None:
    for contract in found.values():
        for column in contract.columns:
            if column.referenced is None:
                continue
            table, target = column.referenced
            if table not in found or target not in found[table].by_name:
                raise ContractError(f"{contract.table}.{column.name}: references unknown {column.references}")


def _column_sql(column: Column) -> str:
    sql = f"{column.name} {column.type}"
    if column.identity:
        return sql + " generated always as identity"
    if not column.nullable:
        sql += " not null"
    if column.default is not None:
        sql += f" default {column.default}"
    return sql
