# The image of every Airflow and billing service in docker-compose.yml: Airflow 3.3.2 on Python 3.11
# with this project installed at build time, at the versions of constraints.txt (the tested ones).
# The project stays at /opt/billing (installed editable): its dags/, dbt_project/ and
# data_contracts/ are read from there.
FROM apache/airflow:3.3.2-python3.11

# BILLING_HOME's volume takes its directory's owner when first mounted.
USER root
RUN install --directory --owner airflow --group root /opt/billing /opt/airflow/billing
USER airflow

# NOTE: the dependencies first, from the project's metadata alone, so that a code change does not
# reinstall them.
COPY --chown=airflow:0 pyproject.toml constraints.txt README.md /opt/billing/
COPY --chown=airflow:0 plugins/billing/__init__.py /opt/billing/plugins/billing/
RUN pip install --no-cache-dir --constraint /opt/billing/constraints.txt --editable /opt/billing

COPY --chown=airflow:0 . /opt/billing
