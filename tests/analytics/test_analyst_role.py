"""The read-only analyst role, through real password logins over TCP.

A June is closed on a small catalog (one customer, a webhook endpoint with its secret), so the
marts and the billing tables hold rows. A login made by `billing analyst add` reads every relation
in billing_marts, the same rows the superuser sees, before and after `billing rebuild` replaces
them; it reads no raw, staging, intermediate or billing table and writes nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest
from billing import transform
from billing.settings import DEFAULT_GRACE
from billing.warehouse import connect, warehouse_url
from conftest import query, reset_warehouse, run_cli, run_dag
from psycopg import errors, sql
from spine.catalogs import TWICE

pytestmark = pytest.mark.slow

JUNE_CLOSE = "2026-07-01T01:00:00Z"
ENDPOINT = """
webhook_endpoints:
  - {endpoint_id: hooks, url: "http://127.0.0.1:9/hooks", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
"""
EVENTS = """reference,customer_id,event_name,value,action,occurred_at
e1,twice,api_call,1000,,2026-06-02T10:00:00Z
e2,twice,api_call,2500,,2026-06-20T10:00:00Z
e2,twice,api_call,2500,,2026-06-20T10:00:00Z
e3,twice,no_such_meter,1,,2026-06-21T10:00:00Z
"""
# Every relation the marts' schema holds: tables, views, materialized views, partitioned tables.
MART_RELATIONS = """
select relname from pg_class
where relnamespace = 'billing_marts'::regnamespace and relkind in ('r', 'v', 'm', 'p', 'f')
order by relname
"""
FORBIDDEN_TABLES = """
select format('%%I.%%I', table_schema, table_name) from information_schema.tables
where table_schema in ('raw', 'billing', 'billing_staging', 'billing_intermediate')
order by 1
"""


@pytest.fixture(scope="module")
def june_closed(warehouse, tmp_path_factory):
    reset_warehouse()
    folder = tmp_path_factory.mktemp("analyst")
    (folder / "catalog.yaml").write_text(TWICE)
    (folder / "endpoint.yaml").write_text(ENDPOINT)
    (folder / "events.csv").write_text(EVENTS)
    run_cli("init")
    run_cli("catalog", "apply", str(folder / "catalog.yaml"))
    run_cli("catalog", "apply", str(folder / "endpoint.yaml"))
    run_cli("load", "events", str(folder / "events.csv"))
    # in this process: a `billing close-cycles` would start Airflow, dbt and GX again (about 15 s)
    run_dag("billing_cycle_close", JUNE_CLOSE, as_of=JUNE_CLOSE)


@pytest.fixture(scope="module")
def analyst(june_closed) -> str:
    """The URL `billing analyst add` prints: its last line."""
    return run_cli("analyst", "add", "alice").stdout.strip().splitlines()[-1]


def marts() -> list[str]:
    return [name for (name,) in query(MART_RELATIONS)]


def counts(url: str | None, relations: list[str]) -> dict[str, int]:
    """Each relation's row count, read as the login of `url` (the superuser when None)."""
    if url is None:
        return {name: query(f"select count(*) from billing_marts.{name}")[0][0] for name in relations}
    with psycopg.connect(url) as connection:
        return {
            name: connection.execute(sql.SQL("select count(*) from billing_marts.{}").format(sql.Identifier(name)))
            .fetchone()[0]
            for name in relations
        }


def refused(url: str, statement: str) -> bool:
    """Whether the login of `url` is refused `statement` for want of a privilege."""
    with psycopg.connect(url, autocommit=True) as connection:
        try:
            connection.execute(statement)
        except errors.InsufficientPrivilege:
            return True
    return False


def test_the_analyst_reads_every_mart_as_the_superuser_does(analyst: str) -> None:
    relations = marts()
    assert {"fct_meter_usage", "fct_rejected_usage_events", "fct_usage_event_duplicates",
            "customer_usage_current_period", "customer_entitlements", "fct_over_limit_usage",
            "fct_draft_invoices"} <= set(relations)
    seen = counts(analyst, relations)
    assert seen == counts(None, relations)
    # the June close: 3,500 calls in one period, one rejected event, one duplicate
    assert (seen["fct_meter_usage"], seen["fct_rejected_usage_events"], seen["fct_usage_event_duplicates"]) == (1, 1, 1)
    with psycopg.connect(analyst) as connection:
        assert connection.execute(
            "select event_name, quantity from billing_marts.fct_meter_usage where customer_id = 'twice'"
        ).fetchall() == [("api_call", 3500)]


def test_a_mart_created_later_reads_the_billing_tables_with_its_owners_rights(analyst: str) -> None:
    """A view like the finance marts: created by dbt's user after init, over a billing table."""
    with connect() as connection:
        connection.execute("create view billing_marts.zz_invoice_count as select count(*) from billing.invoices")
    try:
        with psycopg.connect(analyst) as connection:
            assert connection.execute("select * from billing_marts.zz_invoice_count").fetchone() == (1,)
    finally:
        with connect() as connection:
            connection.execute("drop view billing_marts.zz_invoice_count")


def test_the_analyst_reads_nothing_else(analyst: str) -> None:
    forbidden = [name for (name,) in query(FORBIDDEN_TABLES)]
    assert {"raw.webhook_endpoints", "raw.customers", "billing.invoices", "billing.charge_attempts"} <= set(forbidden)
    assert [name for name in forbidden if not refused(analyst, f"select * from {name} limit 1")] == []
    assert query("select count(*) from raw.webhook_endpoints") == [(1,)]


def test_the_analyst_writes_nothing(analyst: str) -> None:
    statements = [
        "insert into billing_marts.fct_meter_usage (customer_id) values ('x')",
        "update billing_marts.fct_meter_usage set quantity = 0",
        "delete from billing_marts.fct_meter_usage",
        "truncate billing_marts.fct_meter_usage",
        "drop table billing_marts.fct_meter_usage",
        "alter table billing_marts.fct_meter_usage add column x int",
        "create table billing_marts.mine (x int)",
        "create view billing_marts.mine as select 1",
        "create table public.mine (x int)",
        "create table raw.mine (x int)",
        "create schema mine",
        "insert into raw.usage_events (reference) values ('x')",
        "update billing.invoices set status = 'void'",
        "grant select on billing.invoices to public",
        "create role mine",
    ]
    assert [statement for statement in statements if not refused(analyst, statement)] == []
    assert query("select count(*) from billing_marts.fct_meter_usage") == [(1,)]


def test_only_the_right_password_logs_in(analyst: str) -> None:
    wrong = analyst.replace("@", "x@", 1)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong).close()


