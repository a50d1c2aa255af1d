"""Fixtures for real-browser tests: a live Streamlit server and headless Chromium.

    def test_home(app_server, page):
        open_app(page, app_server)          # from tests.browser.helpers
        expect(page).to_have_title(...)

Every test in this folder is marked `browser`. On a failure the page is screenshotted and
the tail of the server log (where tracebacks go: the page shows none) is added to the report.
"""

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; `playwright install` cannot download here
SERVER_START_TIMEOUT_S = 90
SERVER_LOG_TAIL_LINES = 60

_server_log_key = pytest.StashKey[Path]()
_screenshot_dir_key = pytest.StashKey[Path]()


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = SERVER_LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().strip() == b"ok"
    except OSError:  # connection refused, timeout, HTTP error while starting
        return False


def _die_with_parent() -> None:
    """Runs in the child before exec: if pytest is killed outright (SIGKILL, a CI timeout),
    the kernel sends the server SIGTERM instead of leaving it serving, orphaned."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: teardown still stops the server
        pass


def _stop(process: subprocess.Popen) -> None:
    # The server runs in its own process group, so training workers it spawned stop too.
    for sig, grace_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            pass


def _serve(request, tmp_path_factory, home_name: str = "glassbox_home", extra_env: dict | None = None):
    """Serve app.py on a free port with an empty GLASSBOX_HOME (and ``extra_env``); yields the
    base URL and the home."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    home = tmp_path_factory.mktemp(home_name)
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    request.config.stash.setdefault(_server_log_key, []).append(log_path)
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
    ]
    env = {**os.environ, "GLASSBOX_HOME": str(home), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    # Output goes to a file, not a pipe: a pipe nobody reads fills up and blocks the server.
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(f"{base_url}/_stcore/health"):
            if process.poll() is not None:
                pytest.fail(
                    f"streamlit exited with code {process.returncode} before serving:\n"
                    f"{_tail(log_path)}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(
                    f"streamlit not healthy after {SERVER_START_TIMEOUT_S}s:\n{_tail(log_path)}",
                    pytrace=False)
            time.sleep(0.3)
        yield base_url, home
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def app_server(request, tmp_path_factory):
    """Serve app.py on a free port with an empty GLASSBOX_HOME; yields the base URL."""
    for base_url, _home in _serve(request, tmp_path_factory):
        yield base_url


CLASS_PASSWORD = "teacher's secret 42"  # class_server's GLASSBOX_TEACHER_PASSWORD


@pytest.fixture(scope="session")
def class_server(request, tmp_path_factory):
    """Like app_server, for a class: GLASSBOX_TEACHER_PASSWORD is CLASS_PASSWORD. Yields the base
    URL, the server's GLASSBOX_HOME and the password."""
    for base_url, home in _serve(request, tmp_path_factory, "class_home", {"GLASSBOX_TEACHER_PASSWORD": CLASS_PASSWORD}):
        yield base_url, home, CLASS_PASSWORD


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium driven by Playwright's sync API."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; install it with `make chromium` "
                    "(apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",  # CI runs as root, where the sandbox refuses to start
                "--disable-gpu",
                # Containers often give /dev/shm only 64 MB; Debian's wrapper script
                # does not always add this flag itself.
                "--disable-dev-shm-usage",
                # No calls home: the test machine has no internet.
                "--disable-background-networking",
                "--disable-quic",
                "--no-first-run",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(request, browser, tmp_path_factory):
    """A fresh page (own context: cookies, downloads) at 1400x1000."""
    context = browser.new_context(accept_downloads=True,
                                  viewport={"width": 1400, "height": 1000})
    request.node.stash[_screenshot_dir_key] = tmp_path_factory.getbasetemp() / "screenshots"
    new_page = context.new_page()
    yield new_page
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        page = item.funcargs.get("page")
        shots = item.stash.get(_screenshot_dir_key, None)
        if page is not None and shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            shot = shots / (re.sub(r"[^\w.-]+", "_", item.nodeid) + ".png")
            try:
                page.screenshot(path=str(shot), full_page=True)
                report.sections.append(("screenshot", str(shot)))
            except Exception as error:  # the page or browser may be what broke
                report.sections.append(("screenshot", f"failed: {error}"))
        for log_path in item.config.stash.get(_server_log_key, []):
            report.sections.append((f"streamlit server log (tail) {log_path}", _tail(log_path)))
    return report
