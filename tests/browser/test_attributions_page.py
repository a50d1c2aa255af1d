"""End to end in Chromium: attributions of an uploaded picture by three methods, then a fourth."""
import io

from PIL import Image, ImageDraw
from playwright.sync_api import expect

from tests.browser.helpers import upload_file, assert_no_exception, open_app, wait_for_app
from tests.browser.test_inspect_pages import _screenshot


def _heatmaps(page) -> list[str]:
    """The titles of the attribution grid's heatmap tiles, read from the Plotly figure in the page."""
    selector = ".st-key-attr_grid .js-plotly-plot"
    page.wait_for_selector(selector, timeout=60_000)
    return page.evaluate("""(selector) => {
        const plot = document.querySelector(selector);
        return plot.data.filter(t => t.type === 'heatmap').map(t => t.name || '');
    }""", selector)


def test_an_uploaded_picture_explained_by_three_methods_then_four(app_server, page):
    open_app(page, app_server, "attributions")
    page.get_by_role("radio", name="Upload a picture", exact=True).click()
    wait_for_app(page)
    picture = Image.new("RGB", (120, 120), "white")
    ImageDraw.Draw(picture).ellipse((30, 20, 90, 100), outline="black", width=10)  # a zero
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    upload_file(page, "attr_upload", "zero.png", buffer.getvalue(), "image/png")
    expect(page.get_by_text("upload: zero.png · 120×120")).to_be_visible()
    assert len(_heatmaps(page)) == 3  # Saliency, Integrated Gradients and Grad-CAM by default
    expect(page.get_by_text("does it add up?")).to_be_visible()
    page.get_by_role("button", name="Occlusion", exact=True).click()  # a fourth method
    wait_for_app(page, settle_ms=800)
    assert len(_heatmaps(page)) == 4
    _screenshot(page, "attributions")
    assert_no_exception(page)
