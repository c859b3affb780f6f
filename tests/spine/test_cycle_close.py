"""The billing spine end to end: CLI → Airflow DAG → dbt → gates → invoices → charges → PDFs → webhooks.

One warehouse, two closes (June through `billing close-cycles`; its re-run and July in this process,
as the command runs them, without starting Airflow, dbt and GX again), every worked example of the
spine issue checked to the cent, on the invoices and in their PDFs (read back with poppler's
pdftotext and pdftoppm), and the re-run guarantees: same invoices, one charge attempt per invoice,
same events, same PDFs.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from billing.invoice_admin import void_invoice
from billing.invoice_pdfs import write_invoice_pdf
from billing.settings import invoice_pdf_path
from billing.webhooks.receiver import WebhookReceiver
from conftest import query, reset_warehouse, run_cli, run_dag

from spine.events import july_events, june_events, late_duplicates, write_csv

pytestmark = pytest.mark.slow

CATALOG = Path(__file__).with_name("catalog.yaml")
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
JUNE_CLOSE = "2026-07-01T01:00:00Z"
JULY_CLOSE = "2026-08-01T01:00:00Z"
SELLER = {
    "BILLING_SELLER_NAME": "Meterly GmbH",
    "BILLING_SELLER_ADDRESS": r"Hauptstr. 1\n10115 Berlin",  # a written \n, as in an .env file
    "BILLING_SELLER_EMAIL": "billing@meterly.example",
}


@pytest.fixture(scope="module")
def receiver():
    with WebhookReceiver(SECRET) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def seller():
    """The seller the module's PDFs name, for its CLI calls and its runs in this process."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SELLER.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def june_closed(warehouse, receiver, seller, tmp_path_factory):
    reset_warehouse()
    folder = tmp_path_factory.mktemp("spine")
    endpoint = folder / "endpoint.yaml"
    endpoint.write_text(
        f"webhook_endpoints:\n  - {{endpoint_id: receiver, url: '{receiver.url}', secret: {SECRET}}}\n"
    )
    run_cli("init")
    run_cli("catalog", "apply", str(CATALOG))
    run_cli("catalog", "apply", str(endpoint))
    run_cli("load", "events", str(write_csv(folder / "june.csv", june_events())))
    run_cli("load", "events", str(write_csv(folder / "late.csv", late_duplicates())))
    run_cli("close-cycles", "--as-of", JUNE_CLOSE)
    return folder


def invoice(subscription_id: str, period_start: str) -> dict:
    [row] = query(
        "select invoice_id, invoice_number, currency, subtotal_minor, total_minor, status"
        " from billing.invoices where subscription_id = %s and period_start = %s::timestamptz",
        subscription_id, period_start,
    )
    return dict(zip(["invoice_id", "number", "currency", "subtotal_minor", "total_minor", "status"], row, strict=True))


def lines(invoice_id: str) -> list[tuple]:
    return query(
        "select kind, event_name, quantity, amount_minor from billing.invoice_lines"
        " where invoice_id = %s order by line_no",
        invoice_id,
    )


def test_usage_based_invoice_bills_each_meter_to_the_cent(june_closed):
    usage = invoice("s_usage", "2026-06-01T00:00Z")
    assert lines(usage["invoice_id"]) == [
        ("usage", "api_call", 1_234_567, 123_457),
        ("usage", "file_upload", 42, 420),
    ]
    assert (usage["currency"], usage["total_minor"], usage["status"]) == ("USD", 123_877, "paid")


def test_postpaid_plan_bills_base_fee_and_calls_over_the_included(june_closed):
    heavy = invoice("s_heavy", "2026-06-01T00:00Z")
    assert lines(heavy["invoice_id"]) == [("base_fee", None, 1, 9_900), ("usage", "api_call", 25_000, 15_000)]
    assert (heavy["total_minor"], heavy["status"]) == (24_900, "open")
    light = invoice("s_light", "2026-06-01T00:00Z")
    assert lines(light["invoice_id"]) == [("base_fee", None, 1, 9_900), ("usage", "api_call", 8_000, 0)]
    assert (light["total_minor"], light["status"]) == (9_900, "payment_failed")


def test_partial_first_period_prorates_the_base_fee(june_closed):
    late = invoice("s_late", "2026-06-16T00:00Z")
    assert lines(late["invoice_id"]) == [("base_fee", None, 0.5, 4_950), ("usage", "api_call", 500, 0)]
    # no payment method: the attempt fails without calling the gateway
    assert late["status"] == "payment_failed"
    assert query(
        "select failure_code from billing.charge_attempts where invoice_id = %s", late["invoice_id"]
    ) == [("no_payment_method",)]


