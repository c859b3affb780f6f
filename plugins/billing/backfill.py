"""`billing backfill --from A --to B`: close every period that became closable in [A, B], in order.

Rather than one run per hourly schedule slot, it runs billing_cycle_close through Airflow once for
each distinct moment a not-yet-invoiced period became closable (period_end + grace), earliest
first, so invoices are issued in the order a timely schedule would have issued them. Re-running it
finds every period invoiced and runs nothing; `airflow backfill create` over the same range runs
every slot, and those runs issue nothing twice either.
"""

from __future__ import annotations

from datetime import datetime

from billing import transform
from billing.orchestration import DagRunOutcome, run_dag
from billing.warehouse import connect
from billing.window import ClosingWindow

# Moments in the range at which a period without an invoice became closable.
CLOSING_MOMENTS = """
select distinct periods.period_end + %(grace)s::interval as closable_at
from billing_intermediate.int_subscription_periods as periods
where periods.period_end + %(grace)s::interval between %(start)s and %(end)s
    and not exists (
        select 1 from billing.invoices
        where invoices.subscription_id = periods.subscription_id
            and invoices.period_start = periods.period_start
    )
order by 1
"""


def backfill(start: datetime, end: datetime, *, grace: str) -> list[DagRunOutcome]:
    """Run the cycle close for each closing moment in [start, end]; stops at the first failed run."""
    window = ClosingWindow.parse(end, grace)
    transform.build(("path:seeds", "path:models/staging", "path:models/intermediate/periods"), **window.as_dict())
    with connect() as connection:
        moments = [moment for (moment,) in connection.execute(
            CLOSING_MOMENTS, {"grace": window.grace, "start": start, "end": window.as_of}
        )]
    outcomes = []
    for moment in moments:
        outcome = run_dag("billing_cycle_close", logical_date=moment,
                          conf=ClosingWindow.parse(moment, grace).as_dict())
        outcomes.append(outcome)
        if not outcome.succeeded:
            break
    return outcomes
