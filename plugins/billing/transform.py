"""Run the dbt project in-process (dbt's programmatic runner), against the warehouse.

One `dbt build` per pipeline slice keeps dbt's 3–5 s parse to once per task; the target and log
folders live under BILLING_HOME so partial parsing is reused across runs.

The event and usage models are incremental (docs/incremental.md): a build processes only what
changed since the last one. Before a build that touches them, `build` checks that their state
still matches raw (raw.usage_events is append-only; an UPDATE, DELETE or TRUNCATE of it, a month's
partition detached or dropped by hand, a recreated table, or a missing checkpoint breaks that) and
rebuilds them from raw if not. `rebuild` rebuilds everything from raw on demand. No rebuild runs
while months are detached (billing.raw_events): the models alone hold their events.

Code outside dbt that reads a model names it with `ref`, which looks it up in dbt's manifest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import sql

from billing import raw_events
from billing.analysts import MARTS_SCHEMA
from billing.schema import BILLING_SCHEMA_SQL
from billing.settings import CONTRACTS_DIR, DBT_PROJECT_DIR, PROJECT_ROOT, billing_home
from billing.warehouse import connect, connection_parts

# Slices name the project's folders by fqn (`fqn:marts.finance`: models/marts/finance/ and the tests
# of its YAML); the same nodes as `path:` selectors, which cost about 0.3 s of every build.
# The analysts' views (tag `analyst`): a run's builds leave out their data tests, which guard
# analysts' figures and must never stop billing (`billing rebuild` and the test suite run them).
ANALYST_VIEWS = ("fqn:marts.finance", "fqn:marts.recurring_revenue", "fqn:marts.operations")
# The slices the cycle-close DAG builds, each followed by its quality gate.
EVENTS_SLICE = ("resource_type:seed", "fqn:staging", "fqn:intermediate.events", "fqn:intermediate.periods",
                "fqn:marts.events")
RATING_SLICE = ("fqn:intermediate.usage", "fqn:intermediate.rating", "fqn:intermediate.invoicing",
                "fqn:marts.billing", "fqn:marts.usage", *ANALYST_VIEWS, "fqn:semantic")
# What the hourly usage_pipeline and stripe_usage_sync DAGs keep up to date: events through
# per-period usage, the hourly usage synced to Stripe (and the usage history the analyst views read).
USAGE_SLICE = ("resource_type:seed", "fqn:staging", "fqn:intermediate.events", "fqn:intermediate.periods",
               "fqn:marts.events", "fqn:intermediate.usage", "fqn:intermediate.stripe_sync", "fct_meter_usage",
               *ANALYST_VIEWS)
STAGING = "fqn:staging"
STAGING_SCHEMA = "billing_staging"
# What the kept relations (KEPT) are built from: the dbt project, and the tables they read.
KEPT_SOURCES = (*(DBT_PROJECT_DIR / name for name in ("dbt_project.yml", "models", "macros", "seeds")),
                CONTRACTS_DIR, BILLING_SCHEMA_SQL)
# What customers see mid-period: the current periods' usage rated so far, its projection, and
# what each customer may still use (SPEC §15).
CURRENT_USAGE_SLICE = ("resource_type:seed", "int_usage_lines__current", "int_usage_lines__projected",
                       "customer_usage_current_period", "customer_entitlements")

# The incremental chain, from the dedupe ledger to the checkpoint that commits it: what a repair
# rebuilds from raw. The staging views and seeds it reads are not rebuilt with it (KEPT).
INCREMENTAL_CHAIN = "+int_usage_pipeline__checkpoint,fqn:intermediate"
INCREMENTAL_FOLDERS = ("intermediate.events", "intermediate.usage")

# The layout of the incremental models' state, kept in the checkpoint. Bump it when a change to
# those models cannot continue from what an earlier version left: the next build rebuilds from raw.
USAGE_STATE_FORMAT = 4

INTERMEDIATE_SCHEMA = "billing_intermediate"
# The dedupe ledger: one row per raw row it has processed, by raw_row_id.
LEDGER = f"{INTERMEDIATE_SCHEMA}.int_usage_events__ranked"
# NOTE: one dbt invocation at a time on this warehouse: two concurrent runs of an incremental model
# would both insert the same new rows.
DBT_LOCK = "billing dbt"
# What dbt parses into its manifest: a change to any of them may add, rename or remove a model.
PROJECT_FILES = ("dbt_project.yml", "models", "macros", "seeds", "tests")
# The commands that run on this process's last parse of the project (_parsed_project).
REUSES_THE_PARSE = ("build", "run", "test")
# That parse, and what it was made from.
_parses: dict[str, Any] = {}


class TransformFailed(RuntimeError):
    """dbt reported errors or failing tests; the message names each failed node."""


class UnknownModel(LookupError):
    """A name that is no model of the dbt project."""


@dataclass(frozen=True)
class Kept:
    """Relations that a build creates again only when one is missing or they were built from another
    project (KEPT_SOURCES, dbt's version), and otherwise leaves as they are; their data tests run
    every time.

    Kept: the seeds, and the views that read no relation a build replaces, directly or through
    other views, and no value of the run (macros/run_var.sql: a view's SQL holds the values of the
    build that created it). dbt replaces a relation by dropping it with `cascade`, which drops the
    views that read it. Every build replaces its tables, and a rebuild from raw its incremental
    models; the raw and billing tables stay. The comment of `schema` names the project they were
    built from (_kept_fingerprint).
    """

    selectors: tuple[str, ...]  # of a slice: `fqn:<folder>` or `resource_type:seed`
    schema: str


# The macro through which a model reads the run's values (as_of, grace, ...).
RUN_VAR_MACRO = "macro.billing.run_var"
# In the order a build checks them: the analysts' views read the staging views and the seeds, so
# they are created again whenever those are (replacing either drops them).
KEPT = (Kept(("resource_type:seed", STAGING), STAGING_SCHEMA), Kept(ANALYST_VIEWS, MARTS_SCHEMA))


@dataclass(frozen=True)
class UsageUpdate:
    """What one `update_usage` did."""

    nodes_built: int
    ledger_rows_processed: int  # raw rows new to the dedupe ledger, and earlier rows of their references
    rebuilt_from_raw: bool  # the incremental state was stale, so the models were rebuilt from raw


def build(select: tuple[str, ...], *, as_of: str, grace: str, data_tests: bool = True) -> int:
    """`dbt build --select …` for a closing window (ISO `as_of`, interval `grace`); returns nodes built.

    Unit tests are left out: they prove the SQL, not the data, and run in the test suite. With
    `data_tests=False` the data tests are left out too (each one reads its whole model).
    """
    return _build(select, as_of=as_of, grace=grace, data_tests=data_tests)[0]


def update_usage(*, as_of: str, grace: str) -> UsageUpdate:
    """The hourly usage pipeline: process the events ingested since the last run, up to per-period usage.

    The data tests are left out: each reads its whole model, so their cost would grow with the
    history; the cycle close runs them before anything is invoiced.
    """
    nodes, rebuilt = _build(USAGE_SLICE, as_of=as_of, grace=grace, data_tests=False)
    with connect() as connection:
        [(processed,)] = connection.execute(
            f"select count(distinct raw_row_id) from {INTERMEDIATE_SCHEMA}.int_usage_events__changed"
        ).fetchall()
    return UsageUpdate(nodes_built=nodes, ledger_rows_processed=processed, rebuilt_from_raw=rebuilt)


def _build(select: tuple[str, ...], *, as_of: str, grace: str, data_tests: bool) -> tuple[int, bool]:
    excluded = ("unit_test",) if data_tests else ("unit_test", "test")
    with _dbt_lock():
        rewrites = _raw_rewrites()
        arguments = list(select)
        full_refresh = _touches_incremental_models(select) and _incremental_state_is_stale(rewrites)
        if full_refresh:
            arguments.append(INCREMENTAL_CHAIN)
        recreated = []
        fingerprint = _kept_fingerprint() if any(set(kept.selectors) <= set(select) for kept in KEPT) else ""
        for group in KEPT:
            if not set(group.selectors) <= set(select):
                continue
            kept, others = _kept(group, full_refresh=full_refresh)
            if recreated or not _kept_are_current(group, kept, fingerprint):
                recreated.append(group)
                continue
            for selector in group.selectors:
                arguments[arguments.index(selector)] = f"{selector},resource_type:test"
            arguments += sorted(others)
        nodes = _invoke(
            "build", "--select", *arguments,
            *(["--full-refresh"] if full_refresh else []),
            *[option for resource in excluded for option in ("--exclude-resource-type", resource)],
            "--exclude", "resource_type:test,tag:analyst",
            run=_run_values(as_of=as_of, grace=grace, raw_rewrites=rewrites),
        )
        with connect() as connection:
            for group in recreated:
                connection.execute(sql.SQL("comment on schema {} is {}").format(
                    sql.Identifier(group.schema), sql.Literal(fingerprint)))
    return nodes, full_refresh


def _kept(group: Kept, *, full_refresh: bool) -> tuple[set[str], set[str]]:
    """The names of `group`'s kept relations, and of the other models it selects, which a build
    creates (under `full_refresh`, the views over incremental models are among them)."""
    manifest = _parse()
    nodes, macros = manifest.nodes, manifest.macros
    kept_selectors = [selector for kept in KEPT for selector in kept.selectors]

    @functools.cache
    def reads_run_values(macro_id: str) -> bool:
        return macro_id == RUN_VAR_MACRO or macro_id in macros and any(
            reads_run_values(called) for called in macros[macro_id].depends_on.macros)

    @functools.cache
    def stays(unique_id: str) -> bool:
        """Whether the build leaves the relation, and all it reads, as it is."""
        node = nodes.get(unique_id)  # NOTE: sources are not among the nodes
        if node is None or node.resource_type == "seed":
            return True
        materialized = node.config.materialized
        if materialized == "incremental":
            return not full_refresh
        if materialized == "table" or not any(_selects(selector, node) for selector in kept_selectors):
            return False
        return not any(reads_run_values(macro) for macro in node.depends_on.macros) and all(
            stays(parent) for parent in node.depends_on.nodes)

    members = [node for node in nodes.values()
               if node.resource_type in ("model", "seed") and node.config.materialized != "ephemeral"
               and any(_selects(selector, node) for selector in group.selectors)]
    kept = {node.name for node in members if node.resource_type == "seed"
            or node.config.materialized == "view" and stays(node.unique_id)}
    return kept, {node.name for node in members} - kept


def _selects(selector: str, node: Any) -> bool:
    """Whether a selector of KEPT (`fqn:<folder>`, `resource_type:seed`) selects `node`."""
    if selector == "resource_type:seed":
        return node.resource_type == "seed"
    folder = selector.removeprefix("fqn:").split(".")
    return node.fqn[1:1 + len(folder)] == folder


def _kept_are_current(group: Kept, kept: set[str], fingerprint: str) -> bool:
    """Whether every relation of `kept` is in `group`'s schema, built from the project `fingerprint` names."""
    with connect() as connection:
        built_from, relations = connection.execute(
            "select obj_description(to_regnamespace(%s), 'pg_namespace'),"
            " array(select relname::text from pg_class where relnamespace = to_regnamespace(%s))",
            (group.schema, group.schema),
        ).fetchone()
    return built_from == fingerprint and kept <= set(relations)


def _kept_fingerprint() -> str:
    """A digest of KEPT_SOURCES' contents and dbt's version: the same on every machine."""
    from dbt.version import __version__ as dbt_version

    digest = hashlib.sha256(dbt_version.encode())
    for root in KEPT_SOURCES:
        for path in sorted([root, *root.rglob("*")] if root.is_dir() else [root]):
            if path.is_file():
                digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
                digest.update(path.read_bytes())
    return f"kept relations of project {digest.hexdigest()}"


def rebuild(*, as_of: str, grace: str) -> int:
    """`dbt build --full-refresh` of the whole project: every model from raw, as if for the first time.

    Gives the same usage and drafts as the incremental path (tests/usage_pipeline); needed after
    anything that breaks raw's append-only contract in a way `build` cannot see (docs/incremental.md).
    """
    with _dbt_lock():
        return _invoke(
            "build", "--full-refresh", "--exclude-resource-type", "unit_test",
            run=_run_values(as_of=as_of, grace=grace, raw_rewrites=_raw_rewrites()),
        )


def rebuild_usage(*, as_of: str, grace: str) -> int:
    """The usage models alone rebuilt from raw, without their data tests: the incremental chain
    (dedupe, validate, attribute, aggregate per period) that `build` repairs with (bench/)."""
    with _dbt_lock():
        return _invoke(
            "run", "--full-refresh", "--select", INCREMENTAL_CHAIN,
            run=_run_values(as_of=as_of, grace=grace, raw_rewrites=_raw_rewrites()),
        )


def run_unit_tests() -> int:
    """Every `unit_tests:` block of the models' YAML (they need the models' parents built once)."""
    with _dbt_lock():
        return _invoke("test", "--select", "test_type:unit")


def generate_docs() -> Path:
    """`dbt docs generate`: the docs site and the warehouse's catalog, written to dbt's target folder."""
    with _dbt_lock():
        result = _run_dbt("docs generate")
    if not result.success:
        raise TransformFailed("dbt docs generate failed: see the dbt log under BILLING_HOME/dbt/logs")
    return _target_path()


def serve_docs(port: int) -> None:
    """`dbt docs serve` on 127.0.0.1:PORT, the last generated docs, until interrupted."""
    _run_dbt("docs serve", "--host", "127.0.0.1", "--port", str(port), "--no-browser")


def ref(model: str) -> str:
    """The relation (`schema.name`) dbt builds `model` into, as dbt's `ref()` gives it to a model.

    Raises UnknownModel when the project has no such model: a renamed or removed model leaves its
    old relation in the warehouse, and code naming it by hand would read stale rows without an error.
    """
    node = _manifest()["nodes"].get(f"model.billing.{model}")
    if node is None:
        raise UnknownModel(f"{model!r} is not a model of the dbt project in {DBT_PROJECT_DIR}")
    return f"{node['schema']}.{node['alias']}"


def semantic_manifest_path() -> Path:
    """dbt's semantic manifest (the semantic models and metrics MetricFlow reads), current with the project."""
    _manifest()
    return _target_path() / "semantic_manifest.json"


def load_project() -> None:
    """Parse the project now: the commands this process, or a process forked from it, runs next
    reuse the parse while the project's files are unchanged (billing.celery_worker).

    It writes no manifest.json, which another process may be reading (`ref`)."""
    _parse()


def _manifest() -> dict[str, Any]:
    """dbt's manifest of the project as it is on disk: the last invocation's, or a fresh parse."""
    path = _target_path() / "manifest.json"
    if not path.exists() or path.stat().st_mtime < _project_changed_at():
        with _dbt_lock():
            result = _run_dbt("parse")
        if not result.success:
            raise TransformFailed("dbt parse failed: see the dbt log under BILLING_HOME/dbt/logs")
    return _read_manifest(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=1)
def _read_manifest(path: Path, modified_ns: int) -> dict[str, Any]:
    return json.loads(path.read_text())


def _project_changed_at() -> float:
    """When a file of the dbt project was last written, added or removed (a folder's mtime moves)."""
    roots = [DBT_PROJECT_DIR / name for name in PROJECT_FILES]
    return max(path.stat().st_mtime for root in roots for path in (root, *root.rglob("*")))


def _run_values(*, as_of: str, grace: str, raw_rewrites: int | None) -> dict[str, str]:
    """The run's values for dbt's run_var() macro, as environment variables (not --vars, whose every
    change makes dbt re-parse the whole project)."""
    values = {"as_of": as_of, "grace": grace, "raw_rewrites": raw_rewrites, "usage_state_format": USAGE_STATE_FORMAT}
    return {f"BILLING_RUN_{name.upper()}": str(value) for name, value in values.items() if value is not None}


def _touches_incremental_models(select: tuple[str, ...]) -> bool:
    """Whether a selection may include an incremental model (any selector but seeds or a folder outside them)."""
    for selector in select:
        if selector == "resource_type:seed":
            continue
        if not selector.startswith("fqn:"):
            return True
        folder = selector.removeprefix("fqn:")
        if any(f"{incremental}.".startswith(f"{folder}.") or f"{folder}.".startswith(f"{incremental}.")
               for incremental in INCREMENTAL_FOLDERS):
            return True
    return False


def usage_state_is_current() -> bool:
    """Whether the incremental models describe raw as it is (what the next build would not repair)."""
    with _dbt_lock():
        return not _incremental_state_is_stale(_raw_rewrites())


def _incremental_state_is_stale(rewrites: int | None) -> bool:
    """Whether the incremental models no longer describe raw, so they must be rebuilt from it.

    Stale: no checkpoint yet (first build, or an interrupted upgrade), or one an earlier layout of
    the models wrote; raw.usage_events updated, deleted from or truncated, or a month of it detached
    or dropped by hand, since the checkpoint (its rewrite counter moved); or the latest row of the
    dedupe ledger is not in raw (raw recreated and loaded again).
    """
    with connect() as connection:
        checkpoint, ledger = connection.execute(
            "select to_regclass(%s), to_regclass(%s)",
            (f"{INTERMEDIATE_SCHEMA}.int_usage_pipeline__checkpoint", LEDGER),
        ).fetchone()
        if checkpoint is None or ledger is None:
            return True
        has_format = connection.execute(
            "select exists (select 1 from pg_attribute where attrelid = %s::regclass"
            " and attname = 'usage_state_format' and not attisdropped)", (checkpoint,)
        ).fetchone()[0]
        if not has_format:
            return True
        committed = connection.execute(
            f"select raw_rewrites, usage_state_format from {checkpoint} where catalog_scope = 'watermark'"
        ).fetchall()
        if committed != [(rewrites, USAGE_STATE_FORMAT)]:
            return True
        latest = connection.execute(
            f"select raw_row_id, reference, ingested_at from {ledger}"
            " order by ingested_at desc, raw_row_id desc limit 1"
        ).fetchone()
        if latest is None:
            return False
        # NOTE: the staging view (blank references as null); ingested_at picks the partition.
        return connection.execute(
            f"select not exists (select 1 from {STAGING_SCHEMA}.stg_app__usage_events"
            " where raw_row_id = %s and reference is not distinct from %s and ingested_at = %s)",
            latest,
        ).fetchone()[0]


def _raw_rewrites() -> int | None:
    """How many statements ever updated, deleted from or truncated raw.usage_events, and months of it
    ever detached or dropped by hand (billing.raw_events; None: unknown)."""
    with connect() as connection:
        if connection.execute("select to_regclass('raw.usage_events_partitions')").fetchone()[0] is None:
            return None
        raw_events.count_lost_months(connection)
        return connection.execute(
            "select case when is_called then last_value else 0 end from raw.usage_events_rewrites"
        ).fetchone()[0]


@contextmanager
def _dbt_lock() -> Iterator[None]:
    """Hold the warehouse-wide dbt lock (a session advisory lock) while dbt runs."""
    with connect(autocommit=True) as connection:
        connection.execute("select pg_advisory_lock(hashtext(%s))", (DBT_LOCK,))
        try:
            yield
        finally:
            connection.execute("select pg_advisory_unlock(hashtext(%s))", (DBT_LOCK,))


def _invoke(command: str, *arguments: str, run: dict[str, str] | None = None) -> int:
    """Run a dbt command that executes nodes (with the run's values, see _run_values); returns how many it ran.

    Without dbt's JSON artifacts: writing the manifest costs about 0.7 s a run, and `ref` keeps the
    one the last parse wrote (_manifest). Refuses to rebuild from raw (`--full-refresh`) while months
    of raw are detached: the models alone hold their events, and billing would lose them.
    """
    if "--full-refresh" in arguments:
        with connect() as connection:
            detached = raw_events.detached_months(connection)
        if detached:
            raise TransformFailed(
                f"not rebuilding from raw: raw.usage_events lacks the months {', '.join(detached)}, detached with"
                " their events, which the usage models hold and would lose; attach them first"
                f" (billing events attach {detached[0]}; docs/incremental.md#detaching-old-months)"
            )
    result = _run_dbt(command, *arguments, "--no-write-json", run=run)
    failures = [
        f"{node.node.name}: {node.message}"
        for node in result.result
        if str(node.status) in {"error", "fail"}
    ]
    if failures or not result.success:
        raise TransformFailed(f"dbt {command} failed:\n  " + "\n  ".join(failures))
    return len(result.result)


def _run_dbt(command: str, *arguments: str, run: dict[str, str] | None = None) -> Any:
    """dbt's runner result for one command ("build", "docs generate") against the warehouse (its target under
    BILLING_HOME)."""
    from dbt.cli.main import dbtRunner  # NOTE: here, not at the top: importing dbt takes seconds

    # NOTE: before this command's run values are set: a parse clears them, as any command does
    manifest = _parsed_project() if command in REUSES_THE_PARSE else None
    for name in [name for name in os.environ if name.startswith("BILLING_RUN_")]:
        del os.environ[name]  # an earlier command's run values
    os.environ.update({**dbt_environment(), **(run or {})})
    invoke = dbtRunner(manifest=manifest).invoke
    result = _in_a_thread_of_its_own(invoke, [*command.split(), *_dbt_options(), *arguments])
    if result.exception is not None:
        raise TransformFailed(f"dbt could not run: {result.exception}")
    return result


def _in_a_thread_of_its_own(function: Callable[[list[str]], Any], arguments: list[str]) -> Any:
    """`function(arguments)` run in a new thread, so that dbt sees a stack of its own frames only.

    dbt's adapter names the source of each of its behavior flags by walking its caller's stack
    (`inspect.stack()` in dbt_common.behavior_flags), which looks up the module of every frame: under
    an Airflow task that is a deep stack, and in a test worker about 1 s of every cycle close (py-spy).
    dbt's runner returns its errors, whatever they are, rather than raising them.
    """
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(function(arguments)), name="dbt", daemon=True)
    thread.start()
    thread.join()
    return results[0]


