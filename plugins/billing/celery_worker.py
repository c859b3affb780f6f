"""Imported once by every Celery worker of the team deployment, when it starts (the `imports` of its
Celery configuration, docker-compose.yml's AIRFLOW__CELERY__EXTRA_CELERY_CONFIG).

Airflow runs each task in a fork of its worker, which inherits what the worker imported: so a gate
task does not spend its first seconds importing Great Expectations (about 5 s), nor a build task
dbt (about 2 s), nor render_invoice_pdfs reportlab (about 0.5 s), every time.
"""

from __future__ import annotations

import dbt.cli.main  # noqa: F401  (dbtRunner: billing.transform)
import reportlab.platypus  # noqa: F401  (billing.invoice_pdfs)

from billing.quality.runner import load_great_expectations

load_great_expectations()
