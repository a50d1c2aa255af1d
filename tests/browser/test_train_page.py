"""End to end in Chromium: train digits-cnn live, watch the curves grow and the progress reach
100 %, reload and find the run again, open it as the current model; refusals in plain words.

Set GLASSBOX_SCREENSHOTS to a folder to keep screenshots of the page running and finished.
"""
import io
import os
import zipfile
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.helpers import upload_file, assert_no_exception, open_app, wait_for_app

TRAIN_PAGE = "train"
RUN_S = 240  # generous: only a hung worker or server should reach it (ms below)


def _sidebar(page):
    return page.get_by_test_id("stSidebar")


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("GLASSBOX_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1400, "height": 2600})  # the app scrolls inside: show it all
        page.wait_for_timeout(1000)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))
        page.set_viewport_size({"width": 1400, "height": 1000})


def _open_new_run_fold(page) -> None:
    """The data and settings fold is closed whenever a run is on show: open it."""
    fold = page.locator(".st-key-train_setup details").first
    if fold.get_attribute("open") is None:
        fold.locator("summary").click()
        wait_for_app(page)


def _set_number(page, key: str, value) -> None:
    """Type ``value`` and press Enter; typed again if a rerun still under way replaced it (a busy
    machine), so the test goes on with the number it meant."""
    field = page.locator(f".st-key-{key} input")
    for _attempt in range(3):
        field.fill(str(value))
        field.press("Enter")
        wait_for_app(page, settle_ms=800)
        if field.input_value() == str(value):
            return
    expect(field).to_have_value(str(value))


def _choose(page, key: str, option: str) -> None:
    box = page.locator(f".st-key-{key} input")
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app(page)


def _curve_points(page) -> int:
    """Points of the live training-loss line, read from the Plotly figure in the page."""
    return page.evaluate("""() => {
        const plot = document.querySelector('.st-key-train_curves .js-plotly-plot');
        return plot && plot.data && plot.data[0] && plot.data[0].x ? plot.data[0].x.length : 0;
    }""")


def _progress_bar(page):
    """The run's progress bar. While a script run redraws the page, the previous run's elements
    linger, marked stale, until it ends: they are left out."""
    return page.locator("[data-stale=false] [data-testid=stProgress]").first


def _progress(page) -> int:
    """The progress in percent."""
    return int(float(_progress_bar(page).get_by_role("progressbar").get_attribute("aria-valuenow") or 0))


def _wait_until(page, condition, what: str, timeout_s: float = RUN_S) -> None:
    for _ in range(int(timeout_s * 4)):
        if condition():
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_live_run_grows_finishes_survives_a_reload_and_opens(app_server, page):
    open_app(page, app_server, TRAIN_PAGE)
    _open_new_run_fold(page)
    expect(page.locator(".st-key-train_dataset input")).to_have_value("digits")
    # Long enough (about 18,000 small steps, 10-20 s here) that the page polls it many times:
    # a training worker with its own core does ~1,000 steps a second.
    _set_number(page, "train_hp_epochs", 200)
    _set_number(page, "train_hp_batch_size", 16)
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled(timeout=30_000)
    page.get_by_role("button", name="Train", exact=True).click()
    wait_for_app(page)

    status = page.get_by_test_id("stAlertContentInfo").filter(has_text="Running on ")  # cpu, or a GPU
    expect(status).to_be_visible(timeout=RUN_S * 1000)
    _wait_until(page, lambda: _curve_points(page) > 0, "the first points of the curves")
    first = _curve_points(page)
    _wait_until(page, lambda: _curve_points(page) > first, "the curves to grow")
    expect(_progress_bar(page)).to_contain_text("samples/s")
    _screenshot(page, "train-running")
    run_caption = page.get_by_text("Run 2", exact=False).first.inner_text()  # "Run 20261124-..."
    assert_no_exception(page)

    # A reload is a new session: it finds the same run and follows it.
    page.reload()
    wait_for_app(page)
    expect(page.get_by_text(run_caption, exact=True)).to_be_visible()
    _wait_until(page, lambda: _progress(page) == 100, "the progress to reach 100 %")
    expect(page.get_by_test_id("stAlertContentSuccess").filter(has_text="Finished:")).to_be_visible(
        timeout=RUN_S * 1000)
    expect(_progress_bar(page)).to_contain_text("epoch 200/200")
    expect(page.get_by_text("Confusion matrix")).to_be_visible()
    expect(page.get_by_text("Mistakes")).to_be_visible()
    # The run ended while this session watched it: its model is now the current model.
    expect(page.get_by_text("Training finished. The current model is now digits-cnn")).to_be_visible()
    _screenshot(page, "train-finished")
    assert_no_exception(page)

    # Another model becomes current; opening the run from the list brings the trained one back.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Model").click()
    wait_for_app(page)
    _choose(page, "preset", "sentiment-gru")
    page.get_by_role("button", name="Use this model").click()
    wait_for_app(page)
    expect(_sidebar(page)).to_contain_text("sentiment-gru · GRU")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
    wait_for_app(page)
    expect(page.get_by_text(run_caption, exact=True)).to_be_visible()  # still the run this session follows
    runs = page.get_by_test_id("stDataFrame").filter(has=page.locator("td[role=gridcell]", has_text="finished"))
    expect(runs.locator("td[role=gridcell]", has_text="digits-cnn (CNN)").first).to_be_attached()
    page.locator(".st-key-train_open_run").get_by_role("button", name="Open").click()
    wait_for_app(page)
    expect(_sidebar(page)).to_contain_text("digits-cnn · CNN · 18,346 parameters")
    expect(page.get_by_test_id("stAlertContentSuccess").filter(has_text="The current model is now digits-cnn")
           ).to_be_visible()
    assert_no_exception(page)


def _zip_of_one_class() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(6):
            archive.writestr(f"cats/{i}.txt", "not a picture")
    return buffer.getvalue()


def test_data_that_cannot_be_used_is_refused_in_plain_words(app_server, page):
    open_app(page, app_server, TRAIN_PAGE)
    _open_new_run_fold(page)
    _choose(page, "train_dataset", "sentiment")  # the current model is a CNN: it reads pictures
    expect(page.get_by_test_id("stAlertContentError").filter(has_text="cannot train on sentences")).to_be_visible()
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    _choose(page, "train_dataset", "my own data (upload)…")
    upload_file(page, "train_data_upload", "cats.zip", _zip_of_one_class(), "application/zip")
    expect(page.get_by_test_id("stAlertContentError").first).to_contain_text("No pictures could be read")
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    assert_no_exception(page)
