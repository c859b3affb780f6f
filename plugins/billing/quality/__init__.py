"""Data-quality gates (SPEC §9): named sets of SQL checks validated with Great Expectations.

Define a gate from `Check`s, run it with `run_gate`, and stop the pipeline with `enforce`:

    gate = Gate("draft_invoices", checks=(...), params={"as_of": as_of})
    enforce(run_gate(gate, run_label=run_id))

The billing gates themselves are in `billing_gates` (closing_events, draft_invoices, ledger) and
`contract_gate` (raw_contracts, generated from data_contracts/); their thresholds in `config`
(BILLING_HOME/quality.yml), operator acknowledgements in `acknowledgements`, the `billing quality`
commands in `commands`. Documented in data_contracts/README.md.

Importing this package is cheap; Great Expectations is imported when a gate runs.
"""

from billing.quality.gates import Check, Gate, GateFailed, GateFailure, GateResult, enforce
from billing.quality.runner import run_gate

__all__ = ["Check", "Gate", "GateFailed", "GateFailure", "GateResult", "enforce", "run_gate"]
