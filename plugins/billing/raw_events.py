"""raw.usage_events' storage: one partition per month of ingestion, and the count of its rewrites.

The contract (data_contracts/usage_events.yml, `partition_by`) partitions the table by range of
`ingested_at`, one partition per calendar month in UTC: `raw.usage_events_2026_07` holds the rows
ingested in July 2026 (the contract says why ingested_at). What this module keeps true:

- Every write lands. `raw.usage_events_default` takes a row whose month has no partition (an
  INSERT in a new month, a file with ingested_at of its own). A load creates the current month's
  partition before its COPY, and after it commits gives what it left in the default partition
  partitions of their months (`settle`); `billing init` does both, and makes next month's ahead.
  Only the table's owner can create partitions (PostgreSQL's rule): a load by another role (one
  granted INSERT on the table) creates none, and its rows in months without one wait in the default
  partition, billed the same, until the owner's next `billing init`.
- A row keeps its identity: the pipeline keys raw rows by `raw_row_id` (numbered by the table), so
  moving rows between partitions, or detaching and attaching a month, changes nothing it computed.
- A rewrite is counted: an UPDATE, DELETE or TRUNCATE of the table or of any partition bumps
  `raw.usage_events_rewrites` (statement triggers: PostgreSQL fires those of the table a statement
  names, not its parent's), and the next build rebuilds the event models from raw
  (docs/incremental.md). So is a month's partition detached or dropped by hand, which no trigger
  sees: `raw.usage_events_partitions` lists the months given partitions, and `count_lost_months`
  (before each build) counts a listed month no longer attached as a rewrite. Moving rows out of
  the default partition is no rewrite: it detaches that partition (which becomes the partition of
  the month it holds most of) and writes its other rows again, keeping their raw_row_id.
- Old months leave whole through `detach_month`, once ended and processed: the list marks them
  detached, the models keep what they computed from them, and `billing.transform` refuses to
  rebuild from raw until they are attached again (`attach_month`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

import psycopg

from billing.contracts import contracts
from billing.warehouse import connect

USAGE_EVENTS = contracts()["usage_events"]
TABLE = f"raw.{USAGE_EVENTS.table}"
KEY = USAGE_EVENTS.partition_by.column
DEFAULT_PARTITION = f"{USAGE_EVENTS.table}_default"
MONTH_PARTITION = re.compile(rf"{USAGE_EVENTS.table}_(\d{{4}})_(\d{{2}})")
COLUMNS = ", ".join(column.name for column in USAGE_EVENTS.columns)
# The UTC month (a date, its first day) a row belongs in.
MONTH_OF_ROW = f"date_trunc('month', {KEY} at time zone 'UTC')::date"
# Months that get partitions: those a Python date can name (later, earlier and infinite
# timestamps stay in the default partition).
PARTITIONED_RANGE = f"{KEY} >= '0001-01-01 00:00+00' and {KEY} < '9999-01-01 00:00+00'"
# NOTE: serialises partition changes (loads, init, detach, attach): two loads at a month's start
# would both create its partition.
LOCK = "raw.usage_events partitions"

BOOKKEEPING_SQL = """
create sequence if not exists raw.usage_events_rewrites;

create table if not exists raw.usage_events_partitions (
    month date primary key,          -- the partition raw.usage_events_YYYY_MM of this month
    detached_at timestamptz,         -- by `billing events detach`; null while attached
    detached_rows bigint             -- its rows then, all held by the usage models
);

create or replace function raw.count_usage_events_rewrite() returns trigger
language plpgsql as $$
begin
    perform nextval('raw.usage_events_rewrites');
    return null;
