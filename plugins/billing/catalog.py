"""`billing catalog apply FILE.yaml`: validate a catalog against the data contracts, then upsert it.

A catalog file has one list per section: meters, plans (each with its `charges`, each charge with
its `tiers`), customers, subscriptions, credit_grants, webhook_endpoints. Every row is checked
before anything is written; on any error nothing is written and every problem is reported with
its place in the file (`plans[0].charges[1].tiers: …`). A key given twice, or two entries with one
id, are refused (YAML and the upsert would silently keep one). An upsert sets the fields an entry
gives; a field left out keeps its stored value, and `null` clears it.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import yaml
from psycopg import sql
from standardwebhooks import Webhook

from billing.contracts import Column, contracts
from billing.money import minor_units
from billing.warehouse import connect

# Catalog sections in write order (references first), with the raw table each fills.
SECTIONS = {
    "meters": "meters",
    "plans": "plans",
    "charges": "plan_charges",
    "tiers": "plan_charge_tiers",
    "customers": "customers",
    "subscriptions": "subscriptions",
    "credit_grants": "credit_grants",
    "webhook_endpoints": "webhook_endpoints",
}
TOP_LEVEL_SECTIONS = [name for name in SECTIONS if name not in {"charges", "tiers"}]
PRICING_FIELDS = {
    "per_unit": ["unit_price"],
    "package": ["unit_price", "package_size"],
    "percentage": ["percentage_rate"],
    "graduated": [],
    "volume": [],
}


class CatalogError(ValueError):
    """The catalog is invalid; `problems` lists every reason, each with its place in the file."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("catalog refused, nothing written:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Row:
    table: str
    where: str
    values: dict[str, Any]
    line: int | None = None  # where the entry starts in the file


def apply_catalog(path: Path) -> dict[str, int]:
    """Validate the catalog, then upsert it in one transaction; returns rows written per table."""
    rows = parse_catalog(path)
    with connect() as connection:
        _check_references(rows, connection)
        for row in rows:
            _upsert(connection, row)
        _replace_tiers(connection, rows)
        _check_contract_rules(connection, {row.table for row in rows})
    written: dict[str, int] = {}
    for row in rows:
        written[row.table] = written.get(row.table, 0) + 1
    return written


def parse_catalog(path: Path) -> list[Row]:
    """Read and validate the file against the contracts; raises CatalogError listing every problem."""
    try:
        document = yaml.load(path.read_text(), Loader=_DecimalLoader) or {}
    except (OSError, yaml.YAMLError) as error:
        raise CatalogError([f"{path}: cannot read as YAML: {error}"]) from None
    if not isinstance(document, dict):
        raise CatalogError([f"{path}: expected sections {', '.join(TOP_LEVEL_SECTIONS)}"])
    problems = [f"unknown section '{name}'" for name in document if name not in TOP_LEVEL_SECTIONS]
    rows = list(_flatten(document, problems))
    for row in rows:
        problems.extend(_check_row(row))
    problems.extend(_check_charges(rows))
    problems.extend(_check_meters_and_grants(rows))
    problems.extend(_check_unique_keys(rows))
    if problems:
        raise CatalogError(problems)
    return rows


