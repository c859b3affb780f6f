"""`billing invoices list|show|void` and `billing credit-notes create|list|show`: an operator's view
of issued invoices and their corrections (SPEC §13), on one closed June.

June's invoices: INV-000001 gulf (KWD 11.503, open, voided below), then USD 249.00 each (base fee
200.00 + 4,900 calls × 0.01): INV-000002 owes (request_payment: open), INV-000003 paid (visa: paid),
INV-000004 retry (declines once: payment_failed), INV-000005 flaky (charged; the sandbox loses the
first answer to each of its charges and refunds: paid).
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from billing import transform
from billing.catalog import apply_catalog
from billing.credits import CreditBalances
from billing.loading import load_events
from billing.quality import billing_gates as gates
from billing.warehouse import connect
from conftest import query, reset_warehouse, run_cli, run_dag
from spine.events import usage, write_csv

pytestmark = pytest.mark.slow

CATALOG = """
meters:
  - {event_name: api_call, display_name: API calls, aggregation: sum}
plans:
  - plan_id: kwd
    name: Dinar plan
    currency: KWD
    interval: month
    base_fee: 10.0005
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.0015}
  - plan_id: pro
    name: Pro
    currency: USD
    interval: month
    base_fee: 200.00
    charges:
      - {event_name: api_call, pricing_model: per_unit, unit_price: 0.01}
customers:
  - {customer_id: gulf, name: Gulf Co, currency: KWD, collection_method: request_payment}
  - {customer_id: owes, name: Owes Inc, currency: USD, collection_method: request_payment}
  - {customer_id: paid, name: Paid Inc, currency: USD, collection_method: auto_charge, payment_method_id: pm_card_visa}
  - {customer_id: retry, name: Retry Inc, currency: USD, collection_method: auto_charge,
     payment_method_id: pm_card_declineOnce}
  - {customer_id: flaky, name: Flaky Inc, currency: USD, collection_method: auto_charge,
     payment_method_id: pm_card_timeoutOnce}
subscriptions:
  - {subscription_id: s_gulf, customer_id: gulf, plan_id: kwd, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_owes, customer_id: owes, plan_id: pro, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_paid, customer_id: paid, plan_id: pro, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_retry, customer_id: retry, plan_id: pro, started_at: "2026-06-01T00:00:00Z"}
  - {subscription_id: s_timeout, customer_id: flaky, plan_id: pro, started_at: "2026-06-01T00:00:00Z"}
