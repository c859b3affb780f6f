"""`billing backfill --from A --to B`: close every period that became closable in [A, B], in order.

Rather than one run per hourly schedule slot, it runs billing_cycle_close through Airflow once for
each distinct moment a not-yet-invoiced period became closable (period_end + grace), earliest
first, so invoices are issued in the order a timely schedule would have issued them. Its runs are
marked as a backfill (`billing.runs.backfill`), and so are the invoices they issue
(`billing.invoices.issued_in_backfill`). Re-running it finds every period invoiced and runs
nothing; `airflow backfill create` over the same range runs every slot, and those runs issue
nothing twice either. B may not be in the future (SPEC §10).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from billing import runs, transform
from billing.orchestration import DagRunOutcome, run_dag
from billing.warehouse import connect
from billing.window import ClosingWindow

DAG_ID = "billing_cycle_close"

# Moments in the range at which periods without an invoice became closable, with how many.
CLOSING_MOMENTS = """
select period_end + %(grace)s::interval as closable_at,
    count(*) as periods,
    count(distinct customer_id) as customers
from {awaiting_invoice}
where period_end + %(grace)s::interval between %(start)s and %(end)s
group by 1
order by 1
"""


@dataclass(frozen=True)
class PlannedClose:
    """One run of the backfill: the moment it closes at, and what becomes closable then."""

    at: datetime
    periods: int
    customers: int


def plan(start: datetime, end: datetime, *, grace: str) -> list[PlannedClose]:
    """The closes a backfill of [start, end] will run, earliest first (nothing is issued here)."""
    if start > end:
        raise ValueError(f"--from {start.isoformat()} is after --to {end.isoformat()}")
    window = ClosingWindow.parse(end, grace)
    # NOTE: the periods model is shared with every run's build: hold the lease while rebuilding it.
    with runs.exclusive("billing backfill", window.as_of.isoformat(), backfill=True):
        transform.build(("resource_type:seed", "fqn:staging", "fqn:intermediate.periods"),
                        **window.as_dict())
        with connect() as connection:
            rows = connection.execute(
                CLOSING_MOMENTS.format(awaiting_invoice=transform.ref("int_subscription_periods__awaiting_invoice")),
                {"grace": window.grace, "start": start, "end": window.as_of},
            ).fetchall()
    return [PlannedClose(at=at, periods=periods, customers=customers) for at, periods, customers in rows]


def backfill(closes: list[PlannedClose], *, grace: str,
             on_run: Callable[[PlannedClose, DagRunOutcome], None] = lambda close, outcome: None,
             ) -> list[DagRunOutcome]:
    """Run billing_cycle_close for each planned close, in order; stops at the first failed run."""
    outcomes = []
    for close in closes:
        window = ClosingWindow.parse(close.at, grace)
        outcome = run_dag(DAG_ID, logical_date=close.at, conf={**window.as_dict(), "backfill": True})
        outcomes.append(outcome)
        on_run(close, outcome)
        if not outcome.succeeded:
            break
    return outcomes
