"""The project on a PostgreSQL it did not start (BILLING_WAREHOUSE_URL): Debian's postgresql-15 in a
cluster of its own (tests/external_postgres.py), with the warehouse owned by a plain role.

First `billing init` is refused for each privilege of `billing.schema.needs()` taken away in turn,
on a database of its own: one line, exit 1, nothing created. Then a DBA's set-up (the role
billing_analyst, a login billing_owner that owns database billing: no superuser, no CREATEROLE)
and everything through the CLI as billing_owner: init twice, a catalog, events, a close whose
invoices are checked to the cent. The close's second dbt step updates the incremental models,
which needs temporary tables. Then a load by a role that only inserts, and commands that cannot
reach the warehouse at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from billing.cli import app
from billing.schema import init_warehouse, needs
from conftest import run_cli, run_dag
from psycopg import sql
from spine.catalogs import PRO_PLAN
from spine.events import usage, write_csv
from typer.testing import CliRunner

pytest_plugins = ["external_postgres"]
pytestmark = pytest.mark.slow

OWNER, PASSWORD, DATABASE = "billing_owner", "owner-secret", "billing"
JUNE_CLOSE = "2026-07-01T01:00:00Z"
SCHEMAS = ["raw", "billing", "billing_checks", "billing_intermediate", "billing_marts", "billing_staging"]

# $10 a month and $0.01 a call; one customer all June, one from June 16 (half the month).
CATALOG = PRO_PLAN + """
customers:
  - {customer_id: whole, name: Whole, currency: USD, collection_method: auto_charge, payment_method_id: pm_card_visa}
  - {customer_id: half, name: Half, currency: USD, collection_method: request_payment}
subscriptions:
  - {subscription_id: s_whole, customer_id: whole, plan_id: pro, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_half, customer_id: half, plan_id: pro, started_at: "2026-06-16T00:00:00Z",
     billing_anchor_day: 1}
"""


@dataclass(frozen=True)
class Refusal:
    dba: list[str]  # what a DBA did to the role `{r}` (a login with CREATEROLE, so that it lacks one thing only)
    says: str  # the line init prints ({needs}: billing.schema.needs)
    in_database: list[str] = field(default_factory=list)  # what the DBA did inside its database `{r}`
    left: list[str] = field(default_factory=list)  # the schemas there after init: those the DBA made


REFUSALS = {
    "createrole": Refusal(
        ["alter role {r} nocreaterole", "create database {r} owner {r}"],
        "billing init: role {r} lacks CREATEROLE (role billing_analyst does not exist) (needs: {needs})"),
    "create": Refusal(
        ["create database {r}"],
        "billing init: role {r} lacks CREATE on database {r} (needs: {needs})"),
    "temporary": Refusal(
        ["create database {r} owner {r}", "revoke temporary on database {r} from public, {r}"],
        "billing init: role {r} lacks TEMPORARY on database {r} (needs: {needs})"),
    "ownership": Refusal(
        ["create database {r} owner {r}"],
        "billing init: role {r}: permission denied for schema raw (needs: {needs})",
        in_database=["create schema raw"], left=["raw"]),
    "connect": Refusal(
        ["create database {r}", "revoke connect on database {r} from public"],
        'billing init: connection failed: connection to server at "127.0.0.1", port {port} failed: FATAL:'
        ' permission denied for database "{r}" DETAIL: User does not have CONNECT privilege.'),
}


@pytest.mark.parametrize("privilege", REFUSALS)
def test_init_names_the_one_privilege_missing_and_creates_nothing(external_postgres, privilege):
    role, refusal = f"lacks_{privilege}", REFUSALS[privilege]
    with external_postgres.admin() as admin:
        # NOTE: roles belong to the server: these tests come before the module's DBA creates billing_analyst.
        assert admin.execute("select to_regrole('billing_analyst')").fetchone() == (None,)
        admin.execute(sql.SQL("create role {} login createrole password 'secret'").format(sql.Identifier(role)))
        for statement in refusal.dba:
            admin.execute(statement.format(r=role))
    with external_postgres.admin(role) as admin:
        for statement in refusal.in_database:
            admin.execute(statement)

    refused = run_cli("init", check=False, env={"BILLING_WAREHOUSE_URL": external_postgres.url(role, "secret", role)})

    says = refusal.says.format(r=role, port=external_postgres.port, needs=needs(role))
    assert (refused.returncode, refused.stderr.strip()) == (1, f"error: {says}")
    with external_postgres.admin(role) as admin:
        assert admin.execute(
            "select nspname from pg_namespace where nspname = any(%s)", (SCHEMAS,)
        ).fetchall() == [(name,) for name in refusal.left]
        assert admin.execute(
            "select count(*) from pg_class where relnamespace::regnamespace::text = any(%s)", (SCHEMAS,)
        ).fetchone() == (0,)


@pytest.fixture(scope="module")
def owner_env(external_postgres) -> dict[str, str]:
    """The DBA's set-up; the environment that makes the CLI run as billing_owner."""
    with external_postgres.admin() as admin:
        admin.execute("create role billing_analyst nologin")
    return {"BILLING_WAREHOUSE_URL": external_postgres.create_owner(OWNER, PASSWORD, DATABASE)}