def _flatten(document: dict, problems: list[str]):
    for section in TOP_LEVEL_SECTIONS:
        entries = document.get(section) or []
        if not isinstance(entries, list):
            problems.append(f"{section}: expected a list")
            continue
        for index, entry in enumerate(entries):
            where = f"{section}[{index}]"
            if not isinstance(entry, dict):
                problems.append(f"{where}: expected a mapping")
                continue
            if section != "plans":
                yield Row(SECTIONS[section], where, entry, _line(entry))
                continue
            plan = {key: value for key, value in entry.items() if key != "charges"}
            yield Row("plans", where, plan, _line(entry))
            charges = entry.get("charges") or []
            if not isinstance(charges, list):
                problems.append(f"{where}.charges: expected a list")
                continue
            for charge_index, charge in enumerate(charges):
                charge_where = f"{where}.charges[{charge_index}]"
                if not isinstance(charge, dict):
                    problems.append(f"{charge_where}: expected a mapping, got {charge!r}")
                    continue
                tiers = charge.pop("tiers", None) or []
                if not isinstance(tiers, list) or not all(isinstance(tier, dict) for tier in tiers):
                    problems.append(f"{charge_where}.tiers: expected a list of mappings ({{up_to, unit_price}})")
                    tiers = []
                yield Row("plan_charges", charge_where, {"plan_id": plan.get("plan_id"), **charge}, _line(charge))
                for tier_index, tier in enumerate(tiers):
                    yield Row(
                        "plan_charge_tiers",
                        f"{charge_where}.tiers[{tier_index}]",
                        {"plan_id": plan.get("plan_id"), "event_name": charge.get("event_name"),
                         "tier": tier_index + 1, **tier},
                    )


def _check_unique_keys(rows: list[Row]) -> list[str]:
    """One entry per primary key: a second would silently merge into the first on upsert."""
    problems, first = [], {}
    for row in rows:
        key = (row.table, *(row.values.get(column) for column in contracts()[row.table].primary_key))
        if key in first:
            earlier = first[key]
            shown = ", ".join(f"{column} {row.values.get(column)!r}" for column in contracts()[row.table].primary_key)
            problems.append(f"{_place(row)}: {shown} is given again; first at {_place(earlier)}")
        else:
            first[key] = row
    return problems


def _place(row: Row) -> str:
    return row.where if row.line is None else f"{row.where} (line {row.line})"


def _line(entry: Any) -> int | None:
    return getattr(entry, "line", None)


def _check_row(row: Row) -> list[str]:
    contract = contracts()[row.table]
    problems = [f"{row.where}: unknown field '{name}'" for name in row.values if name not in contract.by_name]
    for column in contract.columns:
        if column.name not in row.values:
            if column.required:
                problems.append(f"{row.where}: '{column.name}' is required")
            continue
        try:
            row.values[column.name] = _coerce(column, row.values[column.name])
        except ValueError as error:
            problems.append(f"{row.where}.{column.name}: {error}")
    return problems


def _coerce(column: Column, value: Any) -> Any:
    """The value as the column's type, checked against the contract's rules."""
    if value is None:
        if not column.nullable:
            raise ValueError("must not be null")
        return None
    if column.type == "numeric" or column.type in {"int", "smallint"}:
        value = _number(value, integral=column.type != "numeric")
        if column.minimum is not None and value < column.minimum:
            raise ValueError(f"must be >= {column.minimum}, got {value}")
        if column.maximum is not None and value > column.maximum:
            raise ValueError(f"must be <= {column.maximum}, got {value}")
        return value
    if column.type == "timestamptz":
        return _timestamp(value)
    if column.type == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if column.type.endswith("[]"):
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {value!r}")
        return [_number(item, integral=True) if column.type == "int[]" else str(item) for item in value]
    text = str(value)
    if column.accepted_values and text not in column.accepted_values:
        raise ValueError(f"'{text}' is not one of {', '.join(column.accepted_values)}")
    if column.pattern and not re.search(column.pattern, text):
        raise ValueError(f"'{_shown(column, text)}' does not match {column.pattern}")
    if column.rule == "iso_4217" and text.upper() not in minor_units():
        raise ValueError(f"'{text}' is not a supported ISO 4217 currency")
    if column.rule == "iana_timezone" and text not in _timezones():
        raise ValueError(f"'{text}' is not an IANA timezone")
    return text.upper() if column.rule == "iso_4217" else text


