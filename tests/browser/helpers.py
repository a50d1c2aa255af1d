"""Helpers for browser tests: waiting for Streamlit to finish a script run.

Streamlit marks its root element with the connection and script state; a run goes
"initial" -> "running" -> "notRunning" (the same signal Streamlit's own e2e tests use).
"""

from playwright.sync_api import Page, expect

APP = "[data-testid=stApp]"
APP_CONNECTED = f"{APP}[data-test-connection-state=CONNECTED]"
APP_IDLE = f"{APP}[data-test-script-state=notRunning]"


def wait_for_app(page: Page, timeout_ms: float = 60_000, settle_ms: float = 250) -> None:
    """Wait until the app is connected and no script run is in progress.

    `settle_ms` first gives a just-clicked widget time to send its rerun (some widgets
    debounce), so that the page is not caught in the idle state before the rerun starts.
    """
    page.wait_for_timeout(settle_ms)
    page.wait_for_selector(APP_CONNECTED, state="attached", timeout=timeout_ms)
    page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout_ms)


def open_app(page: Page, base_url: str, path: str = "", timeout_ms: float = 60_000) -> None:
    """Load `base_url/path` (a page's url_path, or "" for the home page) and wait for its run."""
    page.goto(f"{base_url.rstrip('/')}/{path.lstrip('/')}", timeout=timeout_ms)
    wait_for_app(page, timeout_ms=timeout_ms)


def assert_no_exception(page: Page) -> None:
    """Fail if the page shows an uncaught exception box (its details go to the server log)."""
    expect(page.locator("[data-testid=stException]")).to_have_count(0)


def upload_file(page: Page, key: str, name: str, data: bytes, mime: str = "application/octet-stream") -> None:
    """Hand ``name`` to the file uploader with widget key ``key`` and wait until the page has read
    it. A file given while a rerun replaces the uploader is dropped by the browser, so it is
    given again then (at most three times)."""
    uploader = page.locator(f".st-key-{key}")
    for _attempt in range(3):
        wait_for_app(page)
        uploader.locator("input[type=file]").set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])
        try:
            expect(uploader.get_by_text(name)).to_be_visible(timeout=10_000)
            break
        except AssertionError:
            continue
    wait_for_app(page, settle_ms=800)
