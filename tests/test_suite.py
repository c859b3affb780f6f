"""The suite's own set-up: what conftest.py promises about how tests are spread over workers."""

from __future__ import annotations

from itertools import groupby

import pytest


def test_a_modules_tests_run_together_on_one_worker(request):
    # pytest-xdist's loadgroup sends one group to one worker; the group rides on the node id.
    if not getattr(request.config.option, "loadgroup", False):  # set on xdist's workers only
        pytest.skip("not under pytest-xdist's loadgroup (-n0 runs every test in one process)")
    assert request.node.nodeid.endswith(f"@{request.node.path}")


def test_each_module_runs_in_one_piece_after_the_scheduler_tests(request):
    # the session's order is the order in which xdist hands the groups out (--no-loadscope-reorder)
    items = request.session.items
    grouped = [item.path for item in items if not item.get_closest_marker("independent")]
    modules = [path for path, _ in groupby(grouped)]
    assert len(modules) == len(set(modules)), "a module's tests are split"
    scheduler = [bool(item.get_closest_marker("scheduler")) for item in items]
    assert scheduler == sorted(scheduler, reverse=True), "a scheduler test comes after another test"
