"""End to end in a real headless Chromium against ``drscreen serve`` with the shipped model and the
real Screener (explanations on): sign in, upload a good and a bad photograph, wait for the job,
see the grade and the rejection reason, toggle an overlay, find the image in the history, sign out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from serve_helpers import PASSWORD, ServerProcess, chromium, create_user_cli

SCREENING_TIMEOUT = 240


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    driver = chromium(tmp_path / "profile")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    data_dir = tmp_path / "site"
    create_user_cli(data_dir)
    process = ServerProcess(data_dir, workers=1).start()
    yield process
    process.stop()


def test_screen_a_photograph_in_the_browser(browser, server: ServerProcess, good_photo: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "scan.jpg"
    bad.write_text("this is a referral letter, not a photograph")
    wait = WebDriverWait(browser, 30)

    browser.get(f"{server.url}/history")  # signed out: the sign-in form, then back to the history
    browser.find_element(By.ID, "username").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()
    wait.until(expected_conditions.url_to_be(f"{server.url}/history"))

    browser.get(f"{server.url}/upload")
    browser.find_element(By.ID, "patient-id").send_keys("E2E-001")
    browser.find_element(By.CSS_SELECTOR, 'input[name="laterality"][value="R"]').click()
    browser.find_element(By.ID, "file-input").send_keys(f"{good_photo}\n{bad}")
    button = browser.find_element(By.ID, "upload-button")
    assert button.text == "Screen 2 photographs"
    button.click()

    def outcomes(driver) -> dict[str, str] | bool:  # type: ignore[no-untyped-def]
        rows = driver.find_elements(By.CSS_SELECTOR, "#queue tr.upload-row")
        states = {
            row.find_element(By.CSS_SELECTOR, "td").text: row.find_element(By.CSS_SELECTOR, "td.status").text
            for row in rows
        }
        finished = len(states) == 2 and all(s.startswith(("DR ", "Rejected", "Ungradable")) for s in states.values())
        return states if finished else False

    states = WebDriverWait(browser, SCREENING_TIMEOUT, poll_frequency=0.5).until(outcomes)
    assert states[good_photo.name].startswith("DR "), states
    assert states[bad.name] == "Rejected: not an image file in any known format"

    browser.find_element(By.CSS_SELECTOR, "a.result-link").click()
    wait.until(expected_conditions.presence_of_element_located((By.ID, "dr-grade")))
    assert "DR grade" in browser.find_element(By.ID, "dr-grade").text
    assert browser.find_element(By.ID, "referable").text.split("\n")[0] in ("Referable", "Not referable")
    lesions, saliency = browser.find_element(By.ID, "layer-lesions"), browser.find_element(By.ID, "layer-saliency")
    assert lesions.is_displayed() and not saliency.is_displayed()
    browser.find_element(By.ID, "toggle-saliency").click()
    browser.find_element(By.ID, "toggle-lesions").click()
    assert saliency.is_displayed() and not lesions.is_displayed()
    slider = browser.find_element(By.CSS_SELECTOR, '[data-opacity="saliency"]')
    browser.execute_script("arguments[0].value = 25; arguments[0].dispatchEvent(new Event('input'))", slider)
    assert saliency.value_of_css_property("opacity") == "0.25"

    browser.get(f"{server.url}/history")
    search = browser.find_element(By.ID, "search-patient")
    search.send_keys("E2E")
    search.submit()
    wait.until(expected_conditions.presence_of_element_located((By.ID, "history-table")))
    links = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#history-table a.file-link")]
    assert links == [good_photo.name]

    browser.find_element(By.ID, "sign-out").click()
    wait.until(expected_conditions.url_to_be(f"{server.url}/login"))
    browser.get(f"{server.url}/history")
    assert browser.find_elements(By.ID, "sign-in") and not browser.find_elements(By.ID, "history-table")
