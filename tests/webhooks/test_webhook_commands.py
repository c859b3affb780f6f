"""`billing webhooks list | replay | endpoints | rotate`, run in-process as the CLI would run them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from billing.cli import app
from billing.webhooks import dispatch_webhooks
from conftest import query, reset_warehouse
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook
from typer.testing import CliRunner
from webhook_test_support import (  # noqa: F401 (allow_local_receivers: an autouse fixture)
    CHARGE_FAILED,
    INVOICE_GENERATED,
    add_endpoint,
    allow_local_receivers,
    attempts,
    closed_port_url,
    delivery,
    enqueue,
    new_secret,
)


def _billing_webhooks(*args: str, env: dict | None = None):
    result = CliRunner().invoke(app, ["webhooks", *args], env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture
def one_of_each(warehouse, httpserver: HTTPServer):
    """ep_ok delivered the invoice event; ep_down holds it dead-lettered and the charge pending."""
    reset_warehouse()
    secrets = {"ep_ok": new_secret(), "ep_down": new_secret()}
    add_endpoint("ep_ok", httpserver.url_for("/ok"), secrets["ep_ok"], event_types=[INVOICE_GENERATED])
    add_endpoint("ep_down", closed_port_url(), secrets["ep_down"], event_types=[INVOICE_GENERATED, CHARGE_FAILED])
    httpserver.expect_request("/ok", method="POST").respond_with_data("", status=204)
    invoice = enqueue(INVOICE_GENERATED, "inv_1")
    now = datetime.now(UTC)
    for _ in range(8):
        dispatch_webhooks(now=now)
        now = delivery(invoice, "ep_down")[2]
    charge = enqueue(CHARGE_FAILED, "ikey_1")
    dispatch_webhooks(now=now)
    return {"invoice": invoice, "charge": charge, "secrets": secrets}


def test_list_shows_each_delivery_with_status_and_attempts(one_of_each):
    result = _billing_webhooks("list")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    [invoice_to_down] = [line for line in lines if one_of_each["invoice"] in line and "ep_down" in line]
    assert "dead_lettered" in invoice_to_down and " 8 " in invoice_to_down
    [charge_to_down] = [line for line in lines if one_of_each["charge"] in line and "ep_down" in line]
    assert "pending" in charge_to_down and " 1 " in charge_to_down and "ConnectError" in charge_to_down
    [invoice_to_ok] = [line for line in lines if one_of_each["invoice"] in line and "ep_ok" in line]
    assert "delivered" in invoice_to_ok and " 1 " in invoice_to_ok
    assert not [line for line in lines if one_of_each["charge"] in line and "ep_ok" in line]
    assert lines.index(charge_to_down) < lines.index(invoice_to_down), "latest event first"


def test_list_filters_by_status_and_limits(one_of_each):
    dead = _billing_webhooks("list", "--status", "dead_lettered")
    latest = _billing_webhooks("list", "--limit", "1")
    bad = _billing_webhooks("list", "--status", "lost")

    assert dead.exit_code == 0
    assert one_of_each["invoice"] in dead.stdout and one_of_each["charge"] not in dead.stdout
    assert "ep_ok" not in dead.stdout
    assert one_of_each["charge"] in latest.stdout and one_of_each["invoice"] not in latest.stdout
    assert bad.exit_code == 2 and "lost" in bad.stderr


def test_list_shows_events_not_yet_sent(warehouse):
    reset_warehouse()
    event_id = enqueue(INVOICE_GENERATED, "inv_1")

    result = _billing_webhooks("list")

    assert event_id in result.stdout and "awaiting fan-out" in result.stdout


def test_replay_sends_the_event_again_with_the_same_id_keeping_its_history(one_of_each, httpserver: HTTPServer):
    invoice = one_of_each["invoice"]
    sent_before = len(httpserver.log)

    result = _billing_webhooks("replay", invoice)

    assert result.exit_code == 0
    assert f"event {invoice} queued again for: ep_down, ep_ok" in result.stderr
    assert delivery(invoice, "ep_ok")[:2] == ("pending", 1)
    assert len(attempts(invoice, "ep_ok")) == 1 and len(attempts(invoice, "ep_down")) == 8
    summary = dispatch_webhooks()
    assert summary.delivered == 1 and summary.failed == 1
    [(request, _)] = httpserver.log[sent_before:]
    assert request.headers["webhook-id"] == invoice
    Webhook(one_of_each["secrets"]["ep_ok"]).verify(request.get_data(), dict(request.headers))
    assert [(no, status) for no, _, status, _, _ in attempts(invoice, "ep_ok")] == [(1, 204), (2, 204)]
    assert delivery(invoice, "ep_down")[:2] == ("pending", 9), "a replay restarts the retry schedule"


def test_replay_to_one_endpoint_and_replay_errors(one_of_each):
    only_ok = _billing_webhooks("replay", one_of_each["invoice"], "--endpoint", "ep_ok")
    unknown = _billing_webhooks("replay", "msg_nope")
    not_sent_there = _billing_webhooks("replay", one_of_each["charge"], "--endpoint", "ep_ok")

    assert only_ok.exit_code == 0 and "queued again for: ep_ok " in only_ok.stderr
    assert delivery(one_of_each["invoice"], "ep_down")[0] == "dead_lettered"
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == "error: no webhook event 'msg_nope'"
    assert not_sent_there.exit_code == 1
    assert "was not sent to endpoint 'ep_ok' (it was sent to: ep_down)" in not_sent_there.stderr


def test_endpoints_shows_urls_state_and_counts_but_no_secret(one_of_each):
    query(
        "insert into raw.webhook_endpoints (endpoint_id, url, secret, enabled)"
        " values ('ep_basic', 'https://user:hunter2@hooks.example.com/in', %s, false) returning 1",
        new_secret(),
    )
    rotated = _billing_webhooks("rotate", "ep_ok")

    result = _billing_webhooks("endpoints")

    assert result.exit_code == 0
    rows = {cells[0]: cells[1:] for cells in _table_rows(result.stdout)}
    rotation_ends = (datetime.now(UTC) + timedelta(hours=24)).strftime("%Y-%m-%d")
    assert rows["ep_ok"][1:7] == ["yes", INVOICE_GENERATED, "0", "1", "0", rows["ep_ok"][6]]
    assert rows["ep_ok"][7].startswith(rotation_ends)
    assert rows["ep_down"][1:6] == ["yes", f"{INVOICE_GENERATED}, {CHARGE_FAILED}", "1", "0", "1"]
    assert rows["ep_basic"][:6] == ["https://user:…@hooks.example.com/in", "no", "all", "0", "0", "0"]
    assert "hunter2" not in result.stdout
    stored = [
        secret for row in query("select secret, previous_secret from raw.webhook_endpoints") for secret in row
    ]
    for secret in filter(None, stored):
        assert secret.removeprefix("whsec_") not in result.output
    assert rotated.stdout.strip() in stored


def test_rotate_prints_the_new_secret_once_on_stdout(warehouse):
    reset_warehouse()
    old = new_secret()
    add_endpoint("ep_1", "https://hooks.example.com/", old)

    result = _billing_webhooks("rotate", "ep_1", "--overlap", "2h")

    assert result.exit_code == 0
    [printed] = result.stdout.split()
    assert query("select secret, previous_secret from raw.webhook_endpoints") == [(printed, old)]
    assert old not in result.output
    assert result.output.count(printed) == 1
    assert "the old secret also signs deliveries until" in result.stderr


def test_rotate_errors_are_clear(warehouse):
    reset_warehouse()

    unknown = _billing_webhooks("rotate", "ep_nope")
    bad_overlap = _billing_webhooks("rotate", "ep_nope", "--overlap", "soon")

    assert (unknown.exit_code, unknown.stdout) == (1, "")
    assert unknown.stderr.strip() == "error: no webhook endpoint 'ep_nope'"
    assert bad_overlap.exit_code == 2
    assert "--overlap: 'soon' is not a duration" in bad_overlap.stderr


def test_an_unreachable_warehouse_is_a_clear_error(warehouse):
    result = _billing_webhooks("endpoints", env={"BILLING_WAREHOUSE_URL": "postgresql://postgres@127.0.0.1:9/billing"})

    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach the warehouse")


def _table_rows(output: str) -> list[list[str]]:
    """The body rows of a rich table (the header's borders are ┃, not │), one list of cells per row."""
    lines = [line for line in output.splitlines() if line.startswith("│")]
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines]
