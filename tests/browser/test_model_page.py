"""End to end in Chromium: pick a preset, save it, load it back, and refuse a malicious file."""
import io
import pickle
import zipfile

import pytest
from playwright.sync_api import expect

from models import presets
from models.checkpoint import load_checkpoint
from tests.browser.helpers import upload_file, assert_no_exception, open_app, wait_for_app

MODEL_PAGE = "model"


class _CreatesAFile:
    """Unpickling this would run code: it would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _choose_preset(page, name: str) -> None:
    box = page.locator(".st-key-preset input")
    box.click()
    box.fill(name)  # typing filters the options
    page.get_by_role("option", name=name, exact=True).click()
    wait_for_app(page)


def _upload(page, name: str, data: bytes) -> None:
    upload_file(page, "upload", name, data)


def _cell(grid, text: str):
    """A cell of a data grid: the canvas is drawn, but the grid keeps an accessible table copy."""
    return grid.locator("td[role=gridcell]", has_text=text).first


def _sidebar(page):
    return page.get_by_test_id("stSidebar")


def test_home_links_to_the_model_page(app_server, page):
    open_app(page, app_server)
    expect(page.get_by_role("heading", name="Glassbox")).to_be_visible()
    expect(_sidebar(page)).to_contain_text("digits-cnn · CNN · 18,346 parameters")
    page.get_by_test_id("stPageLink-NavLink").filter(has_text="Model").first.click()
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Model", exact=True)).to_be_visible()
    assert_no_exception(page)


def test_preset_download_upload_round_trip_and_malicious_file(app_server, page, tmp_path):
    open_app(page, app_server, MODEL_PAGE)
    _choose_preset(page, "sentiment-gru")
    spec = presets.get("sentiment-gru")
    total = f"{spec.parameter_count():,}"
    # The layer table for the chosen preset, with its total, before anything is built.
    shapes = page.get_by_test_id("stDataFrame").last  # the grid keeps an accessible copy of its cells
    expect(_cell(shapes, "rnn.0")).to_be_attached()
    expect(_cell(shapes, "GRU 32 → 64")).to_be_attached()
    metric = page.get_by_test_id("stMetricValue")
    expect(metric).to_have_text(total)
    page.get_by_role("button", name="Use this model").click()
    wait_for_app(page)
    expect(_sidebar(page)).to_contain_text(f"sentiment-gru · GRU · {total} parameters")

    # Download the checkpoint: a real Glassbox zip that loads to the same design.
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the current model").click()
    download = info.value
    assert download.suggested_filename == "sentiment-gru.zip"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert load_checkpoint(saved).spec == spec
    data = saved.read_bytes()

    # Switch to another model, then upload the file: the same model comes back.
    _choose_preset(page, "digits-cnn")
    page.get_by_role("button", name="Use this model").click()
    wait_for_app(page)
    expect(_sidebar(page)).to_contain_text("digits-cnn · CNN")
    _upload(page, "sentiment-gru.zip", data)
    expect(page.get_by_text("It is now the current model.")).to_be_visible()
    expect(_sidebar(page)).to_contain_text(f"sentiment-gru · GRU · {total} parameters")
    expect(metric).to_have_text(total)

    # A pickle that would create a file when loaded: refused in plain words, nothing created.
    marker = tmp_path / "pwned.txt"
    evil = pickle.dumps({"conv.0.conv.weight": _CreatesAFile(marker)})
    _upload(page, "weights.pt", evil)
    page.get_by_role("button", name="Load weights").click()
    wait_for_app(page)
    alert = page.get_by_test_id("stAlertContentError").filter(has_text="Python objects")
    expect(alert).to_be_visible()
    assert not marker.exists()
    assert_no_exception(page)

    # A zip that tries to escape its folder: refused too.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../spec.json", "{}")
    _upload(page, "escape.zip", buffer.getvalue())
    expect(page.get_by_test_id("stAlertContentError").first).to_be_visible()

    # The app still works: the current model is unchanged and a preset can still be chosen.
    expect(_sidebar(page)).to_contain_text("sentiment-gru · GRU")
    _choose_preset(page, "shapes-vit")
    expect(metric).to_have_text(f"{presets.get('shapes-vit').parameter_count():,}")
    expect(_cell(shapes, "blocks.1")).to_be_attached()
    assert_no_exception(page)


@pytest.mark.parametrize("kernel", [40])
def test_invalid_design_shows_a_plain_message(app_server, page, kernel):
    open_app(page, app_server, MODEL_PAGE)
    _choose_preset(page, "digits-cnn")
    # Make the input too small for the layers: 2×2 pixels cannot take a 3×3 kernel twice.
    height = page.locator(".st-key-edit_input_height input")
    height.fill("2")
    height.press("Enter")
    wait_for_app(page)
    expect(page.get_by_test_id("stAlertContentError").first).to_contain_text("is larger than its")
    expect(page.get_by_role("button", name="Use this model")).to_be_disabled()
    assert_no_exception(page)
