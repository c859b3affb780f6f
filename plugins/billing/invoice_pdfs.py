"""Invoice PDFs: an issued invoice as the document its customer gets, drawn with reportlab.

The close's `render_invoice_pdfs` task stores the PDFs of the invoices its run issued, after
charging (an auto_charge invoice shows its first charge, as its `billing.invoice.generated` does)
and before the run's `dispatch_webhooks` sends that event, which names the file
(settings.invoice_pdf_location). `billing invoices pdf` renders any invoice as it stands now.

The same invoice renders to the same bytes: the PDF's dates and id derive from the invoice, not
the clock. A file is replaced, atomically, only when its bytes change, so re-runs write nothing.
Lines are drawn by what they carry (description, quantity, amount, the notes their `detail` holds),
not by their kind, so a new kind of line shows without a change here.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads

from billing.invoice_admin import find_invoice
from billing.money import format_minor, format_price
from billing.settings import Seller, invoice_pdf_path, seller
from billing.warehouse import connect

# Each invoice with its buyer and its balance: what its charges collected, what credit notes reduced, what remains.
INVOICES = """
select
    invoices.*,
    coalesce(customers.name, invoices.customer_id) as customer_name,
    customers.email as customer_email,
    coalesce(customers.timezone, 'UTC') as customer_timezone,
    balances.paid_minor,
    balances.reduced_minor,
    balances.amount_remaining_minor