@pytest.fixture(scope="module")
def june_closed(external_postgres, owner_env, tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("external_warehouse")
    catalog = folder / "catalog.yaml"
    catalog.write_text(CATALOG)
    events = write_csv(folder / "june.csv", [
        *usage("whole", "api_call", [1_000, 234], "2026-06-10", "whole"),
        *usage("half", "api_call", [100], "2026-06-20", "half"),
    ])
    for command in (["init"], ["init"], ["catalog", "apply", str(catalog)], ["load", "events", str(events)]):
        run_cli(*command, env=owner_env)
    # NOTE: the close in this process, as `billing close-cycles` runs it (about 15 s less than the CLI).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BILLING_WAREHOUSE_URL", owner_env["BILLING_WAREHOUSE_URL"])
        run_dag("billing_cycle_close", JUNE_CLOSE, as_of=JUNE_CLOSE)


def warehouse_rows(external_postgres, statement: str, *params) -> list[tuple]:
    """Rows read by the DBA (whatever the owner's grants)."""
    with external_postgres.admin(DATABASE) as admin:
        return admin.execute(statement, params).fetchall()


def test_the_owner_is_a_plain_role(external_postgres, owner_env):
    assert warehouse_rows(
        external_postgres, "select rolsuper, rolcreaterole, rolcreatedb, rolbypassrls from pg_roles where rolname = %s",
        OWNER,
    ) == [(False, False, False, False)]


def test_the_close_invoices_to_the_cent(external_postgres, june_closed):
    assert warehouse_rows(
        external_postgres,
        "select subscription_id, kind, quantity, amount_minor, total_minor, status from billing.invoices"
        " join billing.invoice_lines using (invoice_id) order by subscription_id, line_no",
    ) == [
        # from June 16: half the $10 fee, and 100 calls at $0.01; no payment method: left open
        ("s_half", "base_fee", 0.5, 500, 600, "open"),
        ("s_half", "usage", 100, 100, 600, "open"),
        # all June: $10, and 1,234 calls at $0.01; charged to the card
        ("s_whole", "base_fee", 1, 1_000, 2_234, "paid"),
        ("s_whole", "usage", 1_234, 1_234, 2_234, "paid"),
    ]


def test_everything_init_and_dbt_made_belongs_to_the_owner(external_postgres, june_closed):
    assert warehouse_rows(
        external_postgres,
        "select nspname, pg_get_userbyid(nspowner) from pg_namespace where nspname = any(%s) order by 1", SCHEMAS,
    ) == [(name, OWNER) for name in sorted(SCHEMAS)]
    assert warehouse_rows(
        external_postgres,
        "select pg_get_userbyid(relowner), count(*) > 50 from pg_class"
        " where relnamespace::regnamespace::text = any(%s) group by 1",
        SCHEMAS,
    ) == [(OWNER, True)]


def test_analysts_read_the_marts_only(external_postgres, june_closed):
    assert warehouse_rows(
        external_postgres,
        "select has_table_privilege('billing_analyst', 'billing_marts.fct_invoices', 'select'),"
        " has_table_privilege('billing_analyst', 'billing.invoices', 'select')",
    ) == [(True, False)]


def test_analyst_logins_without_createrole_are_refused_in_one_line(owner_env, june_closed):
    refused = run_cli("analyst", "add", "alice", check=False, env=owner_env)
    assert (refused.returncode, refused.stderr.strip()) == (1, (
        "error: role billing_owner cannot create or change logins in billing_analyst (permission denied to"
        " create role): it needs CREATEROLE and, from PostgreSQL 16, ADMIN OPTION on billing_analyst; or an"
        " administrator runs: create role alice login password '...' in role billing_analyst"
    ))



def test_every_command_says_an_unreachable_warehouse_in_one_line(tmp_path):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    events = write_csv(tmp_path / "events.csv", usage("whole", "api_call", [1], "2026-06-10", "whole"))
    commands = [
        ["catalog", "apply", str(catalog)], ["load", "events", str(events)], ["events", "detach", "2026-01"],
        ["invoices", "list"], ["invoices", "void", "INV-000001", "--reason", "test"], ["usage", "whole"],
        ["backfill", "--from", "2026-06-01", "--to", "2026-07-01"], ["quality", "results"], ["webhooks", "endpoints"],
    ]
    for command in commands:
        result = CliRunner().invoke(app, command, env={"BILLING_WAREHOUSE_URL": "postgresql://x@127.0.0.1:1/none"})

        assert (result.exit_code, result.stderr) == (1, (
            'error: cannot reach the warehouse: connection failed: connection to server at "127.0.0.1", port 1'
            " failed: Connection refused Is the server running on that host and accepting TCP/IP connections?\n"
        )), command


def test_a_load_by_a_role_that_does_not_own_raw_lands_and_waits_for_the_owners_init(
    external_postgres, owner_env, tmp_path, monkeypatch
):
    """A role granted INSERT on raw.usage_events cannot create partitions (only the owner can): its
    load in a month whose partition the owner's last `billing init` did not make (emulated: the DBA
    drops that empty partition) lands in the default partition and says so; the owner's next init
    gives the rows partitions of their months."""
    monkeypatch.setenv("BILLING_WAREHOUSE_URL", external_postgres.create_owner("loads_owner", PASSWORD, "loads"))
    init_warehouse()
    with external_postgres.admin("loads") as admin:
        [(month,)] = admin.execute("select date_trunc('month', now() at time zone 'UTC')::date").fetchall()
        admin.execute(f"drop table raw.usage_events_{month:%Y_%m}")
        admin.execute("create role loads_loader login password 'loader-secret'")
        admin.execute("grant usage on schema raw to loads_loader")
        admin.execute("grant insert on raw.usage_events to loads_loader")
        now = admin.execute("select now()").fetchone()[0].isoformat()
    events = tmp_path / "events.csv"
    events.write_text(
        "reference,customer_id,event_name,value,occurred_at,ingested_at\n"
        f"today,whole,api_call,1,{now},{now}\n"
        "last-year,whole,api_call,1,2025-01-15T00:00:00Z,2025-01-15T00:00:10Z\n"
    )

    loaded = run_cli("load", "events", str(events),
                     env={"BILLING_WAREHOUSE_URL": external_postgres.url("loads_loader", "loader-secret", "loads")})

    assert loaded.stdout == f"loaded 2 events from {events}\n"  # one line, however long the path
    assert loaded.stderr.strip() == (
        f"note: raw.usage_events has no partition for {month:%Y-%m} and only its owner can create one: this"
        " month's events wait in raw.usage_events_default (billed the same) until the owner runs `billing init`"
    )

    def partitions() -> list[tuple]:
        with external_postgres.admin("loads") as admin:
            return admin.execute(
                "select tableoid::regclass::text, reference from raw.usage_events order by reference").fetchall()

    assert partitions() == [("raw.usage_events_default", "last-year"), ("raw.usage_events_default", "today")]
    init_warehouse()  # the owner's
    assert partitions() == [("raw.usage_events_2025_01", "last-year"), (f"raw.usage_events_{month:%Y_%m}", "today")]