def _dbt_options() -> list[str]:
    return [
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(_target_path()),
        "--log-path", str(billing_home() / "dbt" / "logs"),
        # NOTE: no console logger at all, rather than a quiet one: dbt formats every event for each
        # logger whatever its level (about 5% of a build's CPU). Failures reach the caller in the
        # results (_invoke) and the log file.
        "--log-level", "none",
    ]


def _parsed_project() -> Any:
    """A fresh copy of dbt's parse of the project, kept for the commands this process runs next.

    Each command would otherwise parse again, reading dbt's partial-parse file: about 0.4–0.6 s of
    every build. Each command gets a copy because a command changes the nodes it compiles
    (ephemeral models' CTEs stay injected), which the next command must not see. Only the nodes and
    unit tests are copied (0.04 s); the rest, which no command changes, is shared (dbt's
    `Manifest.deepcopy` copies every macro and file too: about 0.2 s).
    It is redone when a project file changes or the warehouse does (the manifest names the database).
    Run values are read only while executing (macros/run_var.sql), so they need no new parse.
    """
    from dbt.contracts.graph.manifest import Manifest, _deepcopy

    parsed = _parse()
    shared = ("sources", "macros", "docs", "exposures", "functions", "metrics", "groups", "selectors", "metadata",
              "disabled", "files", "state_check", "semantic_models", "saved_queries")
    copy = Manifest(
        nodes={unique_id: _deepcopy(node) for unique_id, node in parsed.nodes.items()},
        unit_tests={unique_id: _deepcopy(test) for unique_id, test in parsed.unit_tests.items()},
        **{name: getattr(parsed, name) for name in shared},
    )
    copy.build_flat_graph()
    return copy