end
$$;
"""
WATCH_SQL = (
    "create or replace trigger usage_events_rewritten after update or delete or truncate on raw.{relation}"
    " for each statement execute function raw.count_usage_events_rewrite()"
)


class PartitionError(ValueError):
    """A detach or attach was refused; nothing changed."""


def partition_name(month: date) -> str:
    return f"{USAGE_EVENTS.table}_{month.year:04d}_{month.month:02d}"


def create_table(connection: psycopg.Connection) -> None:
    """`billing init`: the partitioned table, its default partition, this month's and next month's,
    the rewrite counter; an unpartitioned table of an earlier version becomes partitioned, its rows
    moved in their order (ctid, what ordered them then) and numbered in it."""
    unpartitioned = connection.execute(
        "select exists (select 1 from pg_class where oid = to_regclass(%s) and relkind = 'r')", (TABLE,)
    ).fetchone()[0]
    if unpartitioned:
        connection.execute(f"alter table {TABLE} rename to {USAGE_EVENTS.table}_unpartitioned")
    # NOTE: without its checks when rows move in: a check added later to the old table was not valid
    # for the rows it held then; `add_missing_columns_sql` adds them, not valid, as it did there.
    connection.execute(USAGE_EVENTS.create_table_sql(checks=not unpartitioned))
    connection.execute(f"create table if not exists raw.{DEFAULT_PARTITION} partition of {TABLE} default")
    connection.execute(BOOKKEEPING_SQL)
    if unpartitioned:
        _move_rows_in(connection, f"{TABLE}_unpartitioned")
    [(this_month, next_month)] = connection.execute(
        "select date_trunc('month', now() at time zone 'UTC')::date,"
        " (date_trunc('month', now() at time zone 'UTC') + interval '1 month')::date"
    ).fetchall()
    add_months(connection, [this_month, next_month])
    settle(connection)
    for relation in [USAGE_EVENTS.table, *_partitions(connection)]:
        connection.execute(WATCH_SQL.format(relation=relation))
    _list(connection, [
        date(int(found.group(1)), int(found.group(2)), 1)
        for found in map(MONTH_PARTITION.fullmatch, _partitions(connection)) if found
    ])


def prepare_load() -> date | None:
    """Before a load: the current month's partition, so that its rows (ingested now) land in place;
    the month, if the load's role may not create it (their rows then wait in the default partition)."""
    with connect() as connection:
        [(month,)] = connection.execute("select date_trunc('month', now() at time zone 'UTC')::date").fetchall()
        return next(iter(add_months(connection, [month])), None)


def settle(connection: psycopg.Connection) -> None:
    """Give the rows in the default partition partitions of their months (not to a detached month's);
    only the owner can (a load by another role leaves them there)."""
    if not owns_table(connection):
        return
    months = connection.execute(
        f"select distinct {MONTH_OF_ROW} from raw.{DEFAULT_PARTITION} where {PARTITIONED_RANGE}"
    ).fetchall()
    add_months(connection, [month for (month,) in months])


def owns_table(connection: psycopg.Connection) -> bool:
    """Whether the connection's role may create partitions of the table: its owner, or a member of it."""
    return connection.execute(
        "select pg_has_role(relowner, 'USAGE') from pg_class where oid = %s::regclass", (TABLE,)
    ).fetchone()[0]


def add_months(connection: psycopg.Connection, months: Iterable[date]) -> list[date]:
    """Create the partitions of `months` that have no table (an attached or a detached one); returns
    those left without one because the role does not own the table (see `owns_table`).

    The default partition refuses a new partition of a month it holds rows of: it is then replaced,
    and becomes the partition of the month it holds most rows of (a file's own ingested_at: most
    of a load), giving its other rows to their partitions.
    """
    months = sorted(set(months))
    if not _missing(connection, months):
        return []
    if not owns_table(connection):
        return _missing(connection, months)
    connection.execute("select pg_advisory_xact_lock(hashtext(%s))", (LOCK,))
    missing = _missing(connection, months)
    held = dict(connection.execute(
        f"select {MONTH_OF_ROW}, count(*) from raw.{DEFAULT_PARTITION} where {MONTH_OF_ROW} = any(%s) group by 1",
        (missing,),
    ).fetchall())
    kept = max(held, key=held.get) if held else None
    old_default = _replace_default(connection) if held else None
    for month in missing:
        if month != kept:
            start, end = _bounds(month)
            connection.execute(f"create table raw.{partition_name(month)} partition of {TABLE}"
                               f" for values from ('{start}') to ('{end}')")
            connection.execute(WATCH_SQL.format(relation=partition_name(month)))
    if kept:
        start, end = _bounds(kept)
        others = f"not ({KEY} >= '{start}' and {KEY} < '{end}')"
        _write_again(connection, old_default, where=others)
        connection.execute(f"delete from raw.{old_default} where {others}")
        _rename(connection, old_default, partition_name(kept))
        _attach(connection, kept)
    _list(connection, missing)
    return []


