"""The dashboard end to end in headless Chromium (Debian ``chromium`` + ``chromium-driver``, via selenium)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from modelshield.serve.auth import KeyStore

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip("Debian chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ms-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.browser
@pytest.mark.slow
def test_dashboard_login_charts_and_no_console_errors(browser, server_setup, breast_cancer, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    srv = server_setup({"drift": {"window": 40, "every": 20}})
    ks = KeyStore(tmp_path / "state")
    _, admin = ks.create("ops", ["admin"])
    _, user = ks.create("app", ["predict"])
    srv.start()
    X = breast_cancer[1]
    with httpx.Client(timeout=10) as c:
        for i in range(0, 100, 10):
            assert c.post(f"{srv.url}/v1/predict", json={"inputs": X[i : i + 10].tolist()},
                          headers={"Authorization": f"Bearer {user}"}).status_code == 200
        assert c.post(f"{srv.url}/v1/predict", json={"inputs": X[:1].tolist()}).status_code == 401

    wait = WebDriverWait(browser, 30)
    browser.get(f"{srv.url}/dashboard/")
    # a wrong key is refused, with a message
    browser.find_element(By.ID, "key").send_keys("msk_00000000_wrong")
    browser.find_element(By.ID, "login-button").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "login-error"), "rejected"))
    assert not browser.find_element(By.ID, "main").is_displayed()

    browser.find_element(By.ID, "key").send_keys(admin)
    browser.find_element(By.ID, "login-button").click()
    wait.until(ec.visibility_of_element_located((By.ID, "main")))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chart-traffic svg rect")) >= 2)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-timeline svg rect.bar"))  # one bar per minute
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-drift svg polyline"))
    wait.until(ec.text_to_be_present_in_element((By.ID, "audit-status"), "intact"))
    titles = [t.get_attribute("textContent") for t in browser.find_elements(By.CSS_SELECTOR, "#chart-traffic title")]
    assert any(t == "accepted app: 10" for t in titles), titles
    # the key never lands in storage the page can read later
    assert browser.execute_script("return window.localStorage.length + window.sessionStorage.length") == 0
    logs = browser.get_log("browser")
    # the deliberate wrong-key login produces a 401 network error; anything else is a failure
    errors = [e for e in logs if e["level"] == "SEVERE" and "401" not in e["message"]]
    assert errors == [], errors


@pytest.mark.browser
@pytest.mark.slow
def test_a_monitor_key_keeps_the_dashboard_and_is_told_verification_needs_admin(browser, server_setup, tmp_path):
    """Chain verification is admin-only; a monitor key must still see the dashboard (not be logged out)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    srv = server_setup()
    _, monitor = KeyStore(tmp_path / "state").create("watch", ["monitor"])
    srv.start()
    wait = WebDriverWait(browser, 30)
    browser.get(f"{srv.url}/dashboard/")
    browser.find_element(By.ID, "key").send_keys(monitor)
    browser.find_element(By.ID, "login-button").click()
    wait.until(ec.visibility_of_element_located((By.ID, "main")))
    wait.until(ec.text_to_be_present_in_element((By.ID, "audit-status"), "needs an admin key"))
    browser.find_element(By.ID, "verify-button").click()
    assert browser.find_element(By.ID, "main").is_displayed()
    assert "needs an admin key" in browser.find_element(By.ID, "audit-status").text
