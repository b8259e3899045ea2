"""The Space's app in a real browser: headless Chromium on the app served on 127.0.0.1 submits the bundled samples'
queries and uploads, and reads the answers from the rendered page. Each result's screenshot is saved under
build/test-artifacts/space/."""

import json
import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gve_tools.repo import BUNDLED_MODEL, BUNDLED_SAMPLES
from gve_tools.video_search import load_queries, load_searcher
from tests.space.conftest import ARTIFACTS

pytestmark = pytest.mark.slow  # the app's start and the model's load: about a minute on 2 cores

VIDEOS = BUNDLED_SAMPLES / "videos"
WAIT = 90  # seconds for an answer (2 cores shared with other work)


def wanted(kind: str, moment: bool = False):
    """The first bundled sample query of `kind` (naming a moment or a whole video)."""
    queries = load_queries(BUNDLED_SAMPLES / "queries.json")
    return next(q for q in queries if q.kind == kind and (q.expected_span is not None) == moment)


CASES = {
    "text": wanted("text"),
    "image": wanted("image"),
    "video": wanted("video"),
    "composed": wanted("text + image"),
    "moment": wanted("text", moment=True),
}


@pytest.fixture(scope="module")
def job_results(tmp_path_factory):
    """The main job's answers to the cases (its own Searcher, over the same samples), to hold the page to."""
    searcher = load_searcher(str(BUNDLED_MODEL))
    index = searcher.index(VIDEOS, tmp_path_factory.mktemp("job-cache"))
    results = searcher.answer(index, VIDEOS, list(CASES.values()), top_k=5)
    return dict(zip(CASES, results, strict=True))


def status(driver) -> str:
    return driver.find_element(By.ID, "status").text


def open_app(driver, url: str) -> None:
    """A fresh page, once the app says what it searches."""
    driver.get(url)
    WebDriverWait(driver, WAIT).until(lambda d: "Searching" in status(d))


def attach(driver, field: str, path, shown: str) -> None:
    """Put a file in one of the page's upload fields, and wait until the page shows it (`shown`: a CSS selector)."""
    driver.find_element(By.CSS_SELECTOR, f"#{field} input[type=file]").send_keys(str(path))
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{field} {shown}"))


def submit(driver, query) -> None:
    """Fill the form with a query's parts and search."""
    if query.text:
        driver.find_element(By.CSS_SELECTOR, "#query-text textarea").send_keys(query.text)
    if query.image:
        attach(driver, "query-image", query.image, "img")
    if query.video:
        attach(driver, "query-video", query.video, "video")
    if query.instruction:
        driver.find_element(By.XPATH, "//button[contains(., 'Instruction and results')]").click()
        field = WebDriverWait(driver, WAIT).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "#query-instruction textarea")
        )
        WebDriverWait(driver, WAIT).until(lambda d: field.is_displayed())
        field.send_keys(query.instruction)
    driver.find_element(By.ID, "search").click()


def ranked(driver) -> list[tuple[str, float]]:
    """The page's ranking: each row's video and score, once the results are shown."""
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results table td"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#results table tr")[1:]
    return [
        (
            row.find_element(By.CSS_SELECTOR, "td:nth-child(3) a").text,
            float(row.find_element(By.CSS_SELECTOR, "td:nth-child(2)").text),
        )
        for row in rows
    ]


def requests_beyond(driver, url: str) -> list[str]:
    """The page's network requests (since the last call) to anywhere but the app: none should be made."""
    sent = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    urls = [m["params"]["request"]["url"] for m in sent if m["method"] == "Network.requestWillBeSent"]
    return [u for u in urls if not u.startswith((url, "data:", "blob:"))]


@pytest.mark.parametrize("case", list(CASES))
def test_a_sample_query_ranks_as_the_main_job_on_the_page(case, served, browser, job_results):
    url, _ = served
    query, expected = CASES[case], job_results[case]
    open_app(browser, url)
    submit(browser, query)
    page = ranked(browser)
    table = browser.find_element(By.CSS_SELECTOR, "#results table")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", table)  # the ranking in the picture
    browser.save_screenshot(str(ARTIFACTS / f"query-{case}.png"))
    assert [name for name, _ in page] == [hit.video for hit in expected.hits]
    assert [score for _, score in page] == pytest.approx([hit.score for hit in expected.hits], abs=2e-4)
    names = [name for name, _ in page]
    assert names[0] == query.expected, f"{query.name}: {names}"
    if case == "moment":  # the best segment's range, and a player from its start
        start, end = expected.hits[0].span
        assert expected.moment_first
        row = browser.find_element(By.CSS_SELECTOR, "#results table tr:nth-child(2)")
        assert row.find_element(By.CSS_SELECTOR, ".range").get_attribute("data-start") == f"{start:g}"
        player = row.find_element(By.CSS_SELECTOR, "video")
        assert player.get_attribute("src").endswith(f"#t={start:g},{end:g}")
        played = "return arguments[0].readyState >= 1 && Math.abs(arguments[0].currentTime - arguments[1]) < 0.1"
        WebDriverWait(browser, WAIT).until(lambda d: d.execute_script(played, player, start))  # served, from its start
        assert len(row.find_elements(By.CSS_SELECTOR, ".strip img")) > 1
    assert requests_beyond(browser, url) == []


def test_bad_uploads_are_refused_in_the_page_and_the_app_keeps_serving(served, browser, tmp_path):
    url, workdir = served
    notes = tmp_path / "notes.mp4"
    notes.write_text("a text file, not a video\n")
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * 300_000)  # over the served app's 200,000 bytes
    good = BUNDLED_SAMPLES / "queries" / "green_square_top.mp4"

    open_app(browser, url)
    browser.find_element(By.CSS_SELECTOR, "#uploads input[type=file]").send_keys(str(notes))
    WebDriverWait(browser, WAIT).until(lambda d: "Refused" in status(d))
    assert re.search(r"Refused\s+notes\.mp4\s*: not a readable video", status(browser))
    browser.save_screenshot(str(ARTIFACTS / "upload-not-a-video.png"))

    open_app(browser, url)
    browser.find_element(By.CSS_SELECTOR, "#uploads input[type=file]").send_keys(str(big))
    WebDriverWait(browser, WAIT).until(lambda d: "maximum allowed size" in d.find_element(By.TAG_NAME, "body").text)
    assert '"big.mp4"' in browser.find_element(By.TAG_NAME, "body").text  # Gradio's refusal, before sending it
    browser.save_screenshot(str(ARTIFACTS / "upload-too-big.png"))

    open_app(browser, url)
    browser.find_element(By.CSS_SELECTOR, "#uploads input[type=file]").send_keys(
        "\n".join(map(str, [good, notes, good, good]))
    )
    WebDriverWait(browser, WAIT).until(lambda d: "Refused" in status(d))
    assert "4 files uploaded: at most 3 can be searched at a time" in status(browser)
    browser.save_screenshot(str(ARTIFACTS / "upload-too-many.png"))

    submit(browser, CASES["text"])  # still serving, the samples
    assert ranked(browser)[0][0] == CASES["text"].expected

    open_app(browser, url)  # a good clip with a bad one: the good one is searched
    browser.find_element(By.CSS_SELECTOR, "#uploads input[type=file]").send_keys(f"{good}\n{notes}")
    WebDriverWait(browser, WAIT).until(lambda d: "your uploaded clips" in status(d))
    assert "Searching 1 video: your uploaded clips" in status(browser) and "notes.mp4" in status(browser)
    submit(browser, CASES["text"])
    assert [name for name, _ in ranked(browser)] == ["green_square_top.mp4"]
    assert requests_beyond(browser, url) == []
