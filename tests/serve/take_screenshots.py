"""Screenshots of the web app for docs/serve.md, from synthetic photographs (no patient data).

``python tests/serve/take_screenshots.py docs/images`` starts ``drscreen serve`` with the shipped
model, screens a few synthetic photographs through the browser and writes ``serve_*.png``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from serve_helpers import PASSWORD, ServerProcess, chromium, create_user_cli

from drscreen.synth import generate_fundus

#: (file name, seed, target DR grade, eye) of the synthetic photographs.
PHOTOS = (("P-0412_right.jpg", 11, 3, "R"), ("P-0412_left.jpg", 12, 0, "L"), ("P-0977_right.jpg", 21, 0, "R"))


def upload(driver, url: str, patient: str, eye: str, files: list[Path]) -> None:  # type: ignore[no-untyped-def]
    driver.get(f"{url}/upload")
    driver.find_element(By.ID, "patient-id").send_keys(patient)
    driver.find_element(By.CSS_SELECTOR, f'input[name="laterality"][value="{eye}"]').click()
    driver.find_element(By.ID, "file-input").send_keys("\n".join(str(f) for f in files))
    driver.find_element(By.ID, "upload-button").click()


def wait_finished(driver, count: int) -> None:  # type: ignore[no-untyped-def]
    def finished(d) -> bool:  # type: ignore[no-untyped-def]
        states = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#queue td.status")]
        return len(states) == count and all(s.startswith(("DR ", "Rejected", "Ungradable")) for s in states)

    WebDriverWait(driver, 600, poll_frequency=1).until(finished)


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="drscreen-shots-"))
    photos = {}
    for name, seed, grade, eye in PHOTOS:
        Image.fromarray(
            generate_fundus(seed=seed, size=768, target_dr=grade, eye={"R": "right", "L": "left"}[eye]).image
        ).save(work / name, quality=92)
        photos[name] = work / name
    (work / "referral_letter.jpg").write_text("Dear colleague, please see this patient.")
    create_user_cli(work / "site", "dr.okafor")
    server = ServerProcess(work / "site", workers=2).start()
    driver = chromium(work / "profile", 1440, 1000)
    try:
        driver.get(f"{server.url}/login")
        driver.save_screenshot(str(out_dir / "serve_login.png"))
        driver.find_element(By.ID, "username").send_keys("dr.okafor")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "sign-in").click()
        WebDriverWait(driver, 30).until(expected_conditions.url_contains("/upload"))
        upload(driver, server.url, "P-0977", "R", [photos["P-0977_right.jpg"]])
        wait_finished(driver, 1)
        upload(driver, server.url, "P-0412", "L", [photos["P-0412_left.jpg"]])
        wait_finished(driver, 1)
        upload(driver, server.url, "P-0412", "R", [photos["P-0412_right.jpg"], work / "referral_letter.jpg"])
        wait_finished(driver, 2)
        driver.save_screenshot(str(out_dir / "serve_upload.png"))
        driver.find_element(By.CSS_SELECTOR, "#queue a.result-link").click()
        WebDriverWait(driver, 30).until(expected_conditions.presence_of_element_located((By.ID, "dr-grade")))
        driver.find_element(By.ID, "toggle-landmarks").click()
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.5)
        driver.save_screenshot(str(out_dir / "serve_result.png"))
        driver.find_element(By.ID, "toggle-lesions").click()
        driver.find_element(By.ID, "toggle-saliency").click()
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.5)
        driver.save_screenshot(str(out_dir / "serve_result_saliency.png"))
        driver.get(f"{server.url}/patients/P-0412")
        driver.save_screenshot(str(out_dir / "serve_patient.png"))
        driver.get(f"{server.url}/history")
        driver.save_screenshot(str(out_dir / "serve_history.png"))
    finally:
        driver.quit()
        server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images"))
