"""The raw tables' data contracts (`data_contracts/*.yml`): the one source of their schema.

`billing init` derives the `raw` DDL from them and `billing catalog apply` its validation rules, so
the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import yaml

from billing.settings import CONTRACTS_DIR


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
    secret: bool = False
    description: str | None = None

    @property
    def required(self) -> bool:
        """A value must be given when the row is written (no default fills it in)."""
        return not self.nullable and self.default is None


@dataclass(frozen=True)
class Contract:
    table: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    dedupe_key: str | None = None
    by_name: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)

    def create_table_sql(self) -> str:
        lines = [_column_sql(column) for column in self.columns]
        if self.primary_key:
            lines.append(f"primary key ({', '.join(self.primary_key)})")
        body = ",\n    ".join(lines)
        return f"create table if not exists raw.{self.table} (\n    {body}\n)"

    def add_missing_columns_sql(self) -> list[str]:
        """`alter table` statements that upgrade an older table in place (new columns only)."""
        return [
            f"alter table raw.{self.table} add column if not exists {_column_sql(column)}"
            for column in self.columns
        ]


@cache
def contracts() -> dict[str, Contract]:
    """Every raw table's contract, by table name."""
    found = {}
    for path in sorted(CONTRACTS_DIR.glob("*.yml")):
        document = yaml.safe_load(path.read_text())
        columns = tuple(
            Column(**{**spec, "accepted_values": tuple(spec.get("accepted_values", ()))})
            for spec in document["columns"]
        )
        found[document["table"]] = Contract(
            table=document["table"],
            description=document["description"].strip(),
            columns=columns,
            primary_key=tuple(document.get("primary_key", ())),
            dedupe_key=document.get("dedupe_key"),
            by_name={column.name: column for column in columns},
        )
    return found


def _column_sql(column: Column) -> str:
    sql = f"{column.name} {column.type}"
    if not column.nullable:
        sql += " not null"
    if column.default is not None:
        sql += f" default {column.default}"
    return sql
