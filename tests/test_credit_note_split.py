"""How a credit note spreads over an invoice's lines (SPEC §13: tax credited pro rata), on the line
kinds of SPEC §12 (discount, minimum_commitment, tax; an inclusive tax does not add to the total): no
warehouse needed."""

from __future__ import annotations

import pytest
from billing.credit_notes import CreditNoteRefused, credit_split

pytestmark = pytest.mark.independent


def line(line_no: int, kind: str, amount_minor: int, credited_minor: int = 0, inclusive: bool = False) -> dict:
    return {"line_no": line_no, "kind": kind, "amount_minor": amount_minor, "detail": None,
            "adds_to_total": not inclusive, "credited_minor": credited_minor}


# €600.00 of usage with 19% exclusive VAT: total €714.00
VAT = [line(1, "usage", 60_000), line(2, "tax", 11_400, inclusive=False)]


def test_a_whole_amount_takes_the_tax_share_rounded_once_and_the_net_takes_the_rest():
    # 100.00 × 114 / 714 = 15.966… → 15.97 of tax; the net takes the rest, 84.03
    assert credit_split(VAT, currency="EUR", whole=10_000) == {1: 8_403, 2: 1_597}
    # the whole invoice: every line in full
    assert credit_split(VAT, currency="EUR", whole=71_400) == {1: 60_000, 2: 11_400}


def test_a_line_amount_brings_its_tax_on_top():
    # 100.00 of the usage line: 19.00 of tax on top, 119.00 in all
    assert credit_split(VAT, currency="EUR", per_line={1: 10_000}) == {1: 10_000, 2: 1_900}


def test_the_tax_share_follows_the_taxable_amount_after_discounts_and_inclusive_tax_is_not_credited_apart():
    lines = [
        line(1, "base_fee", 24_900), line(2, "discount", -4_980),  # 20% off: taxable 199.20
        line(3, "tax", 3_785, inclusive=False),  # 19% of 199.20 = 37.848 → 37.85
        line(4, "tax", 1_811, inclusive=True),  # shown only: inside the amounts
    ]
    # 100.00 × 37.85 / (199.20 + 37.85) = 15.967… → 15.97
    assert credit_split(lines, currency="USD", whole=10_000) == {1: 8_403, 3: 1_597}


def test_the_net_is_spread_in_proportion_to_what_is_left_of_each_line_the_cents_left_to_the_largest_fractions():
    lines = [line(1, "base_fee", 20_000), line(2, "usage", 4_900), line(3, "credit", -1_000)]
    # 49.00 × 200/249 = 39.357… and × 49/249 = 9.642…: 39.35 + 9.64, the cent left to the larger fraction
    assert credit_split(lines, currency="USD", whole=4_900) == {1: 3_936, 2: 964}
    # after an earlier note took 150.00 off the base fee: left 50.00 and 49.00
    lines[0]["credited_minor"] = 15_000
    assert credit_split(lines, currency="USD", whole=4_900) == {1: 2_475, 2: 2_425}


def test_a_tax_line_never_gives_back_more_than_is_left_of_it():
    # earlier notes' roundings left 4.00 of the tax line where 100.00 of usage brings 19.00
    lines = [line(1, "usage", 60_000, credited_minor=50_000), line(2, "tax", 11_400, credited_minor=11_000)]
    assert credit_split(lines, currency="EUR", per_line={1: 10_000}) == {1: 10_000, 2: 400}


def test_a_line_that_cannot_be_credited_is_refused():
    with pytest.raises(CreditNoteRefused, match="line 2 is not a base fee"):
        credit_split(VAT, currency="EUR", per_line={2: 100})
    with pytest.raises(CreditNoteRefused, match="line 1: at most EUR 600.00 is left"):
        credit_split(VAT, currency="EUR", per_line={1: 60_001})
