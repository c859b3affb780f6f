"""Run a gate with Great Expectations against the warehouse, keep the results, report failures.

Each run builds one ephemeral GX context with a Postgres datasource; every check becomes a table
asset (its query's rows, see `check_tables`), an expectation suite and a validation definition, all
run by one checkpoint. Results go to `billing.quality_results` (the history), and GX Data Docs HTML of the
gate's latest run to `BILLING_HOME/data_docs/<gate>/index.html`.

Cost: GX runs several queries per check (a row count, each expectation's count, two more per
expectation to list offending rows). They read the check's rows, computed once, not its query;
and the checks are validated with counts only (`COUNTS_FORMAT`), then a failed one again for its
offending rows.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg

from billing.quality.acknowledgements import acknowledged_checks
from billing.quality.gates import Check, Gate, GateResult
from billing.quality.outcomes import Outcome, failed_to_run, outcome_of
from billing.quality.store import first_rows, passed_unchanged, record_pass, save_outcomes
from billing.settings import billing_home
from billing.warehouse import connect, warehouse_url

logger = logging.getLogger(__name__)

DATASOURCE = "warehouse"
DATA_DOCS_SITE = "billing"
WHOLE_TABLE = "whole_result"  # each check's batch: every row of its table
# Where a check's rows are kept while its gate runs (created by `billing init`).
CHECKS_SCHEMA = "billing_checks"
# How many rows of each expectation were checked and broke it, without listing them.
COUNTS_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}


def run_gate(gate: Gate, *, run_label: str, data_version: str | None = None) -> GateResult:
    """Validate every check of `gate`, store one result row per expectation, return the verdict.

    A failed check that an operator acknowledged for the gate's window (`gate.as_of`) is stored
    as failed and acknowledged, and does not fail the gate. Every failure is logged with its
    offending rows (the Airflow task log).

    `data_version` names the state of everything the gate reads (see
    `contract_gate.contract_tables_version`): a gate that passed every check on that version, with
    the same checks, passes again without running them (and stores nothing).
    """
    fingerprint = gate_fingerprint(gate)
    if data_version is not None and (passed_in := passed_unchanged(gate.name, fingerprint, data_version)):
        logger.info("gate %s: what it reads has not changed since run %s passed every check: not checked again",
                    gate.name, passed_in)
        return GateResult(gate=gate.name, success=True, as_of=gate.as_of)
    context = ephemeral_context(data_docs_dir=billing_home() / "data_docs" / gate.name)
    acknowledged = acknowledged_checks(gate.name, gate.as_of)
    outcomes = [
        outcome.acknowledge() if outcome.check in acknowledged else outcome
        for outcome in validate_checks(context, gate, run_label)
    ]
    save_outcomes(run_label, gate.name, outcomes)
    if data_version is not None and all(outcome.success for outcome in outcomes):
        record_pass(gate.name, fingerprint, data_version, run_label)
    build_data_docs(context)
    for outcome in outcomes:
        if outcome.acknowledged:
            note = acknowledged[outcome.check]
            logger.warning(
                "gate %s: acknowledged by %s (%s): %s", gate.name, note.acknowledged_by, note.reason,
                outcome.as_failure().describe(),
            )
        elif outcome.blocks:
            logger.error("gate %s: %s", gate.name, outcome.as_failure().describe())
        elif not outcome.success:
            logger.warning("gate %s: held back, the run goes on: %s", gate.name, outcome.as_failure().describe())
    failures = tuple(outcome.as_failure() for outcome in outcomes if outcome.blocks)
    return GateResult(
        gate=gate.name,
        success=not failures,
        failures=failures,
        acknowledged=tuple(outcome.as_failure() for outcome in outcomes if outcome.acknowledged),
        as_of=gate.as_of,
    )


def gate_fingerprint(gate: Gate) -> str:
    """A digest of what `gate` checks: each check's query, expectations and whether it blocks."""
    checks = [
        [check.name, gate.query_of(check), check.blocking,
         [expectation.configuration.to_json_dict() for expectation in check.expectations]]
        for check in gate.checks
    ]
    return hashlib.sha256(json.dumps(checks, sort_keys=True, default=str).encode()).hexdigest()


def validate_checks(context: Any, gate: Gate, run_label: str) -> list[Outcome]:
    """Every check of `gate` validated with counts in one checkpoint; a failed check again for its
    offending rows."""
    gx = load_great_expectations()
    run_id = gx.RunIdentifier(run_name=run_label, run_time=datetime.datetime.now(datetime.UTC))
    queries = {check.name: gate.query_of(check) for check in gate.checks}
    with check_tables(queries) as tables:
        checked = {name: table for name, table in tables.items() if not isinstance(table, QueryError)}
        datasource = warehouse_datasource(context, checked)
        validations = {
            check.name: validation_definition(context, datasource, gate.name, check)
            for check in gate.checks if check.name in checked
        }
        results = run_checkpoint(context, f"{gate.name}.counts", list(validations.values()), run_id,
                                 COUNTS_FORMAT) if validations else {}
        for check in gate.checks:
            if check.name in results and not results[check.name].success:
                results.update(run_checkpoint(context, f"{gate.name}.{check.name}.offending_rows",
                                              [validations[check.name]], run_id, result_format(check)))
    outcomes = []
    for check in gate.checks:
        table = tables[check.name]
        if isinstance(table, QueryError):
            # NOTE: the query does not run (a missing table, a syntax error): each expectation of
            # the check fails with the database's error, as GX reports an error of its own.
            checked = [failed_to_run(check.name, expectation.configuration, table.message)
                       for expectation in check.expectations]
        else:
            checked = [outcome_of(check.name, result) for result in results[check.name].results]
        outcomes += [with_query_sample(replace(outcome, blocking=check.blocking), queries[check.name])
                     for outcome in checked]
    return outcomes


