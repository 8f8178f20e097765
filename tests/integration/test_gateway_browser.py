"""The web page in a real browser: headless Chromium (Debian's, driven by selenium) against a real gateway.

The page is loaded, a token is entered, a job of a real simulation is submitted; the page must show
the job in its list, its progress advancing while the service streams progress, then its state
succeeded and the simulation's raster (a PNG output) drawn inline, loaded from the object store.
"""

from __future__ import annotations

import shutil
import time

import pytest

from test_gateway_support import TOKENS, client, gateway_process, slow_simulation, start_services

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def simulation(s3_server, module_bucket, tmp_path_factory):
    [process] = start_services(s3_server, module_bucket, ["simulation"], tmp_path_factory.mktemp("browser-services"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def gateway(simulation, s3_server, module_bucket, tmp_path_factory):
    directory = tmp_path_factory.mktemp("gateway-browser")
    process = gateway_process(directory / "gateway.log", s3_server, module_bucket, f"sqlite:///{directory / 'jobs.db'}",
                              {"simulation": [simulation.address]}, NEUROMESH_GATEWAY_PROGRESS_INTERVAL_S="0.2")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def browser(tmp_path):
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(binary):
            pytest.fail(f"{binary} is missing: apt-get install chromium chromium-driver (.ci/run does)", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "driver.log")),
                              options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_the_page_shows_a_jobs_progress_and_its_figure(browser, gateway):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60, poll_frequency=0.1)
    browser.get(gateway.url + "/")
    assert browser.title == "NeuroMesh jobs"
    field = browser.find_element(By.ID, "token-input")
    field.send_keys(TOKENS["lab-a"])
    browser.find_element(By.ID, "token-save").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "token-status"), "signed in"))
    assert browser.execute_script("return sessionStorage.getItem('neuromesh-token')") == TOKENS["lab-a"]
    assert browser.find_element(By.ID, "token-input").get_attribute("value") == ""   # not left in the field

    job = client(gateway).submit({"steps": [{"id": "column", "service": "simulation", "method": "Simulate",
                                             "params": slow_simulation(401, duration_ms=3000)}]})
    row = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, f'#jobs-body tr[data-job="{job["id"]}"]')))
    row.click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "job-id"), job["id"]))

    # The progress bar of the job, as the page shows it, sampled while the job runs.
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # one script reads both, so they come from the same rendering of the job
        value, state = browser.execute_script("return [document.getElementById('job-progress').value, "
                                              "document.getElementById('job-state').textContent]")
        if not seen or seen[-1] != (value, state):
            seen.append((value, state))
        if state in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.05)
    values = [v for v, _ in seen]
    assert seen[-1] == (1.0, "succeeded"), seen
    assert values == sorted(values), seen                                  # it only goes forward
    assert len({v for v, s in seen if s == "running" and 0 < v < 1}) >= 2, seen   # and it moved while running

    step = browser.find_element(By.ID, "step-column")
    assert step.get_attribute("data-state") == "succeeded"
    assert browser.find_element(By.CSS_SELECTOR, '#dag g[data-step="column"]').get_attribute("data-state") == "succeeded"
    figure = wait.until(lambda d: next((img for img in d.find_elements(By.CSS_SELECTOR, "#step-column img.figure")
                                        if d.execute_script("return arguments[0].complete && "
                                                            "arguments[0].naturalWidth", img)), None))
    assert figure.get_attribute("data-output") == "figure"
    assert browser.execute_script("return arguments[0].naturalWidth", figure) > 100
    links = [a.get_attribute("data-output") for a in step.find_elements(By.CSS_SELECTOR, "a.download")]
    assert {"figure", "summary", "report"} <= set(links)
    row = browser.find_element(By.CSS_SELECTOR, f'#jobs-body tr[data-job="{job["id"]}"]')
    wait.until(lambda d: row.get_attribute("data-state") == "succeeded")
    browser.save_screenshot(str(gateway.process.log_path.parent / "page.png"))
