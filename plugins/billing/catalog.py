"""`billing catalog apply FILE.yaml`: validate a catalog against the data contracts, then upsert it.

A catalog file has one list per section: meters, plans (each with its `charges`, each charge with
its `tiers`), tax_rates, customers, subscriptions, coupons, coupon_redemptions, credit_grants,
webhook_endpoints. The contracts
(data_contracts/) are the rules: each entry is validated before anything is written by a pydantic
model generated from its table's column rules; after writing, the table rules (`rules:`) run on
the result in the same transaction. On any error nothing is written and every problem is reported
with its place in the file (`plans[0].charges[1].tiers[0].up_to (line 14): …`). A key given twice,
or two entries with one id, are refused (YAML and the upsert would silently keep one). An upsert
sets the fields an entry gives; a field left out keeps its stored value, and `null` clears it.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from itertools import groupby
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from psycopg import sql
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    create_model,
    field_validator,
    model_validator,
)
from standardwebhooks import Webhook

from billing import documents
from billing.contracts import Column, contracts
from billing.money import minor_units
from billing.warehouse import connect
from billing.webhooks.outbox import EVENT_TYPES

# Catalog sections in write order (references first), each filling the raw table of its name;
# a plan's `charges` and their `tiers` fill plan_charges and plan_charge_tiers.
SECTIONS = (
    "meters", "plans", "tax_rates", "customers", "subscriptions", "coupons", "coupon_redemptions", "credit_grants",
    "webhook_endpoints",
)
# The ids a row may point at (field → the table that has them), checked against the file and the warehouse.
REFERENCES = {
    "event_name": "meters", "plan_id": "plans", "customer_id": "customers", "subscription_id": "subscriptions",
    "coupon_id": "coupons",
}


class CatalogError(ValueError):
    """The catalog is invalid; `problems` lists every reason, each with its place in the file."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("catalog refused, nothing written:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Row:
    """One raw row to upsert, with where its entry is in the file."""

    table: str
    values: dict[str, Any]
    loc: tuple  # the entry's place in the document
    document: Any

    def place(self, *more: str) -> str:
        return documents.place(self.document, self.loc + more)


def apply_catalog(path: Path) -> dict[str, int]:
    """Validate the catalog, then upsert it in one transaction; returns rows written per table."""
    rows = parse_catalog(path)
    with connect() as connection:
        _check_references(rows, connection)
        # NOTE: one executemany (pipelined) per run of rows with the same table and fields, in file
        # order: a statement per row waits a round trip each (minutes at 100,000 customers).
        for (table, columns), run in groupby(rows, key=lambda row: (row.table, tuple(row.values))):
            _upsert(connection, table, columns, [list(row.values.values()) for row in run])
        _replace_tiers(connection, rows)
        _check_contract_rules(connection, rows)
    written: dict[str, int] = {}
    for row in rows:
        written[row.table] = written.get(row.table, 0) + 1
    return written


def parse_catalog(path: Path) -> list[Row]:
    """Read and validate the file against the contracts; raises CatalogError listing every problem."""
    try:
        document = documents.read(path)
        catalog = documents.validated(_catalog_model(), document, secrets=_secret_columns())
    except documents.InvalidDocument as error:
        raise CatalogError(error.problems) from None
    rows = list(_rows(catalog, document))
    problems = _check_unique_keys(rows)
    if problems:
        raise CatalogError(problems)
    return rows


def _rows(catalog: BaseModel, document: Any):
    """The raw rows of the catalog, in write order: an entry's fields as given (unset ones are kept)."""
    for section in SECTIONS:
        for index, entry in enumerate(getattr(catalog, section) or []):
            yield Row(section, entry.model_dump(exclude_unset=True, exclude={"charges"}), (section, index), document)
            for charge_index, charge in enumerate(getattr(entry, "charges", None) or []):
                charge_loc = (section, index, "charges", charge_index)
                keys = {"plan_id": entry.plan_id, "event_name": charge.event_name}
                yield Row("plan_charges", keys | charge.model_dump(exclude_unset=True, exclude={"tiers"}),
                          charge_loc, document)
                for tier_index, tier in enumerate(charge.tiers or []):
                    values = keys | {"tier": tier_index + 1, **tier.model_dump(exclude_unset=True)}
                    yield Row("plan_charge_tiers", values, (*charge_loc, "tiers", tier_index), document)