def test_duplicates_count_once_and_conflicts_are_listed(june_closed):
    assert query(
        "select reference, is_conflicting, value from billing_marts.fct_usage_event_duplicates order by 1, 3"
    ) == [("d-conflict", True, 9), ("d-thrice", False, 100), ("d-thrice", False, 100)]


def test_yen_amounts_round_half_away_from_zero_to_whole_yen(june_closed):
    assert invoice("s_yen", "2026-06-01T00:00Z")["total_minor"] == 617  # 1,234 × ¥0.5


def test_every_reject_reason_is_quarantined_once(june_closed):
    assert query(
        "select reject_reason, coalesce(reference, '') from billing_marts.fct_rejected_usage_events order by 1, 2"
    ) == [
        ("future_timestamp", "r-future"),
        ("invalid_action", "r-bad-action"),
        ("invalid_action", "r-set-on-count"),
        ("invalid_value", "r-negative"),
        ("missing_customer", "r-no-customer"),
        ("missing_reference", ""),
        ("missing_timestamp", "r-no-timestamp"),
        ("no_active_subscription", "r-before-start"),
        ("unknown_customer", "r-unknown-customer"),
        ("unknown_meter", "r-unknown-meter"),
    ]


def test_invoices_are_numbered_gaplessly_in_period_order(june_closed):
    assert query(
        "select invoice_number, subscription_id from billing.invoices order by invoice_number"
    ) == [
        ("INV-000001", "s_tokyo"),  # Tokyo's June ends first: 2026-06-30T15:00Z
        ("INV-000002", "s_heavy"),
        ("INV-000003", "s_light"),
        ("INV-000004", "s_usage"),
        ("INV-000005", "s_yen"),
        ("INV-000006", "s_late"),  # starts June 16
    ]


def test_webhooks_are_signed_and_announce_each_state_change(june_closed, receiver):
    received = sorted((payload["type"], _invoice_of(payload)) for _, payload in receiver.accepted)
    assert received == sorted([
        *[("billing.invoice.generated", subscription) for subscription in
          ["s_tokyo", "s_heavy", "s_late", "s_light", "s_usage", "s_yen"]],
        ("billing.charge.succeeded", "s_usage"),
        ("billing.charge.failed", "s_light"),
        ("billing.charge.failed", "s_late"),
    ])
    assert receiver.rejected == 0
    assert query(
        "select count(*), count(*) filter (where status = 'delivered') from billing.webhook_deliveries"
    ) == [(9, 9)]


def test_each_invoice_is_stored_as_a_pdf_with_its_amounts_dates_and_parties(june_closed, receiver, tmp_path):
    announced = {payload["data"]["invoice_number"]: Path(payload["data"]["pdf_path"])
                 for _, payload in receiver.accepted if payload["type"] == "billing.invoice.generated"}
    assert sorted(announced) == [f"INV-00000{n}" for n in range(1, 7)]
    assert {path.name for path in announced.values()} == {f"{number}.pdf" for number in announced}

    heavy = pdf_text(announced["INV-000002"])  # request_payment, open: all of it due
    for expected in [
        r"Invoice INV-000002", r"Meterly GmbH\s+Pro Heavy", r"Hauptstr\. 1\s+ap@proheavy\.example",
        r"10115 Berlin\s+Customer pro_heavy", r"billing@meterly\.example",
        r"Invoice date\s+2026-07-01", r"Due date\s+2026-07-01", r"Service period\s+2026-06-01 – 2026-06-30",
        r"Pro Plan base fee\s+1\s+USD 99\.00\s+USD 99\.00", r"API calls\s+25,000\s+USD 0\.01\s+USD 150\.00",
        r"10,000 included", r"15,000 billable × USD 0\.01",
        r"Total\s+USD 249\.00", r"Amount due\s+USD 249\.00", r"Dates in UTC",
    ]:
        assert re.search(expected, heavy), expected
    assert "Paid" not in heavy

    usage = pdf_text(announced["INV-000004"])  # auto_charge, paid by its charge before the PDF was drawn
    for expected in [
        r"API calls\s+1,234,567\s+USD 0\.001\s+USD 1,234\.57", r"File uploads\s+42\s+USD 0\.10\s+USD 4\.20",
        r"Total\s+USD 1,238\.77", r"Paid\s+USD -1,238\.77", r"Amount due\s+USD 0\.00", r"Status\s+paid",
    ]:
        assert re.search(expected, usage), expected
    late = pdf_text(announced["INV-000006"])
    assert re.search(r"Pro Plan base fee \(prorated\)\s+0\.5\s+USD 99\.00\s+USD 49\.50", late)
    assert re.search(r"Service period\s+2026-06-16 – 2026-06-30", late)
    assert re.search(r"Amount due\s+USD 49\.50", late)  # its charge failed: no payment method

    yen = pdf_text(announced["INV-000005"])
    assert re.search(r"API calls\s+1,234\s+JPY 0\.5\s+JPY 617\n", yen)
    assert re.search(r"Amount due\s+JPY 617\n", yen)
    tokyo = pdf_text(announced["INV-000001"])  # its June, 2026-05-31T15:00Z → 2026-06-30T15:00Z, in Tokyo
    assert re.search(r"Service period\s+2026-06-01 – 2026-06-30", tokyo) and "Dates in Asia/Tokyo" in tokyo

    subprocess.run(["pdftoppm", "-png", "-r", "50", "-singlefile", announced["INV-000002"], tmp_path / "heavy"],
                   check=True)
    from PIL import Image

    with Image.open(tmp_path / "heavy.png") as page:
        assert page.size == (414, 585)  # A4 at 50 dpi
        dark = sum(page.convert("L").histogram()[:128])
    assert 1_000 < dark < 414 * 585 // 10  # text and rules, on a mostly white page

    # the same invoice renders to the same bytes, and a re-render writes nothing
    run_cli("invoices", "pdf", "INV-000002", "-o", str(tmp_path / "again.pdf"))
    assert (tmp_path / "again.pdf").read_bytes() == announced["INV-000002"].read_bytes()
    assert write_invoice_pdf("INV-000002").written is False
    unknown = run_cli("invoices", "pdf", "INV-999999", check=False)
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "error: no invoice with id or number 'INV-999999'")


