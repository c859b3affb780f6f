"""Every analyst mart is documented: a description (grain first) and every column it has described.

`billing rebuild` on an empty warehouse builds every model and data test; the marts' columns are
then read from the warehouse (a column the YAML forgets is still found) and compared with dbt's
manifest. A new mart in schema billing_marts is held to the same rule.
"""

from __future__ import annotations

from billing import transform
from billing.warehouse import connect
from conftest import query, reset_warehouse, run_cli

MARTS_SCHEMA = "billing_marts"


def test_hourly_pipeline_on_a_fresh_warehouse_builds_the_analyst_views(warehouse):
    reset_warehouse()
    with connect() as connection:
        for schema in ("billing_staging", "billing_intermediate", MARTS_SCHEMA):
            connection.execute(f"drop schema if exists {schema} cascade")
    transform.update_usage(as_of="2026-06-01T00:00:00Z", grace="1 hour")
    assert query("select count(*) from billing_marts.fct_usage_history") == [(0,)]
    assert query("select count(*) from billing_marts.fct_data_quality_daily") == [(0,)]


def test_rebuild_on_an_empty_warehouse_builds_every_mart_empty(warehouse):
    """`billing rebuild` exits 1 on a failing data test: the marts' reconciliations pass on nothing too."""
    reset_warehouse()
    run_cli("rebuild", "--as-of", "2026-08-01T01:00:00Z")
    built = {name for (name,) in query(
        "select table_name from information_schema.tables where table_schema = %s", MARTS_SCHEMA
    )}
    operations = {"fct_usage_history", "fct_webhook_endpoint_health", "fct_data_quality_daily", "fct_gate_results"}
    assert operations <= set(_marts())
    assert not set(_marts()) - built, "marts missing after billing rebuild"
    # nothing in raw, nothing in a mart but MetricFlow's time spine (its days)
    assert {name for name in built if query(f"select count(*) from {MARTS_SCHEMA}.{name}")[0][0]} == {
        "metricflow_time_spine"}


def test_every_mart_and_every_mart_column_is_described(warehouse):
    marts = _marts()
    undescribed_models = sorted(name for name, node in marts.items() if not node["description"].strip())
    columns = query(
        "select table_name, column_name from information_schema.columns"
        " where table_schema = %s order by table_name, ordinal_position",
        MARTS_SCHEMA,
    )
    undescribed_columns = [
        f"{table}.{column}" for table, column in columns
        if table in marts
        and not marts[table]["columns"].get(column, {}).get("description", "").strip()
    ]
    assert not undescribed_models, f"marts without a description: {', '.join(undescribed_models)}"
    assert not undescribed_columns, f"mart columns without a description: {', '.join(undescribed_columns)}"


def _marts() -> dict[str, dict]:
    """The models dbt builds into billing_marts, by relation name, from its manifest."""
    return {
        node["alias"]: node
        for node in transform._manifest()["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] == MARTS_SCHEMA
    }