def test_a_server_an_earlier_release_started_asks_for_passwords_once_the_warehouse_is_used(
    warehouse: str, analyst: str,
) -> None:
    """The embedded server keeps running between commands: its old rules let any role in unasked."""
    if os.environ.get("BILLING_WAREHOUSE_URL"):
        pytest.skip("the operator's PostgreSQL has its own pg_hba.conf")
    home = Path(os.environ["BILLING_HOME"])
    pg_hba = (home / "server" if (home / "server").exists() else home) / "postgres" / "pg_hba.conf"
    pg_hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    with psycopg.connect(warehouse) as connection:
        connection.execute("select pg_reload_conf()")
    wrong = analyst.replace("@", "x@", 1)
    assert _eventually(lambda: _logs_in(wrong))

    warehouse_url()
    assert _eventually(lambda: not _logs_in(wrong))
    assert _logs_in(analyst)


def _logs_in(url: str) -> bool:
    try:
        psycopg.connect(url).close()
    except psycopg.OperationalError:
        return False
    return True


def _eventually(condition) -> bool:
    """A reload is asynchronous: the server applies it moments after the call."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_the_grants_survive_a_rebuild_that_replaces_every_mart(analyst: str) -> None:
    before = {name: oid for name, oid in query(
        "select relname, oid from pg_class where relnamespace = 'billing_marts'::regnamespace")}
    # in this process (`billing rebuild` itself: test_mart_docs)
    transform.rebuild(as_of=JUNE_CLOSE, grace=DEFAULT_GRACE)
    after = dict(query("select relname, oid from pg_class where relnamespace = 'billing_marts'::regnamespace"))
    assert [name for name in before if before[name] == after.get(name)] == [], "every mart is a new relation"
    relations = marts()
    assert counts(analyst, relations) == counts(None, relations)


def test_analyst_add_refuses_an_existing_name_unless_rotating(analyst: str) -> None:
    again = run_cli("analyst", "add", "alice", check=False)
    assert again.returncode == 1
    assert "analyst 'alice' exists; `billing analyst add alice --rotate` gives it a new password" in again.stderr
    rotated = run_cli("analyst", "add", "alice", "--rotate").stdout.strip().splitlines()[-1]
    assert rotated != analyst
    assert counts(rotated, ["fct_meter_usage"]) == {"fct_meter_usage": 1}
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(analyst).close()


def test_analyst_add_never_touches_a_role_that_is_not_an_analyst(june_closed) -> None:
    for name in ("postgres", "billing_analyst"):
        refused_add = run_cli("analyst", "add", name, "--rotate", check=False)
        assert refused_add.returncode == 1
        assert f"role '{name}' exists and is not an analyst login" in refused_add.stderr
    bad_name = run_cli("analyst", "add", "Robert'); drop", check=False)
    assert bad_name.returncode == 1 and "is not a valid login name" in bad_name.stderr