def _check_charges(rows: list[Row]) -> list[str]:
    """SPEC §5 rules a plan charge must meet: its price fields, and tiers ordered with the last unbounded."""
    problems = []
    tiers_by_charge: dict[tuple, list[Row]] = {}
    for row in rows:
        if row.table == "plan_charge_tiers":
            tiers_by_charge.setdefault((row.values["plan_id"], row.values["event_name"]), []).append(row)
    for row in rows:
        if row.table != "plan_charges":
            continue
        model = row.values.get("pricing_model")
        for field in PRICING_FIELDS.get(model, []):
            if row.values.get(field) is None:
                problems.append(f"{row.where}: pricing model {model} needs '{field}'")
        tiers = tiers_by_charge.get((row.values.get("plan_id"), row.values.get("event_name")), [])
        if model in {"graduated", "volume"}:
            problems.extend(_check_tiers(row.where, tiers))
        elif tiers:
            problems.append(f"{row.where}: tiers are only for graduated and volume pricing")
    return problems


def _check_meters_and_grants(rows: list[Row]) -> list[str]:
    problems = []
    for row in rows:
        if row.table == "webhook_endpoints" and isinstance(row.values.get("secret"), str):
            try:
                Webhook(row.values["secret"])  # as delivery will sign with it (Standard Webhooks)
            except (binascii.Error, ValueError):
                problems.append(f"{row.where}.secret: not a Standard Webhooks secret (whsec_ then base64)")
        if row.table == "meters" and row.values.get("aggregation") in {"count_unique", "time_duration"}:
            if not row.values.get("property"):
                problems.append(f"{row.where}: aggregation {row.values['aggregation']} needs 'property'")
        if row.table == "credit_grants" and isinstance(row.values.get("amount"), Decimal):
            exponent = minor_units().get(row.values.get("currency"))
            if exponent is not None and row.values["amount"] != round(row.values["amount"], exponent):
                problems.append(
                    f"{row.where}.amount: {row.values['amount']} has more decimals than "
                    f"{row.values['currency']} has minor units ({exponent})"
                )
    return problems


def _check_tiers(where: str, tiers: list[Row]) -> list[str]:
    if not tiers:
        return [f"{where}: graduated and volume pricing need tiers"]
    bounds = [tier.values.get("up_to") for tier in tiers]
    if bounds[-1] is not None:
        return [f"{where}.tiers: the last tier must be unbounded (up_to: null)"]
    if None in bounds[:-1]:
        return [f"{where}.tiers: only the last tier may be unbounded"]
    if any(lower >= upper for lower, upper in zip(bounds[:-2], bounds[1:-1])):
        return [f"{where}.tiers: up_to must increase from tier to tier, got {bounds[:-1]}"]
    return []


def _check_references(rows: list[Row], connection) -> None:
    """Every id a row points at exists, in this file or already in the warehouse."""
    known = {
        table: {row.values[key] for row in rows if row.table == table} | _existing(connection, table, key)
        for table, key in [("meters", "event_name"), ("plans", "plan_id"), ("customers", "customer_id")]
    }
    plan_currency = {row.values["plan_id"]: row.values["currency"] for row in rows if row.table == "plans"}
    plan_currency |= dict(connection.execute("select plan_id, currency from raw.plans").fetchall())
    customer_currency = {row.values["customer_id"]: row.values["currency"] for row in rows if row.table == "customers"}
    customer_currency |= dict(connection.execute("select customer_id, currency from raw.customers").fetchall())
    problems = []
    for row in rows:
        for field, table in [("event_name", "meters"), ("plan_id", "plans"), ("customer_id", "customers")]:
            if row.table not in {table, "plan_charge_tiers"} and field in row.values:
                if row.values[field] not in known[table]:
                    problems.append(f"{row.where}.{field}: unknown {table[:-1]} '{row.values[field]}'")
        if row.table == "subscriptions":
            problems.extend(_check_subscription(row, plan_currency, customer_currency))
    if problems:
        raise CatalogError(problems)


def _check_subscription(row: Row, plan_currency: dict, customer_currency: dict) -> list[str]:
    values = row.values
    problems = []
    if values.get("ended_at") is not None and values["ended_at"] <= values["started_at"]:
        problems.append(f"{row.where}: ended_at must be after started_at")
    plan, customer = plan_currency.get(values["plan_id"]), customer_currency.get(values["customer_id"])
    if plan and customer and plan != customer:
        problems.append(
            f"{row.where}: plan '{values['plan_id']}' bills in {plan} but customer "
            f"'{values['customer_id']}' pays in {customer}"
        )
    return problems


