"""Differential test: the pipeline's invoices against the independent reference model, to the minor unit.

For each seed: a random catalog and a few thousand events (generator.py) go through the real CLI —
`billing catalog apply`, `billing load events` — and billing_cycle_close (in this process, as
`billing close-cycles --as-of` runs it, without starting Airflow, dbt and GX again), and every issued
invoice and line is compared with reference.py: which invoices exist, their numbers, lines (kind,
event_name, quantity, amount_minor) in order, subtotal, credits and total.

One close run costs about 25 s per seed. Reproduce a seed outside pytest with
`python -c "from generator import scenario; scenario(1).write(Path('.'))"` in this folder.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from conftest import query, reset_warehouse, run_cli, run_dag  # noqa: E402
from generator import METERS, scenario  # noqa: E402
from reference import Invoice, compute_invoices, duplicates, parse_events  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.independent]

SEEDS = [int(seed) for seed in os.environ.get("DIFFERENTIAL_SEEDS", "1,2").split(",")]
TOLERANCE = Fraction(1, 10**12)  # for quantities the pipeline may compute by a truncating division


def pipeline_invoices() -> dict[tuple, dict]:
    invoices = {}
    for row in query(
        "select invoice_id, invoice_number, subscription_id, customer_id, period_start, period_end, currency,"
        " subtotal_minor, credits_minor, total_minor from billing.invoices order by invoice_number"
    ):
        keys = ["invoice_id", "invoice_number", "subscription_id", "customer_id", "period_start", "period_end",
                "currency", "subtotal_minor", "credits_minor", "total_minor"]
        invoice = dict(zip(keys, row, strict=True))
        invoice["lines"] = query(
            # discount and tax lines are told apart by their redemption and rate, as the reference names them
            "select kind, coalesce(event_name, detail ->> 'redemption_id', detail ->> 'tax_rate_id'),"
            " quantity, amount_minor from billing.invoice_lines"
            " where invoice_id = %s order by line_no", invoice["invoice_id"],
        )
        invoices[(invoice["subscription_id"], invoice["period_start"])] = invoice
    return invoices


def _quantity_matches(expected: Fraction | None, actual: Decimal | None, exact: bool) -> bool:
    if expected is None:
        return True  # credit lines: the quantity is not specified
    if actual is None:
        return False
    actual = Fraction(actual)
    if exact:
        return actual == expected
    return abs(actual - expected) <= TOLERANCE * max(1, abs(expected))


def _show(quantity) -> str:
    if isinstance(quantity, Fraction):
        return str(quantity) if quantity.denominator == 1 else f"{float(quantity):.6f}({quantity})"
    return str(quantity)


def compare(expected: list[Invoice], actual: dict[tuple, dict], catalog: dict) -> tuple[list[str], Counter]:
    """Readable differences, and a tally of them by (what, kind, event_name, aggregation, pricing model)."""
    problems: list[str] = []
    tally: Counter = Counter()
    models = {(p["plan_id"], c["event_name"]): c["pricing_model"] for p in catalog["plans"] for c in p["charges"]}
    plan_of = {s["subscription_id"]: s["plan_id"] for s in catalog["subscriptions"]}
    expected_keys = {(i.subscription_id, i.period_start) for i in expected}
    for key in sorted(set(actual) - expected_keys):
        invoice = actual[key]
        problems.append(f"UNEXPECTED invoice {invoice['invoice_number']} {key[0]} "
                        f"[{invoice['period_start']}, {invoice['period_end']})")
        tally[("unexpected invoice",)] += 1
    for invoice in expected:
        where = (f"{invoice.subscription_id} [{invoice.period_start:%Y-%m-%d %H:%M}Z,"
                 f" {invoice.period_end:%Y-%m-%d %H:%M}Z) {invoice.currency}")
        got = actual.get((invoice.subscription_id, invoice.period_start))
        if got is None:
            problems.append(f"MISSING invoice {invoice.invoice_number} {where}")
            tally[("missing invoice",)] += 1
            continue
        for field in ["invoice_number", "period_end", "currency", "subtotal_minor", "credits_minor", "total_minor"]:
            if getattr(invoice, field) != got[field]:
                problems.append(f"{where}: {field} expected {getattr(invoice, field)} got {got[field]}")
                tally[(field,)] += 1
        expected_lines = [(line.kind, line.event_name) for line in invoice.lines]
        actual_lines = [(kind, name) for kind, name, _, _ in got["lines"]]
        if expected_lines != actual_lines:
            problems.append(f"{where}: lines expected {expected_lines}\n{' ' * 8}got {actual_lines}")
            tally[("line set",)] += 1
        actual_by_line = {(kind, name): (quantity, amount) for kind, name, quantity, amount in got["lines"]}
        for line in invoice.lines:
            if (line.kind, line.event_name) not in actual_by_line:
                continue
            quantity, amount = actual_by_line[(line.kind, line.event_name)]
            quantity_ok = _quantity_matches(line.quantity, quantity, line.exact_quantity)
            if quantity_ok and amount == line.amount_minor:
                continue
            aggregation = METERS[line.event_name][0] if line.event_name in METERS else "-"
            model = models.get((plan_of[invoice.subscription_id], line.event_name), "-")
            problems.append(
                f"{where}: {line.kind} {line.event_name or ''} ({aggregation}/{model})"
                f" quantity expected {_show(line.quantity)} got {quantity}"
                f"{'' if quantity_ok else '  <-- quantity'}; amount_minor expected {line.amount_minor} got {amount}"
                f"{'' if amount == line.amount_minor else '  <-- amount'}"
            )
            tally[("line", line.kind, line.event_name, aggregation, model,
                   "quantity" if not quantity_ok else "amount only")] += 1
    return problems, tally


def compare_events(rejects: dict[str, str], dropped: list[tuple[str, bool]], tally: Counter) -> list[str]:
    """SPEC §2 marts: the reject reason of every rejected event, and every dropped duplicate."""
    problems = []
    actual_rejects = query(
        "select coalesce(reference, ''), reject_reason from billing_marts.fct_rejected_usage_events"
    )
    blank_expected = Counter(reason for reference, reason in rejects.items() if reference.startswith("#"))
    blank_actual = Counter(reason for reference, reason in actual_rejects if not reference.strip())
    if blank_expected != blank_actual:
        problems.append(f"rejects without reference: expected {dict(blank_expected)} got {dict(blank_actual)}")
        tally[("rejects", "blank reference")] += 1
    expected_named = {ref: reason for ref, reason in rejects.items() if not ref.startswith("#")}
    actual_named: dict[str, list[str]] = {}
    for reference, reason in actual_rejects:
        if reference.strip():
            actual_named.setdefault(reference, []).append(reason)
    for reference in sorted(set(expected_named) | set(actual_named)):
        if [expected_named.get(reference)] != actual_named.get(reference, [None]):
            problems.append(
                f"reject {reference}: expected {expected_named.get(reference)} got {actual_named.get(reference)}"
            )
            tally[("rejects", expected_named.get(reference), str(actual_named.get(reference)))] += 1
    actual_dropped = sorted(query(
        "select reference, is_conflicting from billing_marts.fct_usage_event_duplicates"
    ))
    if actual_dropped != dropped:
        missing = Counter(dropped) - Counter(actual_dropped)
        extra = Counter(actual_dropped) - Counter(dropped)
        problems.append(f"duplicates: expected but not listed {sorted(missing.elements())[:20]};"
                        f" listed but not expected {sorted(extra.elements())[:20]}")
        tally[("duplicates",)] += 1
    return problems


@pytest.mark.parametrize("seed", SEEDS)
def test_pipeline_invoices_equal_the_reference(warehouse, tmp_path: Path, seed: int):
    generated = scenario(seed)
    expected, rejects = compute_invoices(generated.catalog, generated.events, generated.as_of)
    assert expected, f"seed {seed} expects no invoice: the comparison would prove nothing"
    catalog_path, events_path = generated.write(tmp_path)

    reset_warehouse()
    run_cli("init")
    run_cli("catalog", "apply", str(catalog_path))
    run_cli("load", "events", str(events_path))
    as_of = generated.as_of.isoformat()
    run_dag("billing_cycle_close", as_of, as_of=as_of)  # a failed close fails the test

    problems, tally = compare(expected, pipeline_invoices(), generated.catalog)
    problems += compare_events(rejects, duplicates(parse_events(generated.events)), tally)
    if problems:
        report = tmp_path / "mismatches.txt"
        summary = "\n".join(
            f"  {count:4d} × {' / '.join(str(part) for part in key)}" for key, count in tally.most_common()
        )
        report.write_text(summary + "\n\n" + "\n".join(problems) + "\n")
        shown = "\n".join(problems[:60])
        pytest.fail(
            f"seed {seed}: {len(problems)} differences from the reference ({len(expected)} invoices expected);"
            f" all in {report}\nby kind:\n{summary}\n\nfirst ones:\n{shown}",
            pytrace=False,
        )
