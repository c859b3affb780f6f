"""The dashboard in a real browser: `billing demo`, then the command its last line prints (with a
port), read by a headless Chromium the test starts (Debian's `chromium` and `chromium-driver`,
which scripts/bootstrap.sh installs). Each page's figures are read off the rendered page and
checked against the demo's worked examples; a screenshot of each page is saved."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg
import pytest
from conftest import run_cli
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.slow

DASHBOARD_HINT = "The dashboard on this warehouse: "
WAIT_SECONDS = 90


@pytest.fixture(scope="module")
def dashboard_command(billing_home: Path) -> list[str]:
    """The demo warehouse under BILLING_HOME/demo, and the command the demo's output ends with."""
    last_line = run_cli("demo").stdout.rstrip().splitlines()[-1]
    assert last_line.startswith(DASHBOARD_HINT)
    command = shlex.split(last_line.removeprefix(DASHBOARD_HINT))
    assert command[0] == f"BILLING_HOME={billing_home / 'demo'}" and command[-1] == "dashboard"
    return command


@pytest.fixture(scope="module")
def dashboard(dashboard_command: list[str], tmp_path_factory) -> str:
    """`billing dashboard --port PORT` as the demo prints it, until the module ends; its base URL."""
    variable, *command = dashboard_command
    home = variable.removeprefix("BILLING_HOME=")
    environment = {**os.environ, "BILLING_HOME": home}
    port = _free_port()
    log = tmp_path_factory.mktemp("dashboard") / "dashboard.log"
    with log.open("w") as output:
        server = subprocess.Popen([*command, "--port", str(port)], env=environment, stdout=output, stderr=output)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, server, log)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        subprocess.run([command[0], "warehouse", "stop"], env=environment, check=True, capture_output=True)


@pytest.fixture(scope="module")
def browser() -> WebDriver:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("chromium and chromium-driver are missing: scripts/bootstrap.sh installs them (as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # NOTE: --no-sandbox: Chromium's sandbox refuses to run as root, which the test suite may be.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2400"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(driver))
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def test_the_revenue_page_shows_mrr_and_revenue_by_month_plan_meter_and_customer(dashboard, browser, screenshots):
    open_page(browser, dashboard, "Revenue")
    wait_for_text(browser, "Top customers")
    bridge, by_month, by_plan, by_meter, by_customer = tables(browser, 5)
    # MRR (SPEC §11): June = Acme's usage 1,238.77 + Globex 99 + 150 + Initech's base fee 99 (a full
    # month's: the subscription is in force at the month's end) + its usage 0.00; July: Acme 878.24
    # (contraction 360.53), Globex 99.00 (contraction 150.00), Initech 99 + 23.45 (expansion)
    assert bridge[:3] == [
        ["month", "opening", "new", "reactivation", "expansion", "contraction", "churn", "closing"],
        ["2026-06", "USD 0.00", "USD 1,586.77", "USD 0.00", "USD 0.00", "USD 0.00", "USD 0.00", "USD 1,586.77"],
        ["2026-07", "USD 1,586.77", "USD 0.00", "USD 0.00", "USD 23.45", "USD 510.53", "USD 0.00", "USD 1,099.69"],
    ]
    # the issued invoices by service month: June 1,238.77 + 249.00 + 49.50, July 878.24 + 99.00 + 122.45
    assert by_month == [["service month", "revenue"], ["2026-06", "USD 1,537.27"], ["2026-07", "USD 1,099.69"]]
    assert by_plan == [["plan", "revenue"], ["usage_usd", "USD 2,117.01"], ["pro_usd", "USD 519.95"]]
    assert by_meter == [["meter", "revenue"], ["api_call", "USD 2,284.56"], ["(base fee, adjustments)", "USD 346.50"],
                        ["file_upload", "USD 5.90"]]
    assert by_customer == [["customer", "revenue"], ["Acme Corp", "USD 2,117.01"], ["Globex", "USD 348.00"],
                           ["Initech", "USD 171.95"]]
    assert {label.split(",")[0] for label in metrics(browser, 4)} == {"MRR", "Customers", "ARPA", "Logo churn"}
    assert len(charts(browser)) == 5
    save(browser, screenshots, "revenue_usd")

    pick(browser, "JPY")
    wait_for_text(browser, "Umbrella KK")
    assert "currency=JPY" in browser.current_url
    # Umbrella's months are Tokyo's: its period from 2026-05-31 15:00Z is June
    assert tables(browser, 5)[1] == [["service month", "revenue"], ["2026-06", "JPY 617"], ["2026-07", "JPY 618"]]
    save(browser, screenshots, "revenue_jpy")