def _check_unique_keys(rows: list[Row]) -> list[str]:
    """One entry per primary key: a second would silently merge into the first on upsert."""
    problems, first = [], {}
    for row in rows:
        key = (row.table, *(row.values.get(column) for column in contracts()[row.table].primary_key))
        if key in first:
            shown = ", ".join(f"{column} {row.values.get(column)!r}" for column in contracts()[row.table].primary_key)
            problems.append(f"{row.place()}: {shown} is given again; first at {first[key].place()}")
        else:
            first[key] = row
    return problems


# ---------- the models, generated from the contracts


class _Entry(BaseModel):
    """An entry of the file: only its contract's columns; numbers given for text read as text."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, regex_engine="python-re")


class _CreditGrant(_Entry):
    """An amount the currency can hold: no more decimals than its minor units (JPY none)."""

    @model_validator(mode="after")
    def _amount_fits_the_currency(self):
        exponent = minor_units()[self.currency]
        if self.amount != round(self.amount, exponent):
            raise ValueError(
                f"amount {self.amount} has more decimals than {self.currency} has minor units ({exponent})"
            )
        return self


class _WebhookEndpoint(_Entry):
    """A secret delivery can sign with: whsec_ then base64 (Standard Webhooks); event types that exist
    (a misspelt one would never be delivered)."""

    @field_validator("event_types", check_fields=False)
    @classmethod
    def _are_event_types(cls, event_types):
        unknown = [event_type for event_type in event_types or () if event_type not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event type {', '.join(unknown)}; the types are {', '.join(sorted(EVENT_TYPES))}")
        return event_types

    @field_validator("secret", check_fields=False)
    @classmethod
    def _is_a_signing_secret(cls, secret):
        try:
            Webhook(secret)
        except (binascii.Error, ValueError):
            raise ValueError("not a Standard Webhooks secret (whsec_ then base64)") from None
        return secret


@cache
def _catalog_model() -> type[BaseModel]:
    """The file: a list per section, each entry a model of its table's contract."""
    tier = _entry_model("plan_charge_tiers", without=frozenset({"plan_id", "event_name", "tier"}))
    charge = _entry_model("plan_charges", without=frozenset({"plan_id"}), tiers=(list[tier] | None, None))
    sections = {section: _entry_model(section) for section in SECTIONS} | {
        "plans": _entry_model("plans", charges=(list[charge] | None, None)),
        "credit_grants": _entry_model("credit_grants", _CreditGrant),
        "webhook_endpoints": _entry_model("webhook_endpoints", _WebhookEndpoint),
    }
    fields = {name: (list[model] | None, None) for name, model in sections.items()}
    return create_model("catalog", __base__=_Entry, **fields)


def _entry_model(
    table: str, base: type[_Entry] = _Entry, *, without: frozenset[str] = frozenset(), **more: Any
) -> type[BaseModel]:
    """The model of a table's entries: a field per contract column, required when the column is."""
    columns = [column for column in contracts()[table].columns if column.name not in without]
    fields = {column.name: (_annotation(column), ... if column.required else None) for column in columns}
    return create_model(table, __base__=base, **fields, **more)


def _annotation(column: Column) -> Any:
    """The column's type with its contract rules: accepted values, pattern, bounds, named rule."""
    bounds = Field(ge=column.minimum, le=column.maximum)
    if column.accepted_values:
        annotation = Literal[column.accepted_values]
    elif column.type == "numeric":
        annotation = Annotated[Decimal, bounds, Field(allow_inf_nan=False)]
    elif column.type in {"int", "smallint"}:
        annotation = Annotated[StrictInt, bounds]
    elif column.type == "timestamptz":
        annotation = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
    elif column.type == "boolean":
        annotation = StrictBool
    elif column.type.endswith("[]"):
        annotation = list[StrictInt] if column.type == "int[]" else list[str]
    else:
        annotation = Annotated[str, Field(pattern=column.pattern)]
        if column.rule:
            annotation = Annotated[annotation, AfterValidator(_RULES[column.rule])]
    return annotation | None if column.nullable else annotation


