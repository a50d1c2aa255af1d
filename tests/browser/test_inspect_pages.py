"""End to end in Chromium: the Inspect pages on a picture the user uploads or draws, and on
sentences the user types; bad input is refused in words and the page goes on.

Set GLASSBOX_SCREENSHOTS to a folder to keep screenshots of each page.
"""
import io
import os
from pathlib import Path

from PIL import Image, ImageDraw
from playwright.sync_api import expect

from tests.browser.helpers import upload_file, assert_no_exception, open_app, wait_for_app


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("GLASSBOX_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1400, "height": 3200})
        page.wait_for_timeout(1000)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))
        page.set_viewport_size({"width": 1400, "height": 1000})


def _plot(page, key: str) -> dict:
    """The traces of the Plotly figure drawn with widget key ``key`` (dots become dashes in the
    element's class): their number, type, and the labels on their axes."""
    selector = f".st-key-{key.replace('.', '-')} .js-plotly-plot"
    page.wait_for_selector(selector, timeout=30_000)
    return page.evaluate("""(selector) => {
        const plot = document.querySelector(selector);
        return {traces: plot.data.length, types: plot.data.map(t => t.type),
                names: plot.data.map(t => t.name || ''), x: plot.data[0].x ? Array.from(plot.data[0].x) : [],
                y: plot.data[0].y ? Array.from(plot.data[0].y) : [],
                text: plot.data.map(t => t.text ? Array.from(t.text) : [])};
    }""", selector)


def _choose_source(page, label: str) -> None:
    page.get_by_role("radio", name=label, exact=True).click()
    wait_for_app(page)


def _use_preset(page) -> None:
    """On a page for another kind of model: make this page's preset the current model."""
    page.locator(".st-key-inspect_use_preset button").first.click()
    wait_for_app(page)


def _type(page, key: str, text: str) -> None:
    box = page.locator(f".st-key-{key} textarea")
    box.fill(text)
    box.press("Control+Enter")  # a text area sends its value on Ctrl+Enter (or when it loses focus)
    wait_for_app(page, settle_ms=600)


def _png(draw) -> bytes:
    picture = Image.new("RGB", (200, 160), "white")
    draw(ImageDraw.Draw(picture))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def test_an_uploaded_picture_shows_its_feature_maps_and_bad_files_are_refused(app_server, page):
    open_app(page, app_server, "inspect_cnn")
    _choose_source(page, "Upload a picture")
    seven = _png(lambda pen: pen.line([(60, 30), (140, 30), (90, 140)], fill="black", width=14))
    upload_file(page, "cnn_upload", "seven.png", seven, "image/png")
    expect(page.get_by_text("upload: seven.png · 200×160")).to_be_visible()
    expect(page.get_by_text("what the model receives · 16×16")).to_be_visible()
    maps = _plot(page, "conv.0_pre")
    assert maps["traces"] == 8 and set(maps["types"]) == {"heatmap"}  # digits-cnn's 8 channels
    expect(page.get_by_text("The model says")).to_be_visible()
    page.get_by_role("tab", name="Pool 1").click()
    wait_for_app(page)  # only the open tab is drawn: switching reruns the page
    pooled = _plot(page, "pool.0_pool")
    assert pooled["traces"] == 2  # its input next to its output
    _screenshot(page, "inspect-cnn-upload")
    assert_no_exception(page)

    upload_file(page, "cnn_upload", "notes.png", b"my notes, not a picture", "image/png")
    expect(page.get_by_text("'notes.png' is not a picture: use a PNG, JPEG, WebP, BMP or GIF file.")).to_be_visible()
    _choose_source(page, "An example from the data")  # the page goes on, on the tab left open
    assert _plot(page, "pool.0_maps")["traces"] == 8
    assert_no_exception(page)


def test_a_drawn_digit_goes_through_the_network(app_server, page):
    open_app(page, app_server, "inspect_cnn")
    _choose_source(page, "Draw")
    canvas = page.locator("canvas[aria-label='drawing canvas']")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 140, box["y"] + 50)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(box["x"] + 140, box["y"] + 50 + step * 9)
    page.mouse.up()
    wait_for_app(page, settle_ms=800)
    expect(page.get_by_text("your drawing · 280×280")).to_be_visible()
    assert _plot(page, "conv.0_post")["traces"] == 8
    assert_no_exception(page)


def test_typed_sentences_show_attention_and_hidden_state_paths(app_server, page):
    open_app(page, app_server, "inspect_attention")
    _use_preset(page)  # the session starts on digits-cnn
    _type(page, "attention_text", "the film was not good")
    grid = _plot(page, "attention_grid")
    assert grid["types"].count("heatmap") == 2 * 4  # sentiment-transformer: 2 blocks × 4 heads (and a click target each)
    head = _plot(page, "attention_head_map")
    assert head["y"] == ["[CLS]", "the", "film", "was", "not", "good"]
    assert head["x"] == head["y"]
    _screenshot(page, "inspect-attention")
    assert_no_exception(page)

    page.get_by_role("link", name="Hidden states").click()
    wait_for_app(page)
    _use_preset(page)
    _type(page, "rnn_text", "the film was good\nthe film was not good")
    paths = _plot(page, "rnn_trajectory")
    sentences = [name for name in paths["names"] if name.startswith("the film")]
    assert sentences == ["the film was good", "the film was not good"]
    labelled = [text for text in paths["text"] if text]
    assert ["the", "film", "was", "not", "good"] in labelled  # each point labelled with its word
    expect(page.get_by_text("One step, with the numbers")).to_be_visible()
    _screenshot(page, "inspect-rnn")
    assert_no_exception(page)
