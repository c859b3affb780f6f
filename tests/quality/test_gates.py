"""Quality gates against the real warehouse: a clean dataset passes, a bad one stops the run."""

from __future__ import annotations

import datetime
import subprocess
import sys

import pytest
from billing.quality import Check, Gate, GateFailed, enforce, run_gate
from billing.quality.runner import load_great_expectations
from billing.warehouse import connect

AS_OF = datetime.datetime(2025, 2, 1, tzinfo=datetime.UTC)
JANUARY = datetime.datetime(2025, 1, 15, tzinfo=datetime.UTC)
FEBRUARY = datetime.datetime(2025, 2, 15, tzinfo=datetime.UTC)

CLEAN_ORDERS = [
    ("o-1", "c-1", 100, 100, JANUARY),
    ("o-2", "c-2", 250, 250, JANUARY),
    ("o-3", "c-1", 0, 0, JANUARY),
]
BAD_ORDERS = CLEAN_ORDERS + [
    ("o-null", None, 10, 10, JANUARY),
    ("o-off", "c-3", 100, 99, JANUARY),
    ("o-test", "test:acme", 5, 5, JANUARY),
    # After `as_of`: outside the window, so its broken totals must not be reported.
    ("o-later", "c-4", 7, 8, FEBRUARY),
]


def orders_gate(as_of: datetime.datetime) -> Gate:
    gx = load_great_expectations()

    in_window = "select * from scratch.quality_orders where created_at < {as_of}"
    return Gate(
        name="scratch_orders",
        params={"as_of": as_of},
        checks=(
            Check(
                name="orders_are_complete",
                query=in_window,
                key_columns=("order_id",),
                expectations=(
                    gx.expectations.ExpectColumnValuesToNotBeNull(column="customer_id"),
                    gx.expectations.ExpectColumnPairValuesToBeEqual(
                        column_A="total_minor",
                        column_B="lines_total_minor",
                    ),
                    gx.expectations.ExpectColumnValuesToBeBetween(column="total_minor", min_value=0),
                ),
            ),
            Check(
                name="one_row_per_order",
                query=in_window,
                expectations=(
                    gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["order_id", "customer_id"]),
                ),
            ),
            Check(
                # A query selecting offending rows; its colon and % must reach PostgreSQL intact.
                name="no_test_customers",
                query=in_window.replace("select *", "select order_id, customer_id") + " and customer_id like 'test:%'",
                expectations=(gx.expectations.ExpectTableRowCountToEqual(value=0),),
            ),
        ),
    )


def load_orders(rows: list[tuple]) -> None:
    with connect() as connection:
        connection.execute("create schema if not exists scratch")
        connection.execute("drop table if exists scratch.quality_orders")
        connection.execute(
            "create table scratch.quality_orders (order_id text, customer_id text,"
            " total_minor bigint, lines_total_minor bigint, created_at timestamptz)"
        )
        with connection.cursor() as cursor:
            cursor.executemany("insert into scratch.quality_orders values (%s, %s, %s, %s, %s)", rows)


def stored_results(run_label: str) -> list[tuple]:
    with connect() as connection:
        return connection.execute(
            "select gate, check_name, expectation, success, observed from billing.quality_results"
            " where run_label = %s order by check_name, expectation",
            (run_label,),
        ).fetchall()


