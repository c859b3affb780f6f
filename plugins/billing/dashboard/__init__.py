"""`billing dashboard`: a Streamlit app on the marts, reading as an analyst login and nothing else.

The CLI side (this module) runs as the operator: it makes sure the dashboard's own analyst login
exists and knows its password, then hands Streamlit that login's URL alone (`app.py` and the pages
never see the operator's URL).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg

from billing.analysts import add_analyst, analyst_url
from billing.settings import billing_home

LOGIN = "billing_dashboard"
APP = Path(__file__).with_name("app.py")
URL_ENV = "BILLING_DASHBOARD_WAREHOUSE_URL"


def serve(port: int, host: str) -> None:
    """Replace this process with the Streamlit server on `host`:`port`."""
    environment = {**os.environ, URL_ENV: login_url()}
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer", "--theme.base", "light",
    ]
    os.execve(sys.executable, command, environment)


def login_url() -> str:
    """The dashboard login's URL: with its saved password while that still logs in, else a new one
    (the login is created, or its password rotated, and the new password saved)."""
    saved = billing_home() / "dashboard" / "password"
    if saved.exists():
        url = analyst_url(LOGIN, saved.read_text().strip())
        if _logs_in(url):
            return url
    url = add_analyst(LOGIN, rotate=True)
    saved.parent.mkdir(mode=0o700, exist_ok=True)
    saved.touch(mode=0o600)
    saved.write_text(unquote(urlsplit(url).password))
    return url


def _logs_in(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.OperationalError:
        return False
    return True