"""


@pytest.fixture(scope="module")
def june_closed(warehouse, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("june")
    reset_warehouse()
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    apply_catalog(tmp_path / "catalog.yaml")
    events = usage("gulf", "api_call", [1_001], "2026-06-03", "g") + [
        event for customer in ("owes", "paid", "retry", "flaky")
        for event in usage(customer, "api_call", [4_900], "2026-06-03", customer)
    ]
    load_events(write_csv(tmp_path / "events.csv", events), show_progress=False)
    run_dag("billing_cycle_close", "2026-07-01T01:00:00Z", as_of="2026-07-01T01:00:00Z")


def test_operator_lists_shows_and_voids_an_invoice(june_closed):
    # KWD has 3 decimals: 10.0005 → 10.001 (half away from zero); 1,001 × 0.0015 = 1.5015 → 1.502
    assert query("select invoice_number, total_minor, status from billing.invoices where customer_id = 'gulf'") == [
        ("INV-000001", 11_503, "open")]
    assert query("select invoice_number, customer_id, total_minor, status from billing.invoices"
                 " where customer_id != 'gulf' order by 1") == [
        ("INV-000002", "owes", 24_900, "open"), ("INV-000003", "paid", 24_900, "paid"),
        ("INV-000004", "retry", 24_900, "payment_failed"), ("INV-000005", "flaky", 24_900, "paid")]

    listed = run_cli("invoices", "list", "--customer", "gulf").stdout
    assert "INV-000001" in listed and "KWD 11.503" in listed
    shown = run_cli("invoices", "show", "INV-000001").stdout
    assert "KWD 10.001" in shown and "KWD 1.502" in shown

    run_cli("invoices", "void", "INV-000001", "--reason", "sent to the wrong entity")
    assert query("select status from billing.invoices where customer_id = 'gulf'") == [("void",)]
    assert query(
        "select data ->> 'invoice_number', data ->> 'reason' from billing.webhook_events"
        " where event_type = 'billing.invoice.voided'"
    ) == [("INV-000001", "sent to the wrong entity")]

    again = run_cli("invoices", "void", "INV-000001", "--reason", "twice", check=False)
    assert again.returncode == 1 and "INV-000001 is void" in again.stderr
    missing = run_cli("invoices", "show", "INV-999999", check=False)
    assert missing.returncode == 1 and "no invoice with id or number 'INV-999999'" in missing.stderr


def credit_note_counts() -> list[tuple]:
    return query("select (select count(*) from billing.credit_notes), (select count(*) from billing.refunds),"
                 " (select count(*) from billing.journal_entries), (select count(*) from billing.webhook_events),"
                 " (select count(*) from billing.credit_grants)")


def balance(invoice_number: str) -> tuple:
    return query(
        "select balances.status, amount_remaining_minor, paid_minor, credited_minor, reduced_minor, refunded_minor"
        " from billing.invoice_balances as balances join billing.invoices using (invoice_id)"
        " where invoice_number = %s", invoice_number,
    )[0]


def journal(entry_kind: str, credit_note_number: str) -> list[tuple]:
    return query(
        "select lines.account, lines.debit_minor, lines.credit_minor from billing.journal_lines as lines"
        " join billing.journal_entries as entries using (entry_id)"
        " where entries.kind = %s and entries.description like %s order by lines.line_no",
        entry_kind, f"{credit_note_number} %",
    )


def test_a_partial_credit_note_refunded_on_a_paid_invoice(june_closed):
    command = ("credit-notes", "create", "INV-000003", "--amount", "49.00", "--reason", "product_unsatisfactory",
               "--method", "refund", "--memo", "June outage")
    created = run_cli(*command).stdout
    assert "CN-000001" in created and "USD 49.00" in created and "refund succeeded" in created
    again = run_cli(*command).stdout  # the same command: the same note, no second refund
    assert "CN-000001" in again and "(already created)" in again

    # 49.00 pro rata over the lines 200.00 and 49.00: 39.357… and 9.642… → 39.35 and 9.64, and the cent
    # left goes to the larger fraction: 39.36
    assert query("select line_no, invoice_line_no, kind, amount_minor from billing.credit_note_lines") == [
        (1, 1, "base_fee", 3_936), (2, 2, "usage", 964)]
    # status, remaining, paid, credited, reduced, refunded
    assert balance("INV-000003") == ("paid", 0, 24_900, 4_900, 0, 4_900)
    assert query("select amount_minor, currency from billing.sandbox_gateway_refunds") == [(4_900, "USD")]
    assert query("select event_type, count(*) from billing.webhook_events where event_type like 'billing.%%.%%'"
                 " and (event_type like 'billing.credit_note%%' or event_type like 'billing.refund%%') group by 1"
                 " order by 1") == [("billing.credit_note.created", 1), ("billing.refund.succeeded", 1)]
    assert journal("credit_note", "CN-000001") == [
        ("revenue:subscription", 3_936, 0), ("revenue:usage", 964, 0), ("accounts_receivable", 0, 4_900)]
    assert query("select lines.account, lines.debit_minor, lines.credit_minor from billing.journal_lines as lines"
                 " join billing.journal_entries using (entry_id) where kind = 'refund' order by line_no") == [
        ("accounts_receivable", 4_900, 0), ("cash", 0, 4_900)]

    listed = run_cli("credit-notes", "list", "--customer", "paid", env={"COLUMNS": "200"}).stdout
    assert "CN-000001" in listed and "INV-000003" in listed and "succeeded" in listed
    shown = run_cli("credit-notes", "show", "CN-000001", env={"COLUMNS": "200"}).stdout
    assert "USD 39.36" in shown and "USD 9.64" in shown and "memo: June outage" in shown


def test_a_refund_whose_answer_is_lost_stays_pending_and_is_resent_once(june_closed):
    from billing.credit_notes import resume_pending_refunds
    from billing.payments.sandbox import SandboxGateway

    command = ("credit-notes", "create", "INV-000005", "--amount", "249", "--reason", "duplicate", "--method", "refund")
    lost = run_cli(*command, check=False)
    assert lost.returncode == 1 and len(lost.stderr.strip().splitlines()) == 1
    assert "no answer yet" in lost.stderr and "stays pending" in lost.stderr
    refunded = ("select refunds.status from billing.refunds join billing.invoices using (invoice_id)"
                " where customer_id = 'flaky'")
    assert query(refunded) == [("pending",)]
    # while pending, the refund is owed to the customer: the books agree, and no run is stopped
    assert query("select receivable_minor from billing.invoice_balances join billing.invoices using (invoice_id)"
                 " where invoice_number = 'INV-000005'") == [(-24_900,)]
    assert gates.check_ledger(as_of="2026-07-02T02:00:00Z").success

    assert resume_pending_refunds(SandboxGateway()) == {"resumed": 1}  # what the daily charge_retries run does
    assert query(refunded) == [("succeeded",)]
    assert "CN-000002" in run_cli(*command).stdout  # a re-run finds it done
    # the sandbox refunded once: the lost answer's refund, whatever was re-sent
    assert query("select count(*), sum(sandbox.amount_minor) from billing.sandbox_gateway_refunds as sandbox"
                 " join billing.refunds using (gateway_refund_id) join billing.invoices using (invoice_id)"
                 " where customer_id = 'flaky'") == [(1, 24_900)]
    assert balance("INV-000005") == ("paid", 0, 24_900, 24_900, 0, 24_900)


def test_every_refusal_is_one_line_and_writes_nothing(june_closed):
    from billing.credit_notes import CreditNoteRefused, create_credit_note
    from billing.invoice_admin import InvoiceNotFound

    before = credit_note_counts()
    void = run_cli("credit-notes", "create", "INV-000001", "--amount", "1", "--reason", "duplicate",
                   "--method", "reduce", check=False)
    assert void.returncode == 1 and len(void.stderr.strip().splitlines()) == 1
    assert "INV-000001 is void" in void.stderr
    cent = run_cli("credit-notes", "create", "INV-000003", "--amount", "10.001", "--reason", "duplicate",
                   "--method", "refund", check=False)
    assert cent.returncode == 1 and "10.001 has more than 2 decimals: USD's smallest unit is 0.01" in cent.stderr

    refusals = [
        (dict(reason="mistake", method="refund", amount="1"), "reason 'mistake' is not one of duplicate"),
        (dict(reason="duplicate", method="refund", amount="1", invoice="INV-000002"),
         "INV-000002 is open: --method refund needs an invoice that is paid"),
        (dict(reason="duplicate", method="reduce", amount="1"),
         "INV-000003 is paid: --method reduce needs an invoice that is open or payment_failed"),
        (dict(reason="duplicate", method="refund", amount="200.01"), "at most USD 200.00"),
        (dict(reason="duplicate", method="refund", amount="0"), "must be positive"),
        (dict(reason="duplicate", method="refund", amount="ten"), "'ten' is not an amount"),
        (dict(reason="duplicate", method="refund", line_amounts={9: "1.00"}), "line 9 is not a base fee"),
        (dict(reason="duplicate", method="refund", line_amounts={2: "39.37"}),
         "line 2: at most USD 39.36 is left to credit on it"),
        (dict(reason="duplicate", method="refund", amount="1", line_amounts={2: "1"}), "give either --amount"),
    ]
    for arguments, message in refusals:
        with pytest.raises(CreditNoteRefused, match=message):
            create_credit_note(arguments.pop("invoice", "INV-000003"), **arguments)
    with pytest.raises(InvoiceNotFound, match="INV-999999"):
        create_credit_note("INV-999999", reason="duplicate", method="refund", amount="1")
    assert credit_note_counts() == before


def test_reduce_lowers_what_remains_to_pay_and_what_is_charged(june_closed, tmp_path):
    from billing.credit_notes import create_credit_note
    from billing.invoice_pdfs import write_invoice_pdf
    from billing.payments.retries import retry_failed_charges
    from billing.payments.sandbox import SandboxGateway

    create_credit_note("INV-000004", amount="49.00", reason="order_change", method="reduce")  # CN-000003
    assert balance("INV-000004") == ("payment_failed", 20_000, 0, 4_900, 4_900, 0)
    retry_failed_charges(SandboxGateway(), now=datetime(2026, 7, 2, 2, tzinfo=UTC))
    assert query("select attempt_no, charge_attempts.status, charge_attempts.amount_minor from billing.charge_attempts"
                 " join billing.invoices using (invoice_id) where invoice_number = 'INV-000004' order by 1") == [
        (1, "failed", 24_900), (2, "succeeded", 20_000)]
    assert balance("INV-000004") == ("paid", 0, 20_000, 4_900, 4_900, 0)
    assert journal("credit_note", "CN-000003") == [
        ("revenue:subscription", 3_936, 0), ("revenue:usage", 964, 0), ("accounts_receivable", 0, 4_900)]

    create_credit_note("INV-000002", amount="49.00", reason="order_change", method="reduce")  # CN-000004
    pdf = pdf_text(write_invoice_pdf("INV-000002", output=tmp_path / "owes.pdf").path)
    assert re.search(r"Credit notes\s+USD -49\.00", pdf) and re.search(r"Amount due\s+USD 200\.00", pdf)
    create_credit_note("INV-000002", amount="200.00", reason="order_change", method="reduce")  # CN-000005
    # reduced to nothing: paid, as Stripe marks an open invoice its credit notes settle
    assert balance("INV-000002") == ("paid", 0, 0, 24_900, 24_900, 0)
    pdf = pdf_text(write_invoice_pdf("INV-000002", output=tmp_path / "owes.pdf").path)
    assert re.search(r"Amount due\s+USD 0\.00", pdf)


def test_a_credit_becomes_a_grant_the_next_invoice_spends(june_closed):
    """Also: numbering, announcements, the analysts' mart and the ledger gate after every method."""
    from billing.credit_notes import CreditNoteRefused, create_credit_note

    arguments = dict(line_amounts={2: "10.00"}, reason="order_change", method="credit", key="ticket-42")
    assert create_credit_note("INV-000003", **arguments).created  # CN-000006
    assert not create_credit_note("INV-000003", **arguments).created
    with pytest.raises(CreditNoteRefused, match="that idempotency key already made CN-000006"):
        create_credit_note("INV-000003", **{**arguments, "method": "refund"})
    assert query("select amount, granted_at from billing.credit_grants where customer_id = 'paid'") == [
        (Decimal("10.00"), datetime(2026, 7, 1, tzinfo=UTC))]
    assert journal("credit_note_grant", "CN-000006") == [("accounts_receivable", 1_000, 0),
                                                         ("customer_credit", 0, 1_000)]

    # July's invoice, as issuing spends credits on it (no second close: the same code, on the grants'
    # view issuing reads): 10.00 of its 200.00
    with connect() as connection:
        july = {"customer_id": "paid", "currency": "USD", "period_end": datetime(2026, 8, 1, tzinfo=UTC),
                "subtotal_minor": 20_000}
        credit_note_id = query("select credit_note_id from billing.credit_notes where credit_note_number = 'CN-000006'")
        spent = CreditBalances.load(connection, ["paid"]).spend_on(july, due=20_000)
        assert spent == [(f"credit_{credit_note_id[0][0]}", 1_000)]
    # the ledger gate passes with INV-000004's charge of its total less the reduce note
    assert gates.check_ledger(as_of="2026-07-02T02:00:00Z").success

    # the analysts' mart (a view: the close built it, it reads the notes live): one row per credited line
    assert query(f"select credit_note_number, invoice_number, kind, event_name, method, refund_outcome, amount_major"
                 f" from {transform.ref('fct_credit_notes')} where customer_id = 'paid' order by 1, 3") == [
        ("CN-000001", "INV-000003", "base_fee", None, "refund", "succeeded", Decimal("39.36")),
        ("CN-000001", "INV-000003", "usage", "api_call", "refund", "succeeded", Decimal("9.64")),
        ("CN-000006", "INV-000003", "usage", "api_call", "credit", None, Decimal("10")),
    ]
    # gapless, in order of creation; each announced once
    assert query("select credit_note_number from billing.credit_notes order by created_at") == [
        (f"CN-{number:06d}",) for number in range(1, 7)]
    assert query("select count(*), count(distinct subject_id) from billing.webhook_events"
                 " where event_type = 'billing.credit_note.created'") == [(6, 6)]