def _not_a_number(value: Any) -> Any:
    """Pydantic would read a number as Unix seconds; a catalog's timestamps are ISO 8601 text."""
    if isinstance(value, (int, float, Decimal)):
        raise ValueError(f"expected an ISO 8601 timestamp, got {value}")
    return value


def _currency(text: str) -> str:
    if text.upper() not in minor_units():
        raise ValueError(f"'{text}' is not a supported ISO 4217 currency")
    return text.upper()


def _timezone(text: str) -> str:
    if text not in _timezones():
        raise ValueError(f"'{text}' is not an IANA timezone")
    return text


# The contracts' named column rules (`rule:`), as checked in Python.
_RULES = {"iso_4217": _currency, "iana_timezone": _timezone}


@cache
def _timezones() -> set[str]:
    return available_timezones() | {"UTC"}


@cache
def _secret_columns() -> frozenset[str]:
    return frozenset(column.name for contract in contracts().values() for column in contract.columns if column.secret)


# ---------- writing


def _check_references(rows: list[Row], connection) -> None:
    """Every id a row points at exists, in this file or already in the warehouse."""
    known = {
        table: {row.values[key] for row in rows if row.table == table} | _existing(connection, table, key)
        for key, table in REFERENCES.items()
    }
    problems = []
    for row in rows:
        for field, table in REFERENCES.items():
            if row.table not in {table, "plan_charge_tiers"} and row.values.get(field) is not None:
                if row.values[field] not in known[table]:
                    problems.append(f"{row.place(field)}: unknown {table[:-1]} '{row.values[field]}'")
    if problems:
        raise CatalogError(problems)


def _check_contract_rules(connection, rows: list[Row]) -> None:
    """The table rules of the contracts (`rules:`), on the tables as written; refused if any breaks.

    They run inside the apply's transaction, so a refused catalog leaves nothing behind; an
    offending row the file gave is reported at its place in the file. The raw_contracts quality
    gate runs the same queries on whatever else writes the raw tables.
    """
    problems = []
    for table in sorted({row.table for row in rows}):
        key = contracts()[table].primary_key
        places = {tuple(row.values.get(column) for column in key): row.place() for row in rows if row.table == table}
        for rule in contracts()[table].rules:
            cursor = connection.execute(f"select * from ({rule.query}) as offending limit 5")
            names = [column.name for column in cursor.description]
            for values in cursor.fetchall():
                offending = dict(zip(names, values, strict=True))
                where = places.get(tuple(offending.get(column) for column in key), table)
                shown = ", ".join(f"{name}: {value}" for name, value in offending.items())
                problems.append(f"{where}: rule {rule.name} ({rule.description}) broken by {{{shown}}}")
    if problems:
        raise CatalogError(problems)


def _upsert(connection, table: str, columns: tuple[str, ...], values: list[list]) -> None:
    contract = contracts()[table]
    updates = [column for column in columns if column not in contract.primary_key]
    statement = sql.SQL("insert into raw.{table} ({columns}) values ({values}) on conflict ({key}) do {action}").format(
        table=sql.Identifier(table),
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        key=sql.SQL(", ").join(map(sql.Identifier, contract.primary_key)),
        action=sql.SQL("update set ") + sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(column)) for column in updates
        ) if updates else sql.SQL("nothing"),
    )
    connection.cursor().executemany(statement, values)


def _replace_tiers(connection, rows: list[Row]) -> None:
    """A charge's tiers are its whole price table: tiers beyond those in the file are removed."""
    for row in rows:
        if row.table == "plan_charges":
            count = sum(
                1 for tier in rows
                if tier.table == "plan_charge_tiers"
                and tier.values["plan_id"] == row.values["plan_id"]
                and tier.values["event_name"] == row.values["event_name"]
            )
            connection.execute(
                "delete from raw.plan_charge_tiers where plan_id = %s and event_name = %s and tier > %s",
                (row.values["plan_id"], row.values["event_name"], count),
            )


def _existing(connection, table: str, key: str) -> set[str]:
    query = sql.SQL("select {key} from raw.{table}").format(key=sql.Identifier(key), table=sql.Identifier(table))
    return {value for (value,) in connection.execute(query)}
