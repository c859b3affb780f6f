"""Credit notes (SPEC §13): the one way to correct an issued invoice's amount, which stays as issued.

A credit note takes an amount off an invoice, whole (`--amount`) or per line (`--line N=X`), and
says what happens to the money: `refund` (a paid invoice: through the gateway), `credit` (a paid
invoice: a credit grant the customer's next invoices spend) or `reduce` (an unpaid invoice: less to
pay; reduced to nothing, it is `paid`, as Stripe marks an open invoice its credit notes settle).
The note, its lines, its ledger entries, its webhook and, for `refund`, the pending refund are
written in one transaction; the refund is sent after it, crash-safe like a charge.

Tax is credited pro rata: of a whole amount A, each exclusive tax line t takes
round(A × tax_t / (taxable + Σ tax)), half away from zero, and the net lines take the rest (so the
rounding remainder lands on the net), spread over them in proportion to what is left of each, the
cents left by the proportions going to the largest fractions (then the earlier line). Net amounts
credited per line bring each tax line's round(net × tax_t / taxable) on top.

A credit note's id is a versioned digest of the invoice, the amounts, the reason and the method (or
of the operator's `--idempotency-key`), so the same command run again finds its note and writes
nothing new; a pending refund of it is re-sent with the same key.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from psycopg.rows import dict_row

from billing import ledger
from billing.bookkeeping import LINE_ACCOUNTS
from billing.idempotency import idempotency_key
from billing.invoice_admin import find_invoice
from billing.invoicing import announce_invoice, invoice_payload
from billing.money import format_minor, minor_units
from billing.payments.gateway import OutcomeUnknown, PaymentGateway, RefundOutcome, RefundRequest
from billing.warehouse import connect
from billing.webhooks.outbox import enqueue_event

CREDIT_NOTE_CREATED = "billing.credit_note.created"
REFUND_SUCCEEDED = "billing.refund.succeeded"
REFUND_FAILED = "billing.refund.failed"
REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")
METHODS = ("refund", "credit", "reduce")
# What each method needs of the invoice: money paid (refund, credit) or money still owed (reduce).
STATUSES_FOR = {"refund": ("paid",), "credit": ("paid",), "reduce": ("open", "payment_failed")}
NET_KINDS = ("base_fee", "usage", "adjustment", "minimum_commitment")

# The invoice's lines with what earlier credit notes took off each.
INVOICE_LINES = """
select lines.line_no, lines.kind, lines.amount_minor, lines.detail, lines.adds_to_total,
    coalesce(sum(credited.amount_minor), 0)::bigint as credited_minor
from billing.invoice_lines as lines
left join billing.credit_note_lines as credited
    on lines.invoice_id = credited.invoice_id and lines.line_no = credited.invoice_line_no
where lines.invoice_id = %s
group by 1, 2, 3, 4, 5
order by 1
"""

# The refunds awaiting the gateway's answer: new, or left by a crash or a lost answer.
PENDING_REFUNDS = "select * from billing.refunds where status = 'pending' order by created_at, refund_id"

RESOLVE_REFUND = """
update billing.refunds
set status = %(status)s, failure_code = %(failure_code)s, gateway_refund_id = %(gateway_refund_id)s,
    resolved_at = now()
