"""The gradebook page (pose_course/instructor/gradebook/server.py) in headless Chromium, as a grader uses it:
open the list, mark the written answer of two students with points and a comment, reload, see the marks
kept, and find them in grades.csv's totals. Also: a student's answer that holds HTML shows as text, and a
form posted without the page's token (another web site) changes nothing.

Needs Debian's chromium and chromium-driver (lab_driver.find_browser); fails, not skips, without them.
Screenshots go to $POSE_UTILS_BROWSER_ARTIFACTS or outputs/browser/ (gradebook-*.png).
"""

import csv
import io
import os
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab_driver  # noqa: E402
from test_gradebook import ANSWERS, fake_batch  # noqa: E402

from pose_course.instructor.gradebook.server import serve  # noqa: E402

REPO = Path(__file__).resolve().parents[4]


def artefact_dir() -> Path:
    path = Path(os.environ.get("POSE_UTILS_BROWSER_ARTIFACTS") or REPO / "outputs" / "browser")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _wait_for_text(driver, element_id: str, text: str, timeout: float = 20) -> None:
    """Until the page (after a form's POST and redirect) shows `text` in #element_id: a click returns before
    the next page has loaded, so reading at once may find the old page or none."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        expected_conditions.text_to_be_present_in_element((By.ID, element_id), text),
        f"#{element_id} never said {text!r}")


def test_marking_two_students_in_the_browser(tmp_path):
    from selenium.webdriver.common.by import By

    chromium, chromedriver = lab_driver.find_browser()
    instructor, out = fake_batch(tmp_path)
    started, stop = [], threading.Event()
    server = threading.Thread(target=serve, args=(out, instructor),
                              kwargs={"port": 0, "ready": started.append, "stop": stop}, daemon=True)
    server.start()
    for _ in range(1200):  # reading the instructor's notebooks first: seconds on a busy machine
        if started or not server.is_alive():
            break
        server.join(0.05)
    assert started, "the gradebook server did not start"
    url = started[0]
    driver = lab_driver.start_browser(chromium, chromedriver, profile=tmp_path / "profile")
    driver.implicitly_wait(20)  # a link's click returns before the next page has loaded
    try:
        driver.get(url)
        page = driver.find_element(By.TAG_NAME, "body").text
        assert "3 submissions; 3 written answers still to mark" in page
        for name, points, comment in (("ada", "1.5", "Right; now say why it holds."),
                                      ("bob", "2", "Clear and complete.")):
            driver.get(url)
            driver.find_element(By.LINK_TEXT, name).click()
            section = driver.find_element(By.ID, "answer-why")
            assert ANSWERS[name] in section.find_element(By.CLASS_NAME, "text").text  # shown as text
            assert "Addition commutes" in section.find_element(By.CLASS_NAME, "rubric").text
            box = section.find_element(By.NAME, "points")
            box.clear()
            box.send_keys(points)
            section.find_element(By.NAME, "comment").send_keys(comment)
            section.find_element(By.TAG_NAME, "button").click()
            _wait_for_text(driver, "notice", "Saved why.")
        driver.save_screenshot(str(artefact_dir() / "gradebook-submission.png"))
        driver.refresh()  # kept after a reload, and on the list
        section = driver.find_element(By.ID, "answer-why")
        assert section.find_element(By.NAME, "points").get_attribute("value") == "2"
        assert section.find_element(By.NAME, "comment").get_attribute("value") == "Clear and complete."
        driver.get(url)
        totals = {row.get_attribute("id")[4:]: row.find_element(By.CLASS_NAME, "total").text
                  for row in driver.find_elements(By.CSS_SELECTOR, "tr[id^=row-]")}
        assert totals == {"ada": "7.5 / 8", "bob": "5 / 8", "cy": "3 / 8"}
        driver.save_screenshot(str(artefact_dir() / "gradebook-list.png"))
        logged = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert logged == []  # no script ran (bob's answer holds a <script>), nothing failed to load
        # a bad value is refused with one line on the page, and nothing changes
        driver.find_element(By.LINK_TEXT, "cy").click()
        box = driver.find_element(By.NAME, "points")
        driver.execute_script("arguments[0].removeAttribute('max')", box)
        box.send_keys("9")
        driver.find_element(By.TAG_NAME, "button").click()
        _wait_for_text(driver, "error", "points must be a number from 0 to 2, got 9")
    finally:
        driver.quit()
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}
    assert [(rows[n]["why"], rows[n]["total"]) for n in ("ada", "bob", "cy")] == \
        [("1.5", "7.5"), ("2", "5"), ("", "3")]
    assert "Clear and complete." in (out / "bob" / "feedback.md").read_text()
    # another site's form: no token, foreign origin
    request = urllib.request.Request(url + "s/cy", data=b"grade_id=why&points=2&comment=x", method="POST",
                                     headers={"Origin": "http://evil.example"})
    try:
        urllib.request.urlopen(request, timeout=10)
        refused = None
    except urllib.error.HTTPError as e:
        refused = e.code
    assert refused == 403 and "cy" not in (out / "marks.json").read_text()
    stop.set()
    server.join(10)