def test_a_refund_stripe_refuses_to_authenticate_is_one_line_and_stays_pending(june_closed):
    from billing.credit_notes import resume_pending_refunds
    from billing.payments.sandbox import SandboxGateway
    from payments.stripe_server import FakeStripe

    with FakeStripe() as stripe_api:
        refused = run_cli(
            "credit-notes", "create", "INV-000003", "--amount", "1", "--reason", "duplicate", "--method", "refund",
            check=False, env={"BILLING_PAYMENT_GATEWAY": "stripe", "BILLING_STRIPE_API_KEY": "sk_test_revoked",
                              "BILLING_STRIPE_API_BASE": stripe_api.url},
        )
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: Stripe refused the API key in BILLING_STRIPE_API_KEY (Invalid API Key provided.): fix it and run"
        " the command again; what was recorded before the call stays pending and is sent then"]
    pending = ("select refunds.status, refunds.amount_minor from billing.refunds join billing.credit_notes"
               " using (credit_note_id) where credit_notes.amount_minor = 100")
    assert query(pending) == [("pending", 100)]
    # with a gateway that answers (here the sandbox, which made the charge), the next run sends it
    assert resume_pending_refunds(SandboxGateway()) == {"resumed": 1}
    assert query(pending) == [("succeeded", 100)]


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", path, "-"], capture_output=True, text=True, check=True).stdout