def test_the_receivables_page_shows_what_is_owed_the_dunning_queue_and_payment_success(
    dashboard, browser, screenshots,
):
    open_page(browser, dashboard, "Receivables")
    wait_for_text(browser, "Payment success")
    # open: Globex 249.00 and 99.00; payment_failed: Initech 49.50 and 122.45, Umbrella JPY 617 and 618
    assert metrics(browser, 3) == {"Owed in JPY": "JPY 1,235", "Owed in USD": "USD 519.95", "Invoices in dunning": "4"}
    aging_jpy, aging_usd, dunning, success = tables(browser, 4)
    assert [row[0] for row in aging_usd] == ["bucket", "current", "1-30", "31-60", "61-90", "91+", "written_off"]
    assert sum(int(row[1]) for row in aging_usd[1:]) == 4 and sum(int(row[1]) for row in aging_jpy[1:]) == 2
    # each failed charge (at the close's logical time) is retried from the next day, given up 72 h later
    assert [row[:4] + row[5:] for row in dunning[1:]] == [
        ["INV-000001", "Umbrella KK", "payment_failed", "JPY 617", "1", "2", "card_declined", "2026-07-02 00:00",
         "2026-07-04 01:00"],
        ["INV-000004", "Initech", "payment_failed", "USD 49.50", "1", "2", "card_declined", "2026-07-02 00:00",
         "2026-07-04 01:00"],
        ["INV-000005", "Umbrella KK", "payment_failed", "JPY 618", "1", "2", "card_declined", "2026-08-02 00:00",
         "2026-08-04 01:00"],
        ["INV-000008", "Initech", "payment_failed", "USD 122.45", "1", "2", "card_declined", "2026-08-02 00:00",
         "2026-08-04 01:00"],
    ]
    # each close charges Acme (paid), Initech (declined) and Umbrella (declined once, not retried here)
    assert success[1:] == [
        ["2026-07", "JPY", "1", "0", "1", "0.0 %", "0.0 %"],
        ["2026-07", "USD", "2", "1", "1", "50.0 %", "50.0 %"],
        ["2026-08", "JPY", "1", "0", "1", "0.0 %", "0.0 %"],
        ["2026-08", "USD", "2", "1", "1", "50.0 %", "50.0 %"],
    ]
    assert len(charts(browser)) == 3
    save(browser, screenshots, "receivables")


def test_the_customer_page_shows_acme_invoices_and_usage_of_every_period(dashboard, browser, screenshots) -> None:
    open_page(browser, dashboard, "Customer", customer="acme")
    wait_for_text(browser, "1,234,567")
    # the demo's last close (2026-08-01 01:00Z) left every customer at the start of August
    assert metrics(browser, 2) == {
        "Usage charges so far": "USD 0.00",
        "Projected usage charges for the period": "USD 0.00",
    }
    current, invoices, history = tables(browser, 3)
    assert current == [
        ["meter", "used", "included", "included left", "so far", "projected"],
        ["API calls", "0", "0", "0", "USD 0.00", "USD 0.00"],
        ["File uploads", "0", "0", "0", "USD 0.00", "USD 0.00"],
    ]
    # worked example (a): 1,234,567 API calls at 0.001 and 42 uploads at 0.10 = USD 1,238.77
    assert [row[:5] + row[7:] for row in invoices] == [
        ["invoice", "service month", "period (UTC)", "total", "status", "still owed", "days past due"],
        ["INV-000006", "2026-07", "2026-07-01 00:00 → 2026-08-01 00:00", "USD 878.24", "paid", "USD 0.00", "0"],
        ["INV-000002", "2026-06", "2026-06-01 00:00 → 2026-07-01 00:00", "USD 1,238.77", "paid", "USD 0.00", "0"],
    ]
    assert history == [
        ["period (UTC)", "meter", "aggregation", "quantity", "events", "closed", "invoice", "billed"],
        ["2026-07-01 → 2026-08-01", "api_call", "sum", "876,543", "400", "yes", "INV-000006", "USD 876.54"],
        ["2026-07-01 → 2026-08-01", "file_upload", "count", "17", "17", "yes", "INV-000006", "USD 1.70"],
        ["2026-06-01 → 2026-07-01", "api_call", "sum", "1,234,567", "500", "yes", "INV-000002", "USD 1,234.57"],
        ["2026-06-01 → 2026-07-01", "file_upload", "count", "42", "42", "yes", "INV-000002", "USD 4.20"],
    ]
    assert len(charts(browser)) == 2  # one per meter
    save(browser, screenshots, "customer_acme")