from billing.invoices
inner join billing.invoice_balances as balances on invoices.invoice_id = balances.invoice_id
left join raw.customers on invoices.customer_id = customers.customer_id
where invoices.invoice_id = any(%(invoice_ids)s)
order by invoices.invoice_number
"""

# SPEC §12: a reverse-charge invoice carries no tax and says who accounts for it.
REVERSE_CHARGE_STATEMENT = "Reverse charge: no VAT charged; the customer accounts for the VAT due."

LINES = """
select * from billing.invoice_lines where invoice_id = any(%(invoice_ids)s) order by invoice_id, line_no
"""


@dataclass(frozen=True)
class StoredPdf:
    invoice_number: str
    path: Path
    written: bool  # false: the file already had these bytes


def render_run_invoices(*, issued_by_run: str) -> dict:
    """Store the PDF of every invoice the run issued; counts rendered and written."""
    with connect() as connection:
        invoice_ids = [invoice_id for (invoice_id,) in connection.execute(
            "select invoice_id from billing.invoices where issued_by_run = %s", (issued_by_run,)
        )]
        documents = _documents(connection, invoice_ids) if invoice_ids else []
    stored = [_store(document) for document in documents]
    return {"rendered": len(stored), "written": sum(pdf.written for pdf in stored)}


def write_invoice_pdf(reference: str, *, output: Path | None = None) -> StoredPdf:
    """Render an invoice (by id or number) as it stands now, to `output` or to its stored place.
    Raises InvoiceNotFound."""
    with connect() as connection:
        invoice = find_invoice(connection.cursor(row_factory=dict_row), reference)
        [document] = _documents(connection, [invoice["invoice_id"]])
    return _store(document, output)


def _documents(connection, invoice_ids: list[str]) -> list[dict]:
    """The invoices with their lines (`detail` numbers as Decimal: prices are exact)."""
    cursor = connection.cursor(row_factory=dict_row)
    set_json_loads(partial(json.loads, parse_float=Decimal), cursor)
    params = {"invoice_ids": invoice_ids}
    lines: dict[str, list[dict]] = {}
    for line in cursor.execute(LINES, params):
        lines.setdefault(line["invoice_id"], []).append(line)
    return [{**invoice, "lines": lines.get(invoice["invoice_id"], [])}
            for invoice in cursor.execute(INVOICES, params).fetchall()]


def _store(document: dict, output: Path | None = None) -> StoredPdf:
    path = output or invoice_pdf_path(document["invoice_number"])
    pdf = render(document, seller())
    if path.is_file() and path.read_bytes() == pdf:
        return StoredPdf(document["invoice_number"], path, written=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    # NOTE: written beside, then renamed: whoever fetches the file never reads half of it
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(pdf)
    try:
        os.chmod(handle.name, 0o644)  # readable by whatever serves the folder, as a plain file would be
        os.replace(handle.name, path)
    except OSError:
        os.unlink(handle.name)
        raise
    return StoredPdf(document["invoice_number"], path, written=True)


def render(document: dict, issuer: Seller) -> bytes:
    """The invoice's PDF: one A4 page per page of lines."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    buffer = io.BytesIO()
    pdf = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=16 * mm,
        title=f"Invoice {document['invoice_number']}", author=issuer.name, creator="warehouse-billing",
        subject=f"Invoice {document['invoice_number']} to {document['customer_name']}",
        keywords=[document["invoice_id"]],  # with the title, what the document's id is digested from
        invariant=1,  # no clock, no random id: the same invoice gives the same bytes
    )
    issued = document["issued_at"].astimezone(ZoneInfo("UTC")).strftime("D:%Y%m%d%H%M%S+00'00'")

    def on_page(canvas, _doc) -> None:
        canvas.setDateFormatter(lambda *_: issued)  # the PDF's creation date: when it was issued
        if document["status"] == "void":
            _void_mark(canvas, A4)

    pdf.build(_flowables(document, issuer), onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()


def _flowables(document: dict, issuer: Seller) -> list:
    from reportlab.lib import colors
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    body, small = styles["BodyText"], styles["BodyText"].clone("note", fontSize=8, leading=10,
                                                                 textColor=colors.dimgrey)
    currency, timezone = document["currency"], ZoneInfo(document["customer_timezone"])

    def block(lines: list[str]) -> Paragraph:
        return Paragraph("<br/>".join(escape(line) for line in lines if line), body)

    parties = Table([
        [Paragraph("<b>From</b>", body), Paragraph("<b>Bill to</b>", body)],
        [block([issuer.name, *issuer.address, issuer.email or ""]),
         block([document["customer_name"], document["customer_email"] or "",
                f"Customer {document['customer_id']}"])],
    ], colWidths=[87 * mm, 87 * mm], style=[("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])
    details = Table([
        ["Invoice number", document["invoice_number"]],
        ["Invoice date", f"{document['invoice_date']:%Y-%m-%d}"],
        ["Due date", f"{document['due_at'].astimezone(timezone):%Y-%m-%d}"],
        ["Service period", _period(document["period_start"], document["period_end"], timezone)],
        ["Subscription", document["subscription_id"]],
        ["Status", document["status"].replace("_", " ")],
    ], colWidths=[35 * mm, 139 * mm], style=[("LEFTPADDING", (0, 0), (-1, -1), 0),
                                             ("TEXTCOLOR", (0, 0), (0, -1), colors.dimgrey)])

    rows: list[list] = [["Description", "Quantity", "Unit price", "Amount"]]
    notes_at: list[int] = []
    for line in document["lines"]:
        # an inclusive tax line shows what the other lines contain: marked, and not in the total
        amount = format_minor(line["amount_minor"], currency)
        rows.append([Paragraph(escape(line["description"]), body), _quantity(line["quantity"]),
                     _unit_price(line, currency), amount if line["adds_to_total"] else f"incl. {amount}"])
        for note in _notes(line, currency):
            notes_at.append(len(rows))
            rows.append([Paragraph(escape(note), small), "", "", ""])
    totals = [["Total", format_minor(document["total_minor"], currency)]]
    if document["reduced_minor"]:
        totals.append(["Credit notes", format_minor(-document["reduced_minor"], currency)])
    if document["paid_minor"]:
        totals.append(["Paid", format_minor(-document["paid_minor"], currency)])
    totals.append(["Amount due", format_minor(document["amount_remaining_minor"], currency)])

    lines = Table(rows, colWidths=[88 * mm, 26 * mm, 30 * mm, 30 * mm], repeatRows=1, style=TableStyle([
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (0, -1), 0),
        *[("TOPPADDING", (0, row), (-1, row), 0) for row in notes_at],
        *[("SPAN", (0, row), (-1, row)) for row in notes_at],
    ]))
    summary = Table(totals, colWidths=[40 * mm, 30 * mm], hAlign="RIGHT", style=[
        ("ALIGN", (1, 0), (1, -1), "RIGHT"),
        ("LINEABOVE", (0, 0), (-1, 0), 0.6, colors.black),
        ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
    ])
    statements = [REVERSE_CHARGE_STATEMENT] if document["reverse_charge"] else []
    return [
        Paragraph(f"Invoice {escape(document['invoice_number'])}"
                  + (" (VOID)" if document["status"] == "void" else ""), styles["Title"]),
        parties, Spacer(1, 6 * mm), details, Spacer(1, 8 * mm), lines, Spacer(1, 4 * mm), summary,
        Spacer(1, 8 * mm), *[Paragraph(f"<b>{escape(statement)}</b>", body) for statement in statements],
        Paragraph(f"Amounts in {currency}. Dates in {document['customer_timezone']}.", small),
    ]


def _notes(line: dict, currency: str) -> list[str]:
    """What a line's detail tells beyond its columns, each a short sentence; unknown keys are left out."""
    detail, notes = line["detail"] or {}, []
    if line["included_units"]:
        notes.append(f"{_quantity(line['included_units'])} included")
    if "tiers" in detail:
        notes += [_tier(tier, currency) for tier in detail["tiers"]]
    elif "billable_units" in detail and "unit_price" in detail:
        per = f" per {_quantity(detail['package_size'])}" if "package_size" in detail else ""
        notes.append(f"{_quantity(detail['billable_units'])} billable × "
                     f"{format_price(detail['unit_price'], currency)}{per}")
    if "percentage_rate" in detail:
        notes.append(f"{_quantity(detail['percentage_rate'])}% of the value"
                     + (f" + {format_price(detail['fixed_fee_per_event'], currency)} per event"
                        if "fixed_fee_per_event" in detail else ""))
    if "over_limit_units" in detail:
        notes.append(f"{_quantity(detail['over_limit_units'])} above the limit of "
                     f"{_quantity(detail['usage_limit'])}, not billed")
    if "original_invoice_number" in detail:
        notes.append(f"{detail['original_invoice_number']} re-rated: "
                     f"{format_minor(detail['rerated_minor'], currency)}; invoiced "
                     f"{format_minor(detail['invoiced_minor'], currency)}, adjusted before "
                     f"{format_minor(detail['previously_adjusted_minor'], currency)}")
    notes += [f"Credit grant {grant['grant_id']}: {format_minor(grant['amount_minor'], currency)}"
              for grant in detail.get("grants", [])]
    if "grant_id" in detail:
        notes.append(f"Carried to credit grant {detail['grant_id']}")
    if "coupon_id" in detail:
        off = (f"{_quantity(detail['percent_off'])}% off" if "percent_off" in detail
               else f"{format_price(detail['amount_off'], currency)} off")
        notes.append(f"Coupon {detail['coupon_id']} ({off}), redemption {detail['redemption_id']}: "
                     f"on {format_minor(detail['remaining_minor'], currency)}")
    if "minimum_amount_minor" in detail:
        notes.append(f"Minimum commitment {format_minor(detail['minimum_amount_minor'], currency)}; "
                     f"discounted subtotal {format_minor(detail['discounted_subtotal_minor'], currency)}")
    if "tax_rate_id" in detail:
        notes.append(f"{_quantity(detail['percentage'])}% {detail['display_name']} ({detail['jurisdiction']}) "
                     f"{'included in' if detail['inclusive'] else 'on'} "
                     f"{format_minor(detail['taxable_minor'], currency)}")
    return notes


def _tier(tier: dict, currency: str) -> str:
    bound = "no limit" if tier.get("up_to") is None else f"up to {_quantity(tier['up_to'])}"
    flat_fee = f" + {format_price(tier['flat_fee'], currency)} flat" if tier.get("flat_fee") else ""
    return f"Tier {tier['tier']} ({bound}): {_quantity(tier['units'])} × {format_price(tier['unit_price'], currency)}" \
        + flat_fee


def _unit_price(line: dict, currency: str) -> str:
    detail = line["detail"] or {}
    price = detail.get("base_fee", detail.get("unit_price") if "tiers" not in detail else None)
    return format_price(price, currency) if price is not None else ""


def _quantity(value: Decimal | None) -> str:
    """1,234,567 and 0.5: every digit it has, none more."""
    return "" if value is None else f"{Decimal(value).normalize():,f}"


def _period(start: datetime, end: datetime, timezone: ZoneInfo) -> str:
    """[start, end) in the customer's timezone: a period ending at midnight ends on the day before."""
    def moment(at: datetime, *, is_end: bool) -> str:
        local = at.astimezone(timezone)
        if local.time() != time(0):
            return f"{local:%Y-%m-%d %H:%M}"
        return f"{local - timedelta(days=1) if is_end else local:%Y-%m-%d}"

    return f"{moment(start, is_end=False)} – {moment(end, is_end=True)}"


def _void_mark(canvas, pagesize: tuple[float, float]) -> None:
    from reportlab.lib import colors

    canvas.saveState()
    canvas.setFillColor(colors.Color(0.8, 0.1, 0.1, alpha=0.25))
    canvas.setFont("Helvetica-Bold", 120)
    canvas.translate(pagesize[0] / 2, pagesize[1] / 2)
    canvas.rotate(35)
    canvas.drawCentredString(0, -40, "VOID")
    canvas.restoreState()