def test_rerunning_the_same_close_changes_nothing(june_closed, receiver):
    before = _snapshot()
    delivered = len(receiver.accepted)
    run_dag("billing_cycle_close", JUNE_CLOSE, as_of=JUNE_CLOSE)
    assert _snapshot() == before
    assert len(receiver.accepted) == delivered


def test_a_later_close_issues_only_the_new_periods(june_closed, receiver):
    run_cli("load", "events", str(write_csv(june_closed / "july.csv", july_events())))
    run_dag("billing_cycle_close", JULY_CLOSE, as_of=JULY_CLOSE)
    new = query("select invoice_number, subscription_id from billing.invoices"
                " where invoice_number > 'INV-000006' order by 1")
    assert new == [
        ("INV-000007", "s_tokyo"),
        ("INV-000008", "s_heavy"),
        ("INV-000009", "s_late"),
        ("INV-000010", "s_light"),
        ("INV-000011", "s_usage"),
        ("INV-000012", "s_yen"),
    ]
    assert invoice("s_yen", "2026-07-01T00:00Z")["total_minor"] == 618  # 1,235 × ¥0.5
    assert invoice("s_heavy", "2026-07-01T00:00Z")["total_minor"] == 9_900  # 8,000 calls, all included
    tokyo_july = invoice("s_tokyo", "2026-06-30T15:00Z")
    assert lines(tokyo_july["invoice_id"]) == [("usage", "api_call", 2, 1)]
    assert query("select count(*) from billing.charge_attempts group by invoice_id having count(*) > 1") == []
    assert re.search(r"Amount due\s+JPY 618\n", pdf_text(write_invoice_pdf("INV-000012").path))


def test_a_void_invoice_renders_with_a_void_mark_and_nothing_due(june_closed, tmp_path):
    void_invoice("INV-000010", reason="duplicate")  # Pro Light's July: its charge was declined
    text = pdf_text(write_invoice_pdf("INV-000010", output=tmp_path / "void.pdf").path)
    assert re.search(r"Invoice INV-000010 \(VOID\)", text) and re.search(r"Status\s+void", text)
    assert re.search(r"Total\s+USD 99\.00", text) and re.search(r"Amount due\s+USD 0\.00", text)


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", path, "-"], capture_output=True, text=True, check=True).stdout


def _invoice_of(payload: dict) -> str:
    data = payload["data"]
    return data.get("invoice", data)["subscription_id"]


def _snapshot() -> dict:
    return {
        "invoices": query("select * from billing.invoices order by invoice_id"),
        "lines": query("select * from billing.invoice_lines order by invoice_id, line_no"),
        "attempts": query("select idempotency_key, invoice_id, status from billing.charge_attempts order by 1"),
        "events": query("select event_id, event_type from billing.webhook_events order by 1"),
        "sandbox_charges": query("select idempotency_key from billing.sandbox_gateway_charges order by 1"),
        "pdfs": {path.name: path.stat().st_mtime_ns for path in invoice_pdf_path("INV-000001").parent.iterdir()},
    }