where refund_id = %(refund_id)s and status = 'pending'
returning *
"""


class CreditNoteRefused(ValueError):
    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


class CreditNoteNotFound(LookupError):
    code = "credit_note_not_found"


class RefundsUnresolved(RuntimeError):
    """Some refunds had no answer; they stay pending and are re-sent with the same key."""


@dataclass(frozen=True)
class CreditNoteResult:
    credit_note: dict
    lines: list[dict]
    refund: dict | None
    created: bool  # false: the same request had already made it


def create_credit_note(
    invoice_reference: str, *, reason: str, method: str, amount: str | None = None,
    line_amounts: dict[int, str] | None = None, memo: str | None = None, key: str | None = None,
    gateway: PaymentGateway | None = None,
) -> CreditNoteResult:
    """Write the credit note (or find the one this request made), then send its refund, if any.

    A refusal writes nothing. A refund without an answer stays pending and raises RefundsUnresolved
    after the note is written.
    """
    if reason not in REASONS:
        raise CreditNoteRefused("invalid_reason", f"reason '{reason}' is not one of {', '.join(REASONS)}")
    if method not in METHODS:
        raise CreditNoteRefused("invalid_method", f"method '{method}' is not one of {', '.join(METHODS)}")
    if (amount is None) == (not line_amounts):
        raise CreditNoteRefused("invalid_amount", "give either --amount or one or more --line N=X")
    with connect() as connection:
        cursor = connection.cursor(row_factory=dict_row)
        invoice = find_invoice(cursor, invoice_reference, lock=True)
        currency = invoice["currency"]
        whole = to_minor(amount, currency) if amount is not None else None
        per_line = {line_no: to_minor(text, currency) for line_no, text in (line_amounts or {}).items()}
        request = ("amount", whole) if whole is not None else ("lines", sorted(per_line.items()))
        credit_note_id = (idempotency_key("cn", invoice["invoice_id"], "key", key) if key
                          else idempotency_key("cn", invoice["invoice_id"], method, reason, *request))
        existing = cursor.execute(
            "select * from billing.credit_notes where credit_note_id = %s", (credit_note_id,)
        ).fetchone()
        if existing is None:
            _refuse_unless_status_allows(invoice, method)
            if whole is not None:  # the invoice's limit first: it says more than the lines'
                _refuse_unless_amount_allowed(cursor, invoice, method=method, amount_minor=whole)
            lines = cursor.execute(INVOICE_LINES, (invoice["invoice_id"],)).fetchall()
            split = credit_split(lines, currency=currency, whole=whole, per_line=per_line)
            _refuse_unless_amount_allowed(cursor, invoice, method=method, amount_minor=sum(split.values()))
            _write(connection, invoice, credit_note_id, split, lines=lines, method=method, reason=reason, memo=memo)
    if existing is not None:
        _same_request_or_refuse(existing, invoice, method=method, reason=reason)
    result = show_credit_note(credit_note_id)
    if result.refund and result.refund["status"] == "pending":
        _send_refund(gateway, result.refund)
        result = show_credit_note(credit_note_id)
    return CreditNoteResult(result.credit_note, result.lines, result.refund, created=existing is None)


def to_minor(text: str, currency: str) -> int:
    """An amount in major units of `currency` as exact minor units; anything else is refused."""
    exponent = minor_units()[currency]
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        value = None
    if value is None or not value.is_finite():
        raise CreditNoteRefused("invalid_amount", f"'{text}' is not an amount")
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise CreditNoteRefused(
            "fraction_of_minor_unit",
            f"{text} has more than {exponent} decimals: {currency}'s smallest unit is {Decimal(1).scaleb(-exponent)}",
        )
    if minor <= 0:
        raise CreditNoteRefused("invalid_amount", f"{text}: a credit note's amount must be positive")
    return int(minor)


def credit_split(lines: list[dict], *, currency: str, whole: int | None = None,
                 per_line: dict[int, int] | None = None) -> dict[int, int]:
    """invoice line_no → amount_minor the credit note takes off it (SPEC §13: tax pro rata).

    `lines` are the invoice's lines with `credited_minor`, what earlier notes took off each.
    """
    by_no = {line["line_no"]: line for line in lines}
    net = {no: line for no, line in by_no.items() if line["kind"] in NET_KINDS and line["amount_minor"] > 0}
    taxes = {no: line for no, line in by_no.items() if line["kind"] == "tax" and line["adds_to_total"]}
    taxable = sum(line["amount_minor"] for line in by_no.values() if line["kind"] not in ("tax", "credit"))
    tax_total = sum(line["amount_minor"] for line in taxes.values())
    if whole is not None:
        shares = {no: Decimal(whole) * line["amount_minor"] / (taxable + tax_total) for no, line in taxes.items()}
    else:
        for line_no, amount in per_line.items():
            line = net.get(line_no)
            if line is None:
                raise CreditNoteRefused("invalid_line", f"line {line_no} is not a base fee, usage, adjustment or"
                                        " minimum commitment line of a positive amount on this invoice")
            if amount > (left := line["amount_minor"] - line["credited_minor"]):
                raise CreditNoteRefused("amount_too_large", f"line {line_no}: at most {format_minor(left, currency)}"
                                        " is left to credit on it (its amount minus earlier credit notes)")
        shares = {no: Decimal(sum(per_line.values())) * line["amount_minor"] / taxable for no, line in taxes.items()}
    # NOTE: a tax line never gives back more than is left of it (earlier notes' roundings)
    split = {no: min(_round(share), taxes[no]["amount_minor"] - taxes[no]["credited_minor"])
             for no, share in shares.items()}
    if whole is None:
        split.update(per_line)
    else:
        left = {no: line["amount_minor"] - line["credited_minor"] for no, line in net.items()}
        net_amount = whole - sum(split.values())
        if net_amount > sum(left.values()):
            raise CreditNoteRefused("amount_too_large", "the amount is more than what is left to credit on the lines")
        split.update(_spread(net_amount, left))
    return {no: amount for no, amount in sorted(split.items()) if amount > 0}


def _round(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def _spread(amount: int, weights: dict[int, int]) -> dict[int, int]:
    """`amount` over the keys in proportion to their weights, in whole units: each takes the floor of
    its share, and the units left go to the largest fractions (then the earlier key)."""
    total = sum(weights.values())
    if amount == 0 or total == 0:
        return {}
    exact = {key: Decimal(amount) * weight / total for key, weight in weights.items()}
    shares = {key: int(value) for key, value in exact.items()}
    by_fraction = sorted(weights, key=lambda key: (-(exact[key] - shares[key]), key))
    for key in by_fraction[:amount - sum(shares.values())]:
        shares[key] += 1
    return shares


def _refuse_unless_status_allows(invoice: dict, method: str) -> None:
    number, status = invoice["invoice_number"], invoice["status"]
    if status not in STATUSES_FOR[method]:
        hint = {"paid": "use --method refund or credit", "open": "use --method reduce",
                "payment_failed": "use --method reduce"}.get(status, "nothing is owed or paid on it")
        raise CreditNoteRefused(f"invoice_{status}", f"{number} is {status}: --method {method} needs an invoice"
                                f" that is {' or '.join(STATUSES_FOR[method])} ({hint})")


def _refuse_unless_amount_allowed(cursor, invoice: dict, *, method: str, amount_minor: int) -> None:
    number = invoice["invoice_number"]
    balance = cursor.execute(
        "select * from billing.invoice_balances where invoice_id = %s", (invoice["invoice_id"],)
    ).fetchone()
    currency = invoice["currency"]
    creditable = balance["total_minor"] - balance["credited_minor"]
    limit, what = {
        "reduce": (balance["amount_remaining_minor"], "what remains to pay"),
        "refund": (balance["paid_minor"] - balance["credited_minor"] + balance["reduced_minor"],
                   "what was paid minus earlier refunds and credits"),
        "credit": (creditable, "its total minus earlier credit notes"),
    }[method]
    limit = min(limit, creditable)
    if amount_minor > limit:
        raise CreditNoteRefused("amount_too_large", f"{format_minor(amount_minor, currency)} is more than {number}"
                                f" allows: at most {format_minor(limit, currency)}, {what}")
    if method == "reduce" and cursor.execute(
        "select 1 from billing.charge_attempts where invoice_id = %s and status = 'pending'", (invoice["invoice_id"],)
    ).fetchone():
        raise CreditNoteRefused("charge_in_flight", f"{number} has a charge in flight; reduce it once the charge"
                                " is resolved")


def _write(connection, invoice: dict, credit_note_id: str, split: dict[int, int], *, lines: list[dict],
           method: str, reason: str, memo: str | None) -> None:
    """The note, its lines, ledger entries, webhook and what its method does, in the caller's transaction."""
    cursor = connection.cursor(row_factory=dict_row)
    # NOTE: numbers are count + 1; the lock keeps two notes from taking the same one (gapless, SPEC §13).
    connection.execute("lock table billing.credit_notes in share row exclusive mode")
    [(number,)] = connection.execute("select count(*) + 1 from billing.credit_notes").fetchall()
    amount_minor = sum(split.values())
    note = cursor.execute(
        "insert into billing.credit_notes (credit_note_id, credit_note_number, invoice_id, customer_id, currency,"
        " method, reason, memo, amount_minor, created_by) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " returning *",
        (credit_note_id, f"CN-{number:06d}", invoice["invoice_id"], invoice["customer_id"], invoice["currency"],
         method, reason, memo, amount_minor, getpass.getuser()),
    ).fetchone()
    kinds = {line["line_no"]: line["kind"] for line in lines}
    cursor.executemany(
        "insert into billing.credit_note_lines (credit_note_id, line_no, invoice_id, invoice_line_no, kind,"
        " amount_minor) values (%s, %s, %s, %s, %s, %s)",
        [(credit_note_id, position, invoice["invoice_id"], line_no, kinds[line_no], amount)
         for position, (line_no, amount) in enumerate(split.items(), start=1)],
    )
    entries = [_entry(note, "credit_note", [
        *(ledger.debit(LINE_ACCOUNTS[kinds[line_no]], amount) for line_no, amount in split.items()),
        ledger.credit("accounts_receivable", amount_minor),
    ])]
    if method == "credit":
        _grant(connection, note, invoice)
        entries.append(_entry(note, "credit_note_grant", [
            ledger.debit("accounts_receivable", amount_minor), ledger.credit("customer_credit", amount_minor),
        ]))
    elif method == "refund":
        _record_refund(connection, note)
    ledger.post(connection, entries)
    enqueue_event(connection, event_type=CREDIT_NOTE_CREATED, subject_id=credit_note_id, data={
        **credit_note_payload(note),
        "lines": [{"invoice_line_no": line_no, "kind": kinds[line_no], "amount_minor": amount}
                  for line_no, amount in split.items()],
        "invoice": invoice_payload(invoice),
    })
    if method == "reduce":
        _settle_if_nothing_remains(connection, invoice)


