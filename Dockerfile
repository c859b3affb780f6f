# The image of every Airflow and billing service in docker-compose.yml: Airflow 3.3.2 on Python 3.11
# with this project installed at build time, at the versions of constraints.txt (the tested ones).
# The project stays at /opt/billing (installed editable): its dags/, dbt_project/ and
# data_contracts/ are read from there.
FROM apache/airflow:3.3.2-python3.11

# NOTE: the dependencies first, from the project's metadata alone, so that a code change does not
# reinstall them.
COPY --chown=airflow:0 pyproject.toml constraints.txt README.md /opt/billing/
RUN mkdir -p /opt/billing/plugins/billing \
    && touch /opt/billing/plugins/billing/__init__.py \
    && pip install --no-cache-dir --constraint /opt/billing/constraints.txt --editable /opt/billing

COPY --chown=airflow:0 . /opt/billing
# BILLING_HOME's volume takes this directory's owner when first mounted.
RUN mkdir -p /opt/airflow/billing