def test_picking_another_customer_shows_its_usage(dashboard, browser, screenshots) -> None:
    pick(browser, "initech")
    wait_for_text(browser, "12,345")
    assert "customer=initech" in browser.current_url
    current, invoices, history = tables(browser, 3)
    assert current[1] == ["API calls", "0", "10,000", "10,000", "USD 0.00", "USD 0.00"]
    assert "API calls: 0 of 10,000 included units used" in main_text(browser)
    # Initech started on June 16th: a prorated base fee, then 12,345 calls in July, 2,345 over the 10,000
    assert [row[0] + " " + row[3] for row in invoices[1:]] == ["INV-000008 USD 122.45", "INV-000004 USD 49.50"]
    assert [row[:5] + row[6:] for row in history[1:]] == [
        ["2026-07-01 → 2026-08-01", "api_call", "sum", "12,345", "60", "INV-000008", "USD 23.45"],
        ["2026-06-16 → 2026-07-01", "api_call", "sum", "8,000", "40", "INV-000004", "USD 0.00"],
    ]
    save(browser, screenshots, "customer_initech")


def test_the_data_quality_page_shows_rejects_duplicates_gates_and_webhooks(dashboard, browser, screenshots) -> None:
    open_page(browser, dashboard, "Data quality")
    wait_for_text(browser, "Webhook health")
    # one bad event for each of the 9 reasons; 15 duplicates, one of which conflicts; no gate failed
    found = metrics(browser, 6)
    assert {name: found[name] for name in ["Rejected events", "Duplicates dropped", "Conflicting duplicates",
                                           "Checks acknowledged", "Checks failed"]} == {
        "Rejected events": "9", "Duplicates dropped": "15", "Conflicting duplicates": "1",
        "Checks acknowledged": "0", "Checks failed": "0",
    }
    reasons, conflicting, gates, webhooks = tables(browser, 4)
    assert reasons == [["reason", "events"]] + [[reason, "1"] for reason in sorted([
        "future_timestamp", "invalid_action", "invalid_value", "missing_customer", "missing_reference",
        "missing_timestamp", "no_active_subscription", "unknown_customer", "unknown_meter",
    ])]
    assert [row[:4] for row in conflicting[1:]] == [["acme-api_call-202606-00000", "acme", "api_call", "1490"]]
    # two closes through the gates, newest first; the second does not check the raw tables again:
    # nothing in them changed since the first passed
    assert [(row[0], row[1], row[-1]) for row in gates[1:]] == [
        (f"as_of=2026-{month}-01T01:00:00+00:00", gate, "0") for month, gates_run in (
            ("08", ("ledger", "draft_invoices", "closing_events")),
            ("07", ("ledger", "draft_invoices", "closing_events", "raw_contracts")),
        ) for gate in gates_run
    ]
    # the 14 webhooks the demo's receiver accepted, each on its first attempt
    assert [row[:8] for row in webhooks[1:]] == [["demo_receiver", webhooks[1][1], "yes", "14", "14", "0", "0",
                                                  "100.0 %"]]
    assert len(charts(browser)) == 2
    save(browser, screenshots, "data_quality")