def _check_contract_rules(connection, tables: set[str]) -> None:
    """The table rules of the contracts (`rules:`), on the tables as written; refused if any breaks.

    They run inside the apply's transaction, so a refused catalog leaves nothing behind. The
    raw_contracts quality gate runs the same queries on whatever else writes the raw tables.
    """
    problems = []
    for table in sorted(tables):
        for rule in contracts()[table].rules:
            cursor = connection.execute(f"select * from ({rule.query}) as offending limit 5")
            names = [column.name for column in cursor.description]
            for values in cursor.fetchall():
                shown = ", ".join(f"{name}: {value}" for name, value in zip(names, values))
                problems.append(f"{table}: rule {rule.name} ({rule.description}) broken by {{{shown}}}")
    if problems:
        raise CatalogError(problems)


def _upsert(connection, row: Row) -> None:
    contract = contracts()[row.table]
    columns = list(row.values)
    updates = [column for column in columns if column not in contract.primary_key]
    statement = sql.SQL("insert into raw.{table} ({columns}) values ({values}) on conflict ({key}) do {action}").format(
        table=sql.Identifier(row.table),
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        key=sql.SQL(", ").join(map(sql.Identifier, contract.primary_key)),
        action=sql.SQL("update set ") + sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(column)) for column in updates
        ) if updates else sql.SQL("nothing"),
    )
    connection.execute(statement, list(row.values.values()))


def _replace_tiers(connection, rows: list[Row]) -> None:
    """A charge's tiers are its whole price table: tiers beyond those in the file are removed."""
    for row in rows:
        if row.table == "plan_charges":
            count = sum(
                1 for tier in rows
                if tier.table == "plan_charge_tiers"
                and (tier.values["plan_id"], tier.values["event_name"]) == (row.values["plan_id"], row.values["event_name"])
            )
            connection.execute(
                "delete from raw.plan_charge_tiers where plan_id = %s and event_name = %s and tier > %s",
                (row.values["plan_id"], row.values["event_name"], count),
            )


def _existing(connection, table: str, key: str) -> set[str]:
    query = sql.SQL("select {key} from raw.{table}").format(key=sql.Identifier(key), table=sql.Identifier(table))
    return {value for (value,) in connection.execute(query)}


def _number(value: Any, *, integral: bool) -> Decimal | int:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"expected a number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    if integral:
        if number != number.to_integral_value():
            raise ValueError(f"expected a whole number, got {value!r}")
        return int(number)
    return number


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"expected an ISO 8601 timestamp, got {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"'{value}' needs a UTC offset (e.g. 2026-06-01T00:00:00Z)")
    return parsed


def _shown(column: Column, text: str) -> str:
    return "…" if column.secret else text


@cache
def _timezones() -> set[str]:
    return available_timezones() | {"UTC"}


class _Mapping(dict):
    """A YAML mapping that knows the line it starts on."""

    line: int


class _DecimalLoader(yaml.SafeLoader):
    """YAML with exact numbers (`0.001` is Decimal('0.001'), never a float), mappings that know
    their line, and a key given twice refused (YAML would keep the last without a word)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"key '{key}' is given twice (lines {seen[key]} and {key_node.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        mapping = _Mapping(super().construct_mapping(node, deep=deep))
        mapping.line = node.start_mark.line + 1
        return mapping


def _construct_decimal(loader: _DecimalLoader, node) -> Decimal:
    text = loader.construct_scalar(node).replace("_", "")
    if text.lower().lstrip("+-") in {".inf", ".nan"}:
        raise yaml.constructor.ConstructorError(None, None, f"{text} is not a finite number", node.start_mark)
    return Decimal(text)


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
# NOTE: SafeLoader's own map constructor copies the mapping into a plain dict, losing its line.
_DecimalLoader.add_constructor(
    "tag:yaml.org,2002:map", lambda loader, node: loader.construct_mapping(node, deep=True)
)
