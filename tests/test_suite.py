"""The suite's own set-up: what conftest.py promises about how tests are spread over workers."""

from __future__ import annotations

import pytest


def test_a_modules_tests_run_together_on_one_worker(request):
    # pytest-xdist's loadgroup sends one group to one worker; the group rides on the node id.
    if not request.config.getvalue("loadgroup"):
        pytest.skip("not under pytest-xdist's loadgroup (-n0 runs every test in one process)")
    assert request.node.nodeid.endswith(f"@{request.node.path}")