def _entry(note: dict, kind: str, postings: list[ledger.Posting]) -> ledger.JournalEntry:
    return ledger.JournalEntry(
        entry_id=f"{kind}:{note['credit_note_id']}", kind=kind, customer_id=note["customer_id"],
        currency=note["currency"], description=f"{note['credit_note_number']} ({note['method']}, {note['reason']})",
        postings=tuple(postings), invoice_id=note["invoice_id"],
    )


def _grant(connection, note: dict, invoice: dict) -> None:
    """A credit grant for the note's amount, usable like a carried credit from the end of the credited
    invoice's period (so by the customer's next invoices), without expiry."""
    connection.execute(
        "insert into billing.credit_grants (grant_id, origin_invoice_id, credit_note_id, customer_id, currency,"
        " amount, granted_at) values (%s, %s, %s, %s, %s, %s, %s)",
        (f"credit_{note['credit_note_id']}", invoice["invoice_id"], note["credit_note_id"], note["customer_id"],
         note["currency"], Decimal(note["amount_minor"]).scaleb(-minor_units()[note["currency"]]),
         invoice["period_end"]),
    )


def _record_refund(connection, note: dict) -> None:
    """The refund, pending, against the invoice's paid charge: sent once the note is committed."""
    recorded = connection.execute(
        "insert into billing.refunds (refund_id, credit_note_id, invoice_id, gateway_charge_id, amount_minor,"
        " currency, status)"
        " select %s, %s, invoice_id, gateway_charge_id, %s, %s, 'pending' from billing.charge_attempts"
        " where invoice_id = %s and status = 'succeeded' and gateway_charge_id is not null",
        (idempotency_key("re", note["credit_note_id"]), note["credit_note_id"], note["amount_minor"],
         note["currency"], note["invoice_id"]),
    ).rowcount
    if recorded != 1:  # NOTE: raised inside the note's transaction: nothing is written
        raise CreditNoteRefused("no_charge_to_refund", f"{note['invoice_id']} has no one paid charge with a gateway"
                                " charge id to refund: use --method credit")


