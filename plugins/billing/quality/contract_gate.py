"""The `raw_contracts` gate: Great Expectations checks generated from `data_contracts/*.yml`.

For every contract whose violations stop the run (`on_violation: stop`; usage events are
quarantined by dbt instead), the gate checks the raw table as it is in the warehouse:

- `<table>__columns`: not null for each non-nullable column, accepted values, patterns, minimum
  and maximum, and the primary key and every `unique_keys` entry unique;
- `<table>__<column>_matches_its_pattern`: a secret column's pattern, its value never shown;
- `<table>__<column>_is_<rule>`: the named column rules (`iso_4217`, `iana_timezone`);
- `<table>__<column>_references_<other>`: every non-null reference exists in the other table;
- `<table>__<rule>`: each table rule's query returns no rows.

So the DDL (`billing init`), the catalog validation and this gate read the same contracts.
"""

from __future__ import annotations

from datetime import datetime

from psycopg import sql

from billing.contracts import Column, Contract, contracts
from billing.quality.gates import Check, Gate

GATE_NAME = "raw_contracts"


def raw_contracts_gate(*, as_of: datetime | None = None, tables: tuple[str, ...] | None = None) -> Gate:
    """The gate for every enforced contract (or only `tables`)."""
    checks = []
    for contract in contracts().values():
        if contract.on_violation != "stop" or (tables is not None and contract.table not in tables):
            continue
        checks.extend(contract_checks(contract))
    return Gate(GATE_NAME, checks=tuple(checks), as_of=as_of)


def contract_checks(contract: Contract) -> list[Check]:
    """The checks one contract generates, in the order of the module docstring."""
    from billing.quality.runner import load_great_expectations

    expect = load_great_expectations().expectations
    table = f"raw.{contract.table}"
    keys = contract.key_columns
    checks = []

    column_expectations = []
    for column in contract.columns:
        if not column.nullable:
            column_expectations.append(expect.ExpectColumnValuesToNotBeNull(column=column.name))
        if column.secret:
            continue  # its pattern is checked below, without its values
        if column.accepted_values:
            column_expectations.append(
                expect.ExpectColumnValuesToBeInSet(column=column.name, value_set=list(column.accepted_values)))
        if column.pattern:
            column_expectations.append(expect.ExpectColumnValuesToMatchRegex(column=column.name, regex=column.pattern))
        if column.minimum is not None or column.maximum is not None:
            column_expectations.append(expect.ExpectColumnValuesToBeBetween(
                column=column.name, min_value=column.minimum, max_value=column.maximum))
    # NOTE: the keys share the columns' query: one GX validation less per table (~0.1 s each).
    column_expectations += [
        expect.ExpectColumnValuesToBeUnique(column=key[0]) if len(key) == 1
        else expect.ExpectCompoundColumnsToBeUnique(column_list=list(key))
        for key in contract.keys
    ]
    if column_expectations:
        checks.append(Check(f"{contract.table}__columns", f"select * from {table}",
                            key_columns=keys, expectations=tuple(column_expectations)))

    for column in contract.columns:
        if column.secret and column.pattern:
            checks.append(Check(
                f"{contract.table}__{column.name}_matches_its_pattern",
                f"select {_columns(keys)}, {column.name} ~ {literal(column.pattern)} as matches_pattern"
                f" from {table} where {column.name} is not null",
                key_columns=keys,
                expectations=(expect.ExpectColumnValuesToBeInSet(column="matches_pattern", value_set=[True]),),
            ))

    for column in contract.columns:
        if column.rule:
            checks.append(Check(
                f"{contract.table}__{column.name}_is_{column.rule}",
                f"select {_columns(keys + (column.name,))} from {table}"
                f" where {column.name} is not null and not ({column_rule_sql(column)})",
                key_columns=keys,
                expectations=(expect.ExpectTableRowCountToEqual(value=0),),
            ))
        if column.referenced:
            other, target = column.referenced
            checks.append(Check(
                f"{contract.table}__{column.name}_references_{other}",
                f"select {_columns(keys + (column.name,), prefix='source')} from {table} as source"
                f" where source.{column.name} is not null and not exists ("
                f"select 1 from raw.{other} as target where target.{target} = source.{column.name})",
                key_columns=keys,
                expectations=(expect.ExpectTableRowCountToEqual(value=0),),
            ))

    for rule in contract.rules:
        checks.append(Check(
            f"{contract.table}__{rule.name}",
            escape_braces(rule.query),
            key_columns=rule.key_columns,
            expectations=(expect.ExpectTableRowCountToEqual(value=0),),
        ))
    return checks


def column_rule_sql(column: Column) -> str:
    """A SQL condition true when the column's value meets its named rule."""
    if column.rule == "iso_4217":
        from billing.money import minor_units

        codes = ", ".join(literal(code) for code in sorted(minor_units()))
        return f"upper({column.name}) in ({codes})"
    if column.rule == "iana_timezone":
        # NOTE: PostgreSQL's own zone list: a zone it does not know would break the period model.
        return f"{column.name} in (select name from pg_timezone_names)"
    raise ValueError(f"no SQL for column rule {column.rule!r}")


def literal(value) -> str:
    """A SQL literal, safe inside a Check query (whose braces are placeholders)."""
    return escape_braces(sql.Literal(value).as_string(None))


def escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _columns(names: tuple[str, ...], prefix: str | None = None) -> str:
    unique = list(dict.fromkeys(names))
    return ", ".join(f"{prefix}.{name}" if prefix else name for name in unique)