def test_the_dashboard_reads_as_its_analyst_login(dashboard_command, dashboard, browser, screenshots) -> None:
    """Without the role's grant on fct_usage_history the page cannot read it: it reads as the analyst."""
    home = dashboard_command[0].removeprefix("BILLING_HOME=")
    assert (Path(home) / "dashboard" / "password").stat().st_mode & 0o077 == 0
    superuser = subprocess.run(
        [dashboard_command[1], "warehouse", "url"], env={**os.environ, "BILLING_HOME": home},
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    with psycopg.connect(superuser, autocommit=True) as connection:
        connection.execute("revoke select on billing_marts.fct_usage_history from billing_analyst")
        try:
            # globex's usage has not been read yet (the pages cache what they read for a minute)
            open_page(browser, dashboard, "Customer", customer="globex")
            wait_for_text(browser, "permission denied for view fct_usage_history")
            save(browser, screenshots, "customer_without_the_grant")
        finally:
            connection.execute("grant select on billing_marts.fct_usage_history to billing_analyst")


# Reading the rendered page ------------------------------------------------------------------------


def open_page(browser: WebDriver, base: str, title: str, **params: str) -> None:
    """Open the dashboard, click `title` in the sidebar, then set the page's query parameters."""
    browser.get(base)
    wait_for(browser, lambda: _nav_link(browser, title)).click()
    wait_for(browser, lambda: browser.find_elements(By.XPATH, f"//h1[normalize-space()='{title}']"))
    if params:
        browser.get(browser.current_url.split("?")[0] + "?" + urlencode(params))


def pick(browser: WebDriver, option: str) -> None:
    """Choose `option` in the page's select box, as a user does: open it, click the option."""
    browser.find_element(By.CSS_SELECTOR, '[data-testid="stSelectbox"] [role="combobox"]').click()
    wait_for(browser, lambda: _option(browser, option)).click()


def wait_for_text(browser: WebDriver, text: str) -> None:
    """Until `text` is on the page and Streamlit has finished running the page's script."""
    wait_for(browser, lambda: text in main_text(browser) and not browser.find_elements(
        By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'))


def metrics(browser: WebDriver, count: int) -> dict[str, str]:
    """The page's `count` st.metrics, once all are drawn, each value by its label."""
    def drawn() -> dict[str, str]:
        return {
            metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text:
                metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text
            for metric in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')
        }

    wait_for(browser, lambda: len(drawn()) == count and all(drawn().values()))
    return drawn()


def tables(browser: WebDriver, count: int) -> list[list[list[str]]]:
    """The page's `count` st.tables, once all are drawn, each as rows of cell texts, the header first."""
    selector = '[data-testid="stTable"] table'
    wait_for(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, selector)) == count)
    return [
        [[cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")] for row in table.find_elements(
            By.CSS_SELECTOR, "tr")]
        for table in browser.find_elements(By.CSS_SELECTOR, selector)
    ]


def charts(browser: WebDriver) -> list:
    """The rendered Vega-Lite charts (each draws into a canvas or an SVG)."""
    return [chart for chart in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')
            if chart.find_elements(By.CSS_SELECTOR, "canvas, svg")]


def main_text(browser: WebDriver) -> str:
    return browser.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]').text


def save(browser: WebDriver, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000


def wait_for(browser: WebDriver, condition):
    return WebDriverWait(browser, WAIT_SECONDS).until(lambda _: condition())


def _nav_link(browser: WebDriver, title: str):
    links = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNavLink"]')
    return next((link for link in links if link.text == title), None)


def _option(browser: WebDriver, text: str):
    return next((option for option in browser.find_elements(By.CSS_SELECTOR, '[role="option"]')
                 if option.text == text), None)


def _wait_until_healthy(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        assert server.poll() is None, f"billing dashboard exited {server.returncode}:\n{log.read_text()}"
        try:
            if httpx.get(f"{base}/_stcore/health", timeout=2).text == "ok":
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"billing dashboard did not answer in {WAIT_SECONDS} s:\n{log.read_text()}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
