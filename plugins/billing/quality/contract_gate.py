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

The enforced tables count their changes (a statement trigger bumps `raw.contract_table_changes`
on any insert, update, delete or truncate), so a cycle close whose raw tables have not changed
since the gate last passed does not check them again (`contract_tables_version`).
"""

from __future__ import annotations

from datetime import datetime

from psycopg import sql

from billing.contracts import Column, Contract, contracts
from billing.quality.gates import Check, Gate

GATE_NAME = "raw_contracts"
CHANGE_TRIGGER = "contract_table_changed"


def enforced_contracts() -> list[Contract]:
    """The contracts whose violations stop the run: the tables this gate checks."""
    return [contract for contract in contracts().values() if contract.on_violation == "stop"]


def raw_contracts_gate(*, as_of: datetime | None = None, tables: tuple[str, ...] | None = None) -> Gate:
    """The gate for every enforced contract (or only `tables`)."""
    checks = []
    for contract in enforced_contracts():
        if tables is None or contract.table in tables:
            checks.extend(contract_checks(contract))
    return Gate(GATE_NAME, checks=tuple(checks), as_of=as_of)


def change_counting_sql() -> str:
    """`billing init`'s DDL for the change counter of the enforced tables."""
    triggers = "".join(
        f"""
create or replace trigger {CHANGE_TRIGGER}
    after insert or update or delete or truncate on raw.{contract.table}
    for each statement execute function raw.count_contract_table_change();
""" for contract in enforced_contracts())
    return """
create sequence if not exists raw.contract_table_changes;

create or replace function raw.count_contract_table_change() returns trigger
language plpgsql as $$
begin
    perform nextval('raw.contract_table_changes');
    return null;
end
$$;
""" + triggers


def contract_tables_version() -> str | None:
    """The state of the enforced tables: the change counter and each table's identity. None when a
    table does not count its changes (made by hand, or before `billing init` added the trigger)."""
    from billing.warehouse import connect

    tables = [contract.table for contract in enforced_contracts()]
    with connect() as connection:
        counted = connection.execute(
            "select to_regclass('raw.contract_table_changes') is not null").fetchone()[0]
        if not counted:
            return None
        [(changes,)] = connection.execute(
            "select case when is_called then last_value else 0 end from raw.contract_table_changes").fetchall()
        identities = connection.execute(
            """
            select tables.relname, tables.oid, exists (
                select from pg_trigger where tgrelid = tables.oid and tgname = %s
            )
            from pg_class as tables
            where tables.relnamespace = 'raw'::regnamespace and tables.relname = any(%s)
            order by tables.relname
            """, (CHANGE_TRIGGER, tables)).fetchall()
    if len(identities) != len(tables) or not all(counting for _name, _oid, counting in identities):
        return None
    return f"{changes}:" + ",".join(f"{name}={oid}" for name, oid, _counting in identities)


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