def warehouse_datasource(context: Any, tables: dict[str, str]) -> Any:
    """The warehouse as a GX datasource with a table asset per check (its name) of its rows' table.

    Added at once: GX saves the whole datasource again for each asset or batch definition added one
    by one (28 checks: 0.17 s of CPU, against 0.02 s).
    """
    from great_expectations.datasource.fluent import PostgresDatasource

    assets = [{"name": check, "type": "table", "table_name": table, "batch_definitions": [{"name": WHOLE_TABLE}]}
              for check, table in tables.items()]
    return context.data_sources.add_postgres(
        PostgresDatasource(name=DATASOURCE, connection_string=sqlalchemy_url(warehouse_url()), assets=assets)
    )


def validation_definition(context: Any, datasource: Any, gate_name: str, check: Check) -> Any:
    """The GX validation of one check: its table's rows against its expectations."""
    gx = load_great_expectations()
    name = f"{gate_name}.{check.name}"
    batch = datasource.get_asset(check.name).get_batch_definition(WHOLE_TABLE)
    # NOTE: GX refuses an expectation already in another suite; copies keep a Check reusable.
    expectations = [expectation.copy(deep=True) for expectation in check.expectations]
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    return context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))


def run_checkpoint(context: Any, name: str, validations: list[Any], run_id: Any,
                   result_format: dict[str, Any]) -> dict[str, Any]:
    """Run `validations` in one checkpoint; each check's ExpectationSuiteValidationResult by check name."""
    gx = load_great_expectations()
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(name=name, validation_definitions=validations, result_format=result_format)
    )
    results = checkpoint.run(run_id=run_id).run_results.values()
    return {result.suite_name.split(".", 1)[1]: result for result in results}


@dataclass(frozen=True)
class QueryError:
    """A check's query that the warehouse refused, with the first line of its error."""

    message: str


@contextmanager
def check_tables(queries: dict[str, str]) -> Iterator[dict[str, str | QueryError]]:
    """Each check's rows computed once into a table of CHECKS_SCHEMA for as long as the gate runs;
    yields each check's table name, or the error its query raised.

    Unlogged: scratch rows need no crash safety. (GX would read a query asset's columns by running
    the query and fetching every row into memory; a table's it reads from the catalog.)
    """
    tables: dict[str, str | QueryError] = {}
    with connect(autocommit=True) as connection:
        try:
            for name, query in queries.items():
                table = f"check_{uuid.uuid4().hex}"
                try:
                    connection.execute(f"create unlogged table {CHECKS_SCHEMA}.{table} as {query}")
                    connection.execute(f"analyze {CHECKS_SCHEMA}.{table}")
                except psycopg.Error as error:
                    tables[name] = QueryError(str(error).splitlines()[0])
                else:
                    tables[name] = table
            yield tables
        finally:
            created = [table for table in tables.values() if isinstance(table, str)]
            if created:
                connection.execute("drop table if exists " + ", ".join(f"{CHECKS_SCHEMA}.{table}" for table in created))


def with_query_sample(outcome: Outcome, query: str) -> Outcome:
    return outcome.with_sample(first_rows(query)) if outcome.wants_query_sample else outcome


def build_data_docs(context: Any) -> None:
    try:
        context.build_data_docs(site_names=[DATA_DOCS_SITE])
    except Exception:
        # NOTE: the verdict is already stored; unreadable HTML must not stop (or pass) billing.
        logger.warning("could not build Great Expectations Data Docs", exc_info=True)


def result_format(check: Check) -> dict[str, Any]:
    # NOTE: SUMMARY, not COMPLETE: COMPLETE fetches every unexpected value, millions on a bad day.
    return {
        "result_format": "SUMMARY",
        "partial_unexpected_count": 5,
        "unexpected_index_column_names": list(check.key_columns),
    }


def load_great_expectations() -> ModuleType:
    """`great_expectations`, imported (about 5 s, once) without its import-time warnings."""
    with warnings.catch_warnings():
        # NOTE: GX imports the deprecated `sre_constants`/`sre_parse`; nothing we can act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        import great_expectations
    return great_expectations


def ephemeral_context(*, data_docs_dir: Path) -> Any:
    """An in-memory GX context without progress bars, building its Data Docs in `data_docs_dir`.

    GX deletes every page of a site that its in-memory stores do not know, so a site shared by
    several gates would only ever show the last one: give each gate its own directory.
    """
    gx = load_great_expectations()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={DATA_DOCS_SITE: data_docs_site(str(data_docs_dir))},
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def data_docs_site(directory: str) -> dict[str, Any]:
    views = "billing.quality.data_docs_views"  # GX's own views, their templates compiled once
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": directory},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder",
                               "view": {"module_name": views, "class_name": "IndexPageView"}},
        # NOTE: the validation pages show each expectation with its result: no page per suite (one
        # per check) and no profiling pages, which only cost rendering.
        "site_section_builders": {
            "expectations": "0",
            "profiling": "0",
            "validations": {"view": {"module_name": views, "class_name": "PageView"}},
        },
    }


def sqlalchemy_url(url: str) -> str:
    """The warehouse URL for SQLAlchemy's psycopg2 driver, its sessions in UTC like ours, finding the
    checks' tables by their bare names."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql+psycopg2")
    options = parsed.query.get("options") or "-c timezone=UTC"
    parsed = parsed.update_query_dict({"options": f"{options} -c search_path={CHECKS_SCHEMA}"})
    return parsed.render_as_string(hide_password=False)
