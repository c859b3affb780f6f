"""MetricFlow's `mf` over the dbt semantic layer (dbt_project/models/semantic), against the warehouse.

`mf` finds the connection through dbt_project/profiles.yml, whose variables `transform.dbt_environment`
sets, and reads the semantic manifest from a `target/` folder: the one dbt writes under BILLING_HOME.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from billing import transform
from billing.settings import DBT_PROJECT_DIR, billing_home


def metricflow_configuration() -> Any:
    """A set-up MetricFlow CLI configuration: the project's semantic manifest and the warehouse.

    Setting up costs a `dbt debug` (about 3 s); reuse one configuration for several commands.
    """
    from dbt_metricflow.cli.cli_configuration import CLIConfiguration

    manifest = transform.semantic_manifest_path()
    os.environ.update(transform.dbt_environment())
    os.environ["DBT_LOG_PATH"] = str(billing_home() / "dbt" / "logs")
    configuration = CLIConfiguration()
    configuration.setup(dbt_profiles_path=DBT_PROJECT_DIR, dbt_project_path=DBT_PROJECT_DIR,
                        configure_file_logging=False)
    # NOTE: MetricFlow reads <project path>/target/semantic_manifest.json; point it at our target.
    configuration.dbt_project_metadata.project_path = manifest.parent.parent
    return configuration


def run_mf(arguments: Sequence[str], configuration: Any = None) -> int:
    """Run `mf ARGUMENTS` (query, list metrics, validate-configs, ...); returns its exit code."""
    import click
    from dbt_metricflow.cli.main import cli

    try:
        cli.main(list(arguments), prog_name="billing mf", obj=configuration or metricflow_configuration(),
                 standalone_mode=False)
    except click.ClickException as error:  # a bad option or argument, as mf itself would report it
        error.show()
        return error.exit_code
    except SystemExit as exit_:  # mf exits 1 on a failed query or validation
        return int(exit_.code or 0)
    return 0