def test_clean_orders_pass_and_are_recorded(warehouse: str, billing_home) -> None:
    load_orders(CLEAN_ORDERS)

    result = enforce(run_gate(orders_gate(AS_OF), run_label="clean-run"))

    assert (result.gate, result.success, result.failures) == ("scratch_orders", True, ())
    rows = stored_results("clean-run")
    assert [(gate, check, expectation, success) for gate, check, expectation, success, _ in rows] == [
        ("scratch_orders", "no_test_customers", "expect_table_row_count_to_equal(value=0)", True),
        ("scratch_orders", "one_row_per_order",
         "expect_compound_columns_to_be_unique(column_list=[order_id, customer_id])", True),
        ("scratch_orders", "orders_are_complete",
         "expect_column_pair_values_to_be_equal(column_A=total_minor, column_B=lines_total_minor)", True),
        ("scratch_orders", "orders_are_complete",
         "expect_column_values_to_be_between(column=total_minor, min_value=0)", True),
        ("scratch_orders", "orders_are_complete", "expect_column_values_to_not_be_null(column=customer_id)", True),
    ]
    assert rows[0][4] == {"observed_value": 0}
    assert rows[2][4]["element_count"] == 3
    docs = billing_home / "data_docs" / "scratch_orders"
    assert (docs / "index.html").is_file()
    [page] = (docs / "validations" / "scratch_orders" / "orders_are_complete" / "clean-run").glob("*/*.html")
    assert "customer_id" in page.read_text()
    # the templates GX compiled for these pages, which later gate runs reuse (quality/data_docs_views.py)
    assert list((billing_home / "cache" / "data_docs_templates").glob("*.cache"))


def test_bad_orders_fail_naming_checks_and_rows(warehouse: str) -> None:
    load_orders(BAD_ORDERS)

    with pytest.raises(GateFailed) as failed:
        enforce(run_gate(orders_gate(AS_OF), run_label="bad-run"))

    message = str(failed.value)
    assert message.startswith("gate scratch_orders failed: check orders_are_complete: ")
    assert (
        "check orders_are_complete: expect_column_values_to_not_be_null(column=customer_id)"
        " — 1 of 6 rows, e.g. {order_id: 'o-null', customer_id: null}"
    ) in message
    assert (
        "check orders_are_complete: expect_column_pair_values_to_be_equal(column_A=total_minor,"
        " column_B=lines_total_minor)"
        " — 1 of 6 rows, e.g. {order_id: 'o-off', total_minor: 100, lines_total_minor: 99}"
    ) in message
    assert (
        "check no_test_customers: expect_table_row_count_to_equal(value=0)"
        " — observed 1, e.g. {order_id: 'o-test', customer_id: 'test:acme'}"
    ) in message
    assert "o-later" not in message
    assert "one_row_per_order" not in message and "min_value" not in message
    assert len(failed.value.result.failures) == 3

    rows = {
        (check, expectation): (success, observed)
        for _, check, expectation, success, observed in stored_results("bad-run")
    }
    assert len(rows) == 5
    success, observed = rows[("orders_are_complete", "expect_column_values_to_not_be_null(column=customer_id)")]
    assert not success
    assert (observed["unexpected_count"], observed["element_count"]) == (1, 6)
    assert observed["sample_rows"] == [{"order_id": "o-null", "customer_id": None}]
    assert rows[("no_test_customers", "expect_table_row_count_to_equal(value=0)")] == (
        False,
        {"observed_value": 1, "sample_rows": [{"order_id": "o-test", "customer_id": "test:acme"}]},
    )
    assert rows[
        ("one_row_per_order", "expect_compound_columns_to_be_unique(column_list=[order_id, customer_id])")
    ][0] is True


def test_duplicates_are_shown_as_whole_rows(warehouse: str) -> None:
    load_orders(CLEAN_ORDERS + [("o-1", "c-1", 1, 1, JANUARY)])

    result = run_gate(orders_gate(AS_OF), run_label="duplicate-run")

    assert not result.success
    [failure] = result.failures
    assert (failure.check, failure.observed) == ("one_row_per_order", "2 of 4 rows")
    assert failure.sample_rows == ({"order_id": "o-1", "customer_id": "c-1"},) * 2


def test_a_check_that_errors_fails_the_gate(warehouse: str) -> None:
    gx = load_great_expectations()

    load_orders(CLEAN_ORDERS)
    gate = Gate(
        name="typo",
        checks=(
            Check(
                name="missing_column",
                query="select * from scratch.quality_orders",
                expectations=(gx.expectations.ExpectColumnValuesToNotBeNull(column="customer"),),
            ),
        ),
    )

    with pytest.raises(
        GateFailed,
        match=r'check missing_column: .*column=customer\) — raised .*"customer".* does not exist',
    ):
        enforce(run_gate(gate, run_label="typo-run"))


