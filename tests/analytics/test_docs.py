"""`billing docs`: dbt docs generated and served with the warehouse's connection, nothing set by hand."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from billing import transform
from conftest import reset_warehouse, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def marts_built(warehouse):
    """An empty warehouse with every model the cycle close builds: every mart among them."""
    reset_warehouse()
    run_cli("init")
    transform.build(transform.EVENTS_SLICE + transform.RATING_SLICE, as_of="2026-07-01T01:00:00Z",
                    grace="1 hour", data_tests=False)


def test_serves_the_docs_it_generated_with_the_catalog_of_the_marts_and_the_metrics(marts_built, billing_home):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).with_name("billing")), "docs", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    try:
        served = None
        deadline = time.monotonic() + 120
        while served is None and server.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/catalog.json", timeout=5) as response:
                    served = json.load(response)
            except OSError:
                time.sleep(1)
        assert served is not None, f"billing docs did not serve:\n{server.stdout.read() if server.poll() else ''}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as response:
            assert response.status == 200
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert "dbt docs generated" in server.stdout.read()

    target = billing_home / "dbt" / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    marts = {node["name"] for node in manifest["nodes"].values()
             if node["resource_type"] == "model" and node["schema"] == "billing_marts"}
    assert {"fct_meter_usage", "fct_rejected_usage_events", "fct_usage_history", "metricflow_time_spine"} <= marts
    catalog = json.loads((target / "catalog.json").read_text())
    assert served == catalog
    assert {node["metadata"]["name"] for node in catalog["nodes"].values()
            if node["metadata"]["schema"] == "billing_marts"} == marts
    # the catalog read the warehouse: a mart's columns with their types
    [usage] = [node for node in catalog["nodes"].values() if node["metadata"]["name"] == "fct_meter_usage"]
    assert usage["columns"]["quantity"]["type"] == "numeric"
    assert "usage_quantity" in {metric["name"] for metric in manifest["metrics"].values()}
    assert set(manifest["exposures"]["exposure.billing.dashboard_data_quality"]["depends_on"]["nodes"]) == {
        f"model.billing.{mart}" for mart in ("fct_data_quality_daily", "fct_usage_event_duplicates",
                                             "fct_gate_results", "fct_webhook_endpoint_health",
                                             "fct_webhook_endpoint_health_daily")}
