"""`pooled_connections`: while open, `connect()` reuses its few connections (set to UTC, committed
or rolled back like any other); on exit they are closed."""

from __future__ import annotations

import time

import pytest
from billing.warehouse import connect, pooled_connections

SESSION = "select pg_backend_pid(), current_setting('TimeZone')"


def test_connect_reuses_the_pool_then_closes_it(warehouse):
    with pooled_connections(2):
        sessions = set()
        for _ in range(6):
            with connect() as connection:
                sessions.add(connection.execute(SESSION).fetchone())
        with connect(autocommit=True) as connection:  # not pooled: a session of its own
            autocommit_pid = connection.execute("select pg_backend_pid()").fetchone()[0]
        with pytest.raises(RuntimeError, match="already open"), pooled_connections(1):
            pass

    pids = [pid for pid, _ in sessions]
    assert 1 <= len(pids) <= 2
    assert {zone for _, zone in sessions} == {"UTC"}
    assert autocommit_pid not in pids
    assert _backends_gone(pids)


def test_a_pooled_transaction_commits_or_rolls_back(warehouse):
    with pooled_connections(1):  # one connection: every block below runs in the same session
        with connect() as connection:
            connection.execute("create temporary table numbers (n int)")
            connection.execute("insert into numbers values (1)")
        with pytest.raises(ZeroDivisionError), connect() as connection:
            connection.execute("insert into numbers values (2)")
            raise ZeroDivisionError
        with connect() as connection:
            assert connection.execute("select array_agg(n) from numbers").fetchone()[0] == [1]


def _backends_gone(pids: list[int]) -> bool:
    """Whether the server processes of those sessions have exited (they do once their client closes)."""
    deadline = time.monotonic() + 10
    with connect(autocommit=True) as connection:
        while time.monotonic() < deadline:
            if not connection.execute("select exists (select from pg_stat_activity where pid = any(%s))",
                                      (pids,)).fetchone()[0]:
                return True
            time.sleep(0.05)
    return False