def test_params_are_quoted_literals() -> None:
    check = Check(name="c", query="select * from t where a = {name} and at < {as_of}", expectations=("placeholder",))
    gate = Gate(name="g", checks=(check,), params={"name": "x'; drop table t; --", "as_of": AS_OF})

    assert gate.query_of(check) == (
        "select * from t where a = 'x''; drop table t; --'"
        " and at < '2025-02-01 00:00:00+00:00'::timestamptz"
    )


@pytest.mark.parametrize(
    "params, error",
    [({"as_of": datetime.datetime(2025, 2, 1)}, ValueError), ({"ids": ["a", "b"]}, TypeError)],
)
def test_unsafe_params_are_refused(params: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        Gate(name="g", checks=(Check(name="c", query="select 1", expectations=("placeholder",)),), params=params)


def test_importing_the_package_does_not_import_great_expectations() -> None:
    code = "import sys, billing.quality; assert 'great_expectations' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_each_run_is_stamped_once_and_a_rerun_is_the_latest_verdict(warehouse: str) -> None:
    """billing.quality_results: a run's rows share one checked_at, so a re-run under the same
    label (an Airflow retry) is told apart by it, and its rows are the latest."""
    load_orders(BAD_ORDERS)
    run_gate(orders_gate(AS_OF), run_label="rerun")
    load_orders(CLEAN_ORDERS)
    run_gate(orders_gate(AS_OF), run_label="rerun")

    with connect() as connection:
        runs = connection.execute(
            "select count(*), count(*) filter (where not success) from billing.quality_results"
            " where run_label = 'rerun' group by checked_at order by checked_at"
        ).fetchall()
        latest = connection.execute(
            "select distinct on (check_name, expectation) success from billing.quality_results"
            " where run_label = 'rerun' order by check_name, expectation, checked_at desc"
        ).fetchall()

    # 5 expectations a run; the bad orders fail 3 of them, the clean ones none
    assert runs == [(5, 3), (5, 0)]
    assert latest == [(True,)] * 5


def test_without_key_columns_the_checked_values_are_shown(warehouse: str) -> None:
    gx = load_great_expectations()
    load_orders(BAD_ORDERS)
    gate = Gate(
        name="no_keys",
        checks=(
            Check(
                name="totals_match",
                query="select * from scratch.quality_orders",
                expectations=(
                    gx.expectations.ExpectColumnPairValuesToBeEqual(
                        column_A="total_minor",
                        column_B="lines_total_minor",
                    ),
                ),
            ),
        ),
    )

    [failure] = run_gate(gate, run_label="no-keys-run").failures

    assert failure.observed == "2 of 7 rows"
    assert sorted(row["lines_total_minor"] for row in failure.sample_rows) == [8, 99]


def test_a_broken_query_fails_the_gate(warehouse: str) -> None:
    gx = load_great_expectations()
    gate = Gate(
        name="broken",
        checks=(
            Check(
                name="no_table",
                query="select * from scratch.no_such_table",
                expectations=(gx.expectations.ExpectTableRowCountToEqual(value=0),),
            ),
        ),
    )

    with pytest.raises(
        GateFailed,
        match=r"check no_table: expect_table_row_count_to_equal\(value=0\)"
              r' — raised .*"scratch.no_such_table" does not exist',
    ):
        enforce(run_gate(gate, run_label="broken-run"))


def test_checks_see_the_warehouse_in_utc_and_may_start_with_with(warehouse: str) -> None:
    gx = load_great_expectations()
    gate = Gate(
        name="session",
        checks=(
            Check(
                name="utc_session",
                query="with setting as (select current_setting('TimeZone') as tz) select tz from setting -- a comment",
                expectations=(gx.expectations.ExpectColumnValuesToBeInSet(column="tz", value_set=["UTC"]),),
            ),
        ),
    )

    assert run_gate(gate, run_label="session-run").success
