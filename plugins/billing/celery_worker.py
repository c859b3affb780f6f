"""Imported once by every Celery worker of the team deployment, when it starts (the `imports` of its
Celery configuration, docker-compose.yml's AIRFLOW__CELERY__EXTRA_CELERY_CONFIG).

Airflow runs each task in a fork of its worker, which inherits what the worker imported and
loaded: so a gate task does not spend its first seconds importing Great Expectations (about 5 s),
nor a build task importing dbt (about 2 s) and parsing the project (about 1 s), nor
render_invoice_pdfs importing reportlab (about 0.5 s), every time.
"""

from __future__ import annotations

import logging

import dbt.cli.main  # noqa: F401  (dbtRunner: billing.transform)
import reportlab.platypus  # noqa: F401  (billing.invoice_pdfs)

from billing import transform
from billing.quality.runner import load_great_expectations
from billing.settings import configured_warehouse_url

load_great_expectations()
# NOTE: only with the warehouse named: the parse reads its connection, which would otherwise start
# an embedded one here. A project that does not parse fails its build tasks with dbt's own error.
if configured_warehouse_url():
    try:
        transform.load_project()
    except transform.TransformFailed as error:
        logging.getLogger(__name__).warning("the dbt project was not parsed ahead of the tasks: %s", error)