def _parse() -> Any:
    """This process's parse of the project (dbt's Manifest), redone when a project file or the
    warehouse changes; for reading, not to run a command on (_parsed_project)."""
    key = (_project_changed_at(), tuple(sorted(dbt_environment().items())))
    if _parses.get("key") != key:
        result = _run_dbt("parse", "--no-write-json")
        if not result.success:
            raise TransformFailed("dbt parse failed: see the dbt log under BILLING_HOME/dbt/logs")
        _parses.update(key=key, manifest=result.result)
    return _parses["manifest"]


def _target_path() -> Path:
    return billing_home() / "dbt" / "target"


def dbt_environment() -> dict[str, str]:
    """The variables dbt_project/profiles.yml reads (the warehouse's connection), and dbt's own settings."""
    parts = connection_parts()
    return {
        "BILLING_DBT_HOST": parts["host"],
        "BILLING_DBT_PORT": parts["port"],
        "BILLING_DBT_USER": parts["user"],
        "BILLING_DBT_PASSWORD": parts["password"],
        "BILLING_DBT_DBNAME": parts["dbname"],
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        # NOTE: dbt's default, debug, writes every statement's SQL: about 10% of a build's CPU
        "DBT_LOG_LEVEL_FILE": os.environ.get("DBT_LOG_LEVEL_FILE", "info"),
    }
