"""The outbox: deterministic ids, one event per thing, written in the caller's transaction."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from billing.warehouse import connect
from billing.webhooks import UnknownEventType, enqueue_event, event_id_for
from conftest import query, reset_warehouse
from webhook_test_support import CHARGE_FAILED, INVOICE_GENERATED, enqueue


def test_event_id_is_a_versioned_digest_of_type_and_subject():
    # NOTE: pinned on purpose: if this changes, re-runs would announce everything a second time.
    assert event_id_for(INVOICE_GENERATED, "inv_1") == "msg_5ab791a2f19a6fb0f43a830efb7b9584"
    assert event_id_for(INVOICE_GENERATED, "inv_1") == event_id_for(INVOICE_GENERATED, "inv_1")
    assert event_id_for(CHARGE_FAILED, "inv_1") != event_id_for(INVOICE_GENERATED, "inv_1")
    assert event_id_for(INVOICE_GENERATED, "inv_2") != event_id_for(INVOICE_GENERATED, "inv_1")


def test_enqueueing_twice_keeps_one_event_with_the_first_data(warehouse):
    reset_warehouse()

    first = enqueue(INVOICE_GENERATED, "inv_1", {"invoice_id": "inv_1", "total_minor": 1250})
    second = enqueue(INVOICE_GENERATED, "inv_1", {"invoice_id": "inv_1", "total_minor": 9999})

    assert first == second == event_id_for(INVOICE_GENERATED, "inv_1")
    assert query("select event_id, event_type, subject_id, data, fanned_out_at from billing.webhook_events") == [
        (first, INVOICE_GENERATED, "inv_1", {"invoice_id": "inv_1", "total_minor": 1250}, None)
    ]


def test_event_rolls_back_with_the_callers_transaction(warehouse):
    reset_warehouse()

    with pytest.raises(RuntimeError, match="state change failed"):
        with connect() as connection:
            enqueue_event(connection, event_type=INVOICE_GENERATED, subject_id="inv_1", data={})
            raise RuntimeError("state change failed")

    assert query("select event_id from billing.webhook_events") == []


def test_decimals_and_timestamps_are_stored_as_exact_json(warehouse):
    reset_warehouse()

    enqueue(
        "billing.subscriber_usage",
        "sub_1|2025-01-31",
        {
            "amount_minor": Decimal("1250"),
            "quantity": Decimal("12.5"),
            "as_of": datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC),
            "period_start": date(2025, 1, 1),
        },
    )

    assert query("select data from billing.webhook_events") == [
        (
            {
                "amount_minor": 1250,
                "quantity": "12.5",
                "as_of": "2025-01-31T23:59:59Z",
                "period_start": "2025-01-01",
            },
        )
    ]


def test_unknown_event_type_is_refused(warehouse):
    reset_warehouse()

    with pytest.raises(UnknownEventType) as raised:
        enqueue("billing.invoice.genrated", "inv_1")

    assert raised.value.code == "unknown_event_type"
    assert query("select event_id from billing.webhook_events") == []