def _settle_if_nothing_remains(connection, invoice: dict) -> None:
    """An unpaid invoice its credit notes reduce to nothing is paid (as Stripe does), announced once."""
    settled = connection.cursor(row_factory=dict_row).execute(
        "update billing.invoices set status = 'paid' from billing.invoice_balances as balances"
        " where invoices.invoice_id = %s and balances.invoice_id = invoices.invoice_id"
        " and balances.amount_remaining_minor = 0 returning invoices.*",
        (invoice["invoice_id"],),
    ).fetchone()
    if settled:
        announce_invoice(connection, settled)


def _same_request_or_refuse(existing: dict, invoice: dict, *, method: str, reason: str) -> None:
    if (existing["invoice_id"], existing["method"], existing["reason"]) != (invoice["invoice_id"], method, reason):
        raise CreditNoteRefused(
            "idempotency_key_reused",
            f"that idempotency key already made {existing['credit_note_number']} ({existing['method']},"
            f" {existing['reason']}) on {invoice['invoice_number']}: use another key for another credit note",
        )


def _send_refund(gateway: PaymentGateway | None, refund: dict) -> None:
    if gateway is None:
        from billing.payments.gateway import configured_gateway

        gateway = configured_gateway()
    if (message := _resolve(gateway, refund)) is not None:
        raise RefundsUnresolved(message)


def resume_pending_refunds(gateway: PaymentGateway) -> dict:
    """Send every pending refund again with its key (the daily charge_retries run); counts outcomes."""
    with connect() as connection:
        refunds = connection.cursor(row_factory=dict_row).execute(PENDING_REFUNDS).fetchall()
    unresolved = [message for refund in refunds if (message := _resolve(gateway, refund)) is not None]
    if unresolved:
        raise RefundsUnresolved("; ".join(unresolved))
    return {"resumed": len(refunds)}