def count_lost_months(connection: psycopg.Connection) -> None:
    """Count each listed month whose partition is gone (detached or dropped by hand) as a rewrite of
    raw, and forget it: its rows left raw as if deleted."""
    lost = connection.execute(
        "delete from raw.usage_events_partitions where detached_at is null and not (%s::text[] @> array["
        f"'{USAGE_EVENTS.table}_' || to_char(month, 'YYYY_MM')]) returning month",
        (_partitions(connection),),
    ).fetchall()
    if lost:
        connection.execute("select nextval('raw.usage_events_rewrites')")


def detached_months(connection: psycopg.Connection) -> list[str]:
    """The months `detach_month` took out of raw (YYYY-MM), whose rows only the usage models hold."""
    if connection.execute("select to_regclass('raw.usage_events_partitions')").fetchone()[0] is None:
        return []  # a warehouse `billing init` has not upgraded yet
    return [month for (month,) in connection.execute(
        "select to_char(month, 'YYYY-MM') from raw.usage_events_partitions where detached_at is not null order by 1"
    ).fetchall()]


def detach_month(month: date) -> int:
    """Detach a month's partition (it stays as the table `raw.usage_events_YYYY_MM`); returns its rows.

    Refused unless the month has ended and the usage models are current, hold every row of it and
    have processed a later month's: billing goes on from them exactly as before
    (docs/incremental.md#detaching-old-months).
    """
    from billing import transform

    name = partition_name(month)
    with connect() as connection:
        connection.execute("select pg_advisory_xact_lock(hashtext(%s))", (LOCK,))
        if name not in _partitions(connection):
            raise PartitionError(f"raw.{name} is not a partition of {TABLE}")
        end = _bounds(month)[1]
        if connection.execute("select %s::timestamptz > now()", (end,)).fetchone()[0]:
            raise PartitionError(f"{month:%Y-%m} has not ended")
        # NOTE: no row may arrive in it between the count below and the detach
        connection.execute(f"lock table raw.{name} in share mode")
        if not transform.usage_state_is_current():
            raise PartitionError("the usage models are not up to date with raw: run the usage pipeline first")
        [(rows, unprocessed)] = connection.execute(
            f"select count(*), count(*) filter (where not exists ("
            f"select 1 from {transform.LEDGER} as ledger where ledger.raw_row_id = events.raw_row_id))"
            f" from raw.{name} as events"
        ).fetchall()
        if unprocessed:
            raise PartitionError(f"{unprocessed} events of {month:%Y-%m} are not in the usage models yet:"
                                 " run the usage pipeline first")
        # NOTE: each build looks for the ledger's latest row in raw (billing.transform): it must stay
        if connection.execute(f"select max(ingested_at) < %s from {transform.LEDGER}", (end,)).fetchone()[0]:
            raise PartitionError(f"{month:%Y-%m} holds the latest event the usage models processed:"
                                 " detach it once events of a later month are processed")
        connection.execute(f"alter table {TABLE} detach partition raw.{name}")
        # NOTE: what happens to the archive (dump, truncate, drop) is no rewrite of raw
        connection.execute(f"drop trigger usage_events_rewritten on raw.{name}")
        connection.execute(
            "insert into raw.usage_events_partitions values (%s, now(), %s) on conflict (month)"
            " do update set detached_at = excluded.detached_at, detached_rows = excluded.detached_rows",
            (month, rows),
        )
    return rows


def attach_month(month: date) -> int:
    """Attach a detached month's table again; returns its rows."""
    name = partition_name(month)
    start, end = _bounds(month)
    with connect() as connection:
        connection.execute("select pg_advisory_xact_lock(hashtext(%s))", (LOCK,))
        if name in _partitions(connection):
            raise PartitionError(f"raw.{name} is attached already")
        if connection.execute("select to_regclass(%s)", (f"raw.{name}",)).fetchone()[0] is None:
            raise PartitionError(f"there is no table raw.{name} to attach")
        strays = connection.execute(
            f"select exists (select 1 from raw.{DEFAULT_PARTITION} where {KEY} >= %s and {KEY} < %s)", (start, end)
        ).fetchone()[0]
        old_default = _replace_default(connection) if strays else None
        try:
            _attach(connection, month)
        except psycopg.errors.DatabaseError as error:
            raise PartitionError(f"raw.{name} cannot be attached: {error.diag.message_primary}") from None
        if old_default:  # rows written in the month while it was away: into it
            _write_again(connection, old_default)
            connection.execute(f"drop table raw.{old_default}")
        _list(connection, [month])
        connection.execute(
            "update raw.usage_events_partitions set detached_at = null, detached_rows = null where month = %s", (month,)
        )
        return connection.execute(f"select count(*) from raw.{name}").fetchone()[0]


