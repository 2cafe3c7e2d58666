"""End to end in a real headless Chromium: sign in, open a closed job, read its timeline.

Needs Debian's ``chromium`` and ``chromium-driver`` (CI installs them); skips otherwise.
Leaves a screenshot of the job page in docs/ops-job.png.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from tests.harness.env import ADMIN_TOKEN
from tests.harness.http import Api
from tests.harness.journeys import closed_job, hold_offers
from tests.harness.polling import wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "ops-job.png"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
)

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="headless Chromium is not installed: apt-get install -y chromium chromium-driver",
)


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    """The app served over real HTTP on a free local port, from a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[object]:
    """A headless Chromium driven by Selenium, with a throwaway profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory(prefix="gigco-chromium-") as profile:
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(30)
        try:
            yield driver
        finally:
            driver.quit()


def test_operator_signs_in_and_reads_a_closed_jobs_timeline(
    api: Api, live_url: str, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    job_id, consumer, worker = closed_job(api, title="Fix the <kitchen> sink")

    browser.get(f"{live_url}/ops/jobs/{job_id}")
    assert browser.current_url.startswith(f"{live_url}/ops/login?next=")
    browser.find_element(By.ID, "token").send_keys(ADMIN_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

    # The Secure cookie is kept on http://127.0.0.1 (a secure context), as in `gigco dev`.
    job_url = f"{live_url}/ops/jobs/{job_id}"
    wait_for(lambda: browser.current_url == job_url, what="the job page after signing in")
    assert ADMIN_TOKEN not in browser.current_url
    heading = browser.find_element(By.TAG_NAME, "h1").text
    assert heading == f"Job #{job_id} Fix the <kitchen> sink closed"
    rows = browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")
    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert [c[2] for c in cells] == [
        "created",
        "priced",
        "offered",
        "accepted",
        "matching_round_started",
        "opportunity_offered",
        "worker_assigned",
        "scheduled",
        "in_progress",
        "completed",
        "paid",
        "review_pending",
        "review_received",
        "review_received",
        "closed",
    ]
    assert cells[-1][3:5] == ["review_pending → closed", "system"]
    assert cells[6][4] == f"worker:{worker['id']}"
    assert cells[0][4] == f"consumer:{consumer['id']}"
    styled = browser.find_element(By.CSS_SELECTOR, ".status-closed")
    assert styled.value_of_css_property("color") != "rgba(0, 0, 0, 1)"  # the stylesheet loaded

    page = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": page["width"], "height": page["height"], "scale": 1},
        },
    )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
    assert SCREENSHOT.stat().st_size > 10_000

    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    login_url = f"{live_url}/ops/login"
    wait_for(lambda: browser.current_url == login_url, what="the login page after signing out")
    assert "You are signed out." in browser.page_source


def test_operator_filters_jobs_and_cancels_a_selection(
    api: Api, live_url: str, browser: object, sessions: sessionmaker[Session]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import Select

    assert isinstance(browser, WebDriver)
    consumer = api.consumer()
    ids = [api.post_job(consumer, title=f"Job {i}")["id"] for i in range(3)]
    for job_id in ids:
        api.wait_status(job_id, "offered")
    hold_offers(sessions, ids)  # the browser's clicks take seconds
    api.post_job(api.consumer(), title="Someone else's")  # filtered out

    browser.get(f"{live_url}/ops/jobs")
    browser.find_element(By.ID, "token").send_keys(ADMIN_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: browser.current_url == f"{live_url}/ops/jobs", what="the jobs list")

    form = browser.find_element(By.ID, "filter")
    form.find_element(By.NAME, "consumer").send_keys(str(consumer["id"]))
    Select(form.find_element(By.NAME, "status")).select_by_value("offered")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: "consumer=" in browser.current_url, what="the filtered list")
    assert f"consumer={consumer['id']}" in browser.current_url  # a link that can be shared
    rows = browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
    assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == [
        f"#{i}" for i in reversed(ids)
    ]

    for job_id in ids[:2]:
        browser.find_element(By.CSS_SELECTOR, f"input[name=job][value='{job_id}']").click()
    bulk = browser.find_element(By.ID, "bulk")
    Select(bulk.find_element(By.NAME, "action")).select_by_value("cancel")
    bulk.find_element(By.NAME, "reason").send_keys("posted twice")
    bulk.find_element(By.CSS_SELECTOR, "fieldset button[type=submit]").click()

    wait_for(lambda: "Cancel: 2 jobs?" in browser.page_source, what="the confirmation page")
    assert [api.job(i)["status"] for i in ids] == ["offered"] * 3  # nothing done yet
    browser.find_element(By.CSS_SELECTOR, "#confirm button[type=submit]").click()

    wait_for(lambda: "Cancel: 2 of 2 done" in browser.page_source, what="the results page")
    results = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in results] == [
        [f"#{ids[1]}", "done", "now cancelled"],  # in the list's order, newest first
        [f"#{ids[0]}", "done", "now cancelled"],
    ]
    assert [api.job(i)["status"] for i in ids] == ["cancelled", "cancelled", "offered"]
    browser.find_element(By.LINK_TEXT, "Back to the list").click()
    wait_for(lambda: "/ops/jobs?" in browser.current_url, what="back to the filtered list")
    assert f"consumer={consumer['id']}" in browser.current_url
    assert "status=offered" in browser.current_url
    rows = browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
    assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == [f"#{ids[2]}"]


def test_operator_opens_the_system_panel_from_the_nav(
    api: Api, live_url: str, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    browser.get(f"{live_url}/ops/")
    browser.find_element(By.ID, "token").send_keys(ADMIN_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: browser.current_url == f"{live_url}/ops/", what="the dashboard")
    browser.find_element(By.LINK_TEXT, "System").click()
    wait_for(lambda: browser.current_url == f"{live_url}/ops/system", what="the system panel")

    def alive_and_green() -> bool:
        browser.refresh()
        verdict = browser.find_element(By.ID, "verdict").get_attribute("data-status")
        alive = browser.find_elements(By.CSS_SELECTOR, "#worker-nodes td.ok")
        return verdict == "ok" and bool(alive)

    wait_for(alive_and_green, timeout=15, what="the live worker, alive, and a green verdict")
    assert "Making progress." in browser.find_element(By.ID, "verdict").text
    parts = {
        row.get_attribute("data-part"): row.find_elements(By.TAG_NAME, "td")[1].text
        for row in browser.find_elements(By.CSS_SELECTOR, "#parts tbody tr")
    }
    assert parts == dict.fromkeys(["database", "migrations", "broker", "workers", "beat"], "ok")
    ok = browser.find_element(By.CSS_SELECTOR, "#parts td.part-ok")
    assert ok.value_of_css_property("color") != "rgba(0, 0, 0, 1)"  # the stylesheet loaded
    queues = {
        row.get_attribute("data-queue"): row.find_elements(By.TAG_NAME, "td")[1].text
        for row in browser.find_elements(By.CSS_SELECTOR, "#queues tbody tr")
    }
    assert set(queues) == {"celery", "recovery", "sweeps", "webhooks"}
    assert all(depth.isdigit() for depth in queues.values()), queues  # Redis can say
    assert "Last sweep sent: 20" in browser.find_element(By.ID, "beat").text
    wait_for(  # the same verdict, asked the monitor's way (polled: beat may lag under load)
        lambda: api.client.get("/healthz").status_code == 200, timeout=10, what="/healthz 200"
    )
