"""Fixtures of the Space's tests: the app (space/app.py) as a module, the app served on a free loopback port, and
headless Chromium (Debian's, driven by Selenium) pointed at it."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from gve_tools.loopback import free_port
from gve_tools.repo import ROOT
from tests.servers import started

SPACE = ROOT / "space"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "build" / "test-artifacts" / "space"
# The served app's upload limits: small, so that the tests' files can break them.
LIMITS = {"--max-uploads": "3", "--max-upload-bytes": "200000", "--max-upload-seconds": "30"}
START_TIMEOUT = 180  # seconds for the app to load the model and serve (2 shared cores)


def load_app():
    """space/app.py as a module (the Space's folder is not a package: on a Space, app.py is at its root)."""
    spec = importlib.util.spec_from_file_location("space_app", SPACE / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def app_module():
    return load_app()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app, started with its own command on a free port of 127.0.0.1 and stopped after: (its URL, its workdir)."""
    workdir = tmp_path_factory.mktemp("space")
    port = free_port()
    command = [sys.executable, str(SPACE / "app.py"), "--port", str(port), "--workdir", str(workdir)]
    command += [part for option in LIMITS.items() for part in option]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    url = f"http://127.0.0.1:{port}/"
    with started(command, url, workdir / "app.log", START_TIMEOUT, "the app", cwd=ROOT, env=env):
        yield url, workdir


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium with the page's network requests logged; the system's browser and driver, never a
    download (Selenium Manager offline)."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: run `make system` (Debian's chromium and chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1100",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