def _replace_default(connection: psycopg.Connection) -> str:
    """Detach the default partition (no longer a part of raw: moving its rows is no rewrite) and put an
    empty one in its place; returns the old one's new name."""
    old_default = f"{DEFAULT_PARTITION}_replaced"
    connection.execute(f"alter table {TABLE} detach partition raw.{DEFAULT_PARTITION}")
    connection.execute(f"drop trigger usage_events_rewritten on raw.{DEFAULT_PARTITION}")
    _rename(connection, DEFAULT_PARTITION, old_default)
    connection.execute(f"create table raw.{DEFAULT_PARTITION} partition of {TABLE} default")
    connection.execute(WATCH_SQL.format(relation=DEFAULT_PARTITION))
    return old_default


def _attach(connection: psycopg.Connection, month: date) -> None:
    start, end = _bounds(month)
    connection.execute(f"alter table {TABLE} attach partition raw.{partition_name(month)}"
                       f" for values from ('{start}') to ('{end}')")
    connection.execute(WATCH_SQL.format(relation=partition_name(month)))


def _write_again(connection: psycopg.Connection, table: str, *, where: str = "true") -> None:
    """Write rows of a table of raw into raw.usage_events again, to the partitions of their months."""
    connection.execute(f"insert into {TABLE} ({COLUMNS}) overriding system value"
                       f" select {COLUMNS} from raw.{table} where {where}")


def _rename(connection: psycopg.Connection, table: str, name: str) -> None:
    """Rename a table of raw and its indexes (named after it, as PostgreSQL names a partition's)."""
    for (index,) in connection.execute(
        "select relname from pg_index join pg_class on pg_class.oid = indexrelid where indrelid = %s::regclass",
        (f"raw.{table}",),
    ).fetchall():
        connection.execute(f"alter index raw.{index} rename to {index.replace(table, name, 1)}")
    connection.execute(f"alter table raw.{table} rename to {name}")


def _move_rows_in(connection: psycopg.Connection, old_table: str) -> None:
    """Rows of the unpartitioned table into the partitioned one, numbered in their old order, with its grants."""
    months = connection.execute(f"select distinct {MONTH_OF_ROW} from {old_table} where {PARTITIONED_RANGE}").fetchall()
    add_months(connection, [month for (month,) in months])
    columns = ", ".join(
        name for (name,) in connection.execute(
            "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped"
            " order by attnum", (old_table,)
        ).fetchall()
    )
    connection.execute(
        f"insert into {TABLE} ({columns}, raw_row_id) overriding system value"
        f" select {columns}, row_number() over (order by ctid) from {old_table}"
    )
    connection.execute(
        f"select setval(pg_get_serial_sequence('{TABLE}', 'raw_row_id'), max(raw_row_id)) from {TABLE}"
        " having count(*) > 0"
    )
    grants = connection.execute(
        "select case grantee when 0 then 'public' else grantee::regrole::text end, privilege_type"
        " from pg_class, aclexplode(relacl) where oid = %s::regclass and grantee <> relowner", (old_table,)
    ).fetchall()
    for grantee, privilege in grants:
        connection.execute(f"grant {privilege} on {TABLE} to {grantee}")
    # NOTE: cascade: dbt's staging view reads the old table; the next build creates it again.
    connection.execute(f"drop table {old_table} cascade")


def _partitions(connection: psycopg.Connection) -> list[str]:
    return [
        name for (name,) in connection.execute(
            "select relname from pg_inherits join pg_class on pg_class.oid = inhrelid"
            " where inhparent = %s::regclass order by 1", (TABLE,)
        ).fetchall()
    ]


def _list(connection: psycopg.Connection, months: list[date]) -> None:
    connection.cursor().executemany(
        "insert into raw.usage_events_partitions (month) values (%s) on conflict (month) do nothing",
        [(month,) for month in months],
    )


def _missing(connection: psycopg.Connection, months: list[date]) -> list[date]:
    """The months without a table of their partition's name (an attached partition or a detached month)."""
    return [
        month for month in months
        if connection.execute("select to_regclass(%s)", (f"raw.{partition_name(month)}",)).fetchone()[0] is None
    ]


def _bounds(month: date) -> tuple[str, str]:
    """The month's range of timestamps, as literals: [its first day, the next month's) in UTC."""
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return f"{month.isoformat()} 00:00:00+00", f"{following.isoformat()} 00:00:00+00"
