"""`billing load events FILE`: CSV or JSON Lines into raw.usage_events through COPY, all or nothing.

CSV is streamed to COPY as it is (its header names the columns); JSON Lines are parsed a line at a
time and streamed as rows. Any malformed line aborts the load, nothing is written, and the error
names the file's line number and the reason. The table is partitioned by month of ingestion
(billing.raw_events): the current month's partition is made before the COPY, and rows the COPY
routed to the default partition (their own ingested_at, in a month without one) get partitions of
their months once it committed.
"""

from __future__ import annotations

import csv
import json
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO

import psycopg
from psycopg import sql
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from billing import raw_events
from billing.warehouse import connect

USAGE_EVENTS = raw_events.USAGE_EVENTS
EVENT_COLUMNS = tuple(column.name for column in USAGE_EVENTS.written_columns)
CHUNK_BYTES = 1 << 20


class LoadError(ValueError):
    """The file was refused; nothing was loaded."""


@dataclass(frozen=True)
class LoadResult:
    path: Path
    rows: int
    # The current month, when it has no partition and the load's role may not create one: its rows
    # wait in the default partition until the table's owner runs `billing init` (billing.raw_events).
    month_without_partition: date | None = None


def load_events(path: Path, *, show_progress: bool = True) -> LoadResult:
    """Load every event of the file, or none; the format follows the extension (.csv, .jsonl/.ndjson)."""
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    loader = _load_csv if path.suffix.lower() == ".csv" else _load_json_lines
    if path.suffix.lower() not in {".csv", ".jsonl", ".ndjson", ".json"}:
        raise LoadError(f"{path}: unknown format, expected .csv or .jsonl")
    month_without_partition = raw_events.prepare_load()
    with _progress(path, show_progress) as advance, path.open("rb") as handle, connect() as connection:
        rows = loader(connection, handle, advance)
    with connect() as connection:
        raw_events.settle(connection)
    return LoadResult(path, rows, month_without_partition)


def _load_csv(connection: psycopg.Connection, handle: IO[bytes], advance) -> int:
    header_line = handle.readline()
    try:
        header = next(csv.reader([header_line.decode("utf-8-sig")]), [])
    except UnicodeDecodeError:
        raise LoadError("line 1: the header is not UTF-8 text") from None
    unknown = [name for name in header if name not in EVENT_COLUMNS]
    if not header or unknown:
        raise LoadError(f"line 1: unknown column(s) {unknown or header}; expected some of {', '.join(EVENT_COLUMNS)}")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise LoadError(f"line 1: column(s) {', '.join(repeated)} given more than once")
    # NOTE: the header goes to COPY too, so PostgreSQL's line numbers are the file's line numbers.
    statement = _copy_statement(header, "(format csv, header true)")
    cursor = connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            copy.write(header_line)
            advance(len(header_line))
            while chunk := handle.read(CHUNK_BYTES):
                copy.write(chunk)
                advance(len(chunk))
    except (psycopg.DataError, psycopg.IntegrityError) as error:
        raise LoadError(_copy_error_message(error, line_of_row=None)) from None
    return cursor.rowcount


def _load_json_lines(connection: psycopg.Connection, handle: IO[bytes], advance) -> int:
    file_lines = array("L")  # the file line of each COPY row, to report errors by file line
    try:
        with connection.cursor().copy(_copy_statement(EVENT_COLUMNS, "")) as copy:
            for line_no, event in _json_events(handle, advance):
                file_lines.append(line_no)
                copy.write_row(event)
    except (psycopg.DataError, psycopg.IntegrityError) as error:
        raise LoadError(_copy_error_message(error, line_of_row=file_lines)) from None
    return len(file_lines)


def _json_events(handle: IO[bytes], advance) -> Iterator[tuple[int, tuple]]:
    for line_no, raw_line in enumerate(handle, start=1):
        advance(len(raw_line))
        if not raw_line.strip():
            continue
        try:
            # NOTE: Decimal, so that `value` reaches its numeric column exactly (no floats), and an
            # integer of any length parses (Python's int stops at 4300 digits).
            event = json.loads(raw_line, parse_float=Decimal, parse_int=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise LoadError(f"line {line_no}: not valid JSON ({error})") from None
        if not isinstance(event, dict):
            raise LoadError(f"line {line_no}: expected a JSON object, got {type(event).__name__}")
        unknown = [key for key in event if key not in EVENT_COLUMNS]
        if unknown:
            raise LoadError(f"line {line_no}: unknown field(s) {', '.join(unknown)}")
        yield line_no, _event_row(line_no, event)


def _event_row(line_no: int, event: dict) -> tuple:
    row = []
    for column in EVENT_COLUMNS:
        value = event.get(column)
        if column == "ingested_at" and value is None:
            value = "now"  # NOTE: the column default; COPY with an explicit column list skips defaults
        elif column == "properties" and value is not None:
            value = json.dumps(value, default=float)  # NOTE: its JSON type is the table's check
        elif isinstance(value, (dict, list, bool)):
            raise LoadError(f"line {line_no}: {column} must be a {'number' if column == 'value' else 'string'}")
        row.append(None if value is None else str(value))
    return tuple(row)


def _copy_statement(columns, options: str) -> sql.Composed:
    return sql.SQL("copy raw.usage_events ({columns}) from stdin {options}").format(
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)), options=sql.SQL(options)
    )


def _copy_error_message(error: psycopg.Error, *, line_of_row: array | None) -> str:
    """PostgreSQL's COPY error as 'line N: reason (column c)' in terms of the file's lines."""
    context = error.diag.context or ""
    reason = error.diag.message_primary or str(error)
    if error.diag.constraint_name in USAGE_EVENTS.checks:
        column, _ = USAGE_EVENTS.checks[error.diag.constraint_name]
        reason = f"{column.name} must be a JSON {column.json_type}"
    # NOTE: the context is 'COPY usage_events, line 4, column value: "777"': the number after
    # "line", never one from the row's data.
    found = re.search(r"\bline (\d+)", context)
    line = int(found.group(1)) if found else None
    if line is not None and line_of_row is not None:
        line = line_of_row[line - 1]
    column = context.split("column ", 1)[1].split(":", 1)[0] if "column " in context else None
    where = f"line {line}" if line is not None else "file"
    return f"{where}: {reason}" + (f" (column {column})" if column else "")


class _progress:
    """A rich progress bar over the file's bytes (silent when not wanted)."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled

    def __enter__(self):
        if not self.enabled:
            return lambda _: None
        self.bar = Progress(
            TextColumn(f"loading {self.path.name}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), transient=True,
        )
        self.bar.start()
        task = self.bar.add_task("load", total=self.path.stat().st_size)
        return lambda size: self.bar.advance(task, size)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