def _resolve(gateway: PaymentGateway, refund: dict) -> str | None:
    """Send one refund and record its outcome; the message of an unanswered one (left pending)."""
    try:
        outcome = gateway.refund(RefundRequest(
            idempotency_key=refund["refund_id"], credit_note_id=refund["credit_note_id"],
            gateway_charge_id=refund["gateway_charge_id"], amount_minor=refund["amount_minor"],
            currency=refund["currency"],
        ))
    except OutcomeUnknown as error:
        return (f"refund {refund['refund_id']} of {format_minor(refund['amount_minor'], refund['currency'])}"
                f" has no answer yet ({error}); it stays pending: re-running the command, or the daily"
                " charge_retries run, re-sends it with the same key")
    _record_outcome(refund, outcome)
    return None


def _record_outcome(refund: dict, outcome: RefundOutcome) -> None:
    """The outcome, its ledger entry (money out: cash) and webhook, in one transaction."""
    with connect() as connection:
        resolved = connection.cursor(row_factory=dict_row).execute(RESOLVE_REFUND, {
            "refund_id": refund["refund_id"], "status": "succeeded" if outcome.succeeded else "failed",
            "failure_code": outcome.failure_code, "gateway_refund_id": outcome.gateway_refund_id,
        }).fetchone()
        if resolved is None:
            return  # NOTE: another run resolved it first; its outcome and events stand
        [(customer_id,)] = connection.execute(
            "select customer_id from billing.invoices where invoice_id = %s", (resolved["invoice_id"],)
        ).fetchall()
        if outcome.succeeded:
            ledger.post(connection, [ledger.JournalEntry(
                entry_id=f"refund:{resolved['refund_id']}", kind="refund", customer_id=customer_id,
                currency=resolved["currency"], description=f"refund {resolved['gateway_refund_id']}",
                postings=(ledger.debit("accounts_receivable", resolved["amount_minor"]),
                          ledger.credit("cash", resolved["amount_minor"])),
                invoice_id=resolved["invoice_id"],
            )])
        enqueue_event(
            connection, event_type=REFUND_SUCCEEDED if outcome.succeeded else REFUND_FAILED,
            subject_id=resolved["refund_id"],
            data={key: resolved[key] for key in ("refund_id", "credit_note_id", "invoice_id", "amount_minor",
                                                  "currency", "status", "failure_code", "gateway_refund_id")},
        )


def list_credit_notes(*, invoice: str | None = None, customer_id: str | None = None) -> list[dict]:
    """Credit notes, newest first, with their invoice's number and refund status."""
    with connect() as connection:
        return connection.cursor(row_factory=dict_row).execute(
            "select notes.*, invoices.invoice_number, refunds.status as refund_status"
            " from billing.credit_notes as notes"
            " inner join billing.invoices using (invoice_id)"
            " left join billing.refunds using (credit_note_id)"
            " where (%(invoice)s::text is null or invoices.invoice_id = %(invoice)s"
            " or invoices.invoice_number = %(invoice)s)"
            " and (%(customer)s::text is null or notes.customer_id = %(customer)s)"
            " order by notes.credit_note_number desc",
            {"invoice": invoice, "customer": customer_id},
        ).fetchall()


def show_credit_note(reference: str) -> CreditNoteResult:
    """A credit note by id or number, with its lines and refund."""
    with connect() as connection:
        cursor = connection.cursor(row_factory=dict_row)
        note = cursor.execute(
            "select notes.*, invoices.invoice_number from billing.credit_notes as notes"
            " inner join billing.invoices using (invoice_id)"
            " where credit_note_id = %(ref)s or credit_note_number = %(ref)s", {"ref": reference},
        ).fetchone()
        if note is None:
            raise CreditNoteNotFound(f"no credit note with id or number '{reference}'")
        lines = cursor.execute(
            "select * from billing.credit_note_lines where credit_note_id = %s order by line_no",
            (note["credit_note_id"],),
        ).fetchall()
        refund = cursor.execute(
            "select * from billing.refunds where credit_note_id = %s", (note["credit_note_id"],)
        ).fetchone()
    return CreditNoteResult(note, lines, refund, created=False)


def credit_note_payload(note: dict) -> dict:
    return {key: note[key] for key in ("credit_note_id", "credit_note_number", "invoice_id", "customer_id",
                                       "currency", "method", "reason", "memo", "amount_minor", "created_at")}
