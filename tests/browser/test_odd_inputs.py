"""End to end in Chromium: inputs at the edges of what the input pickers take (issue 12): a picture
a few thousand pixels wide and one pixel high is shown and explained; a paste far longer than a
sentence reaches the page and is answered in words instead of being dropped by the browser.

Set GLASSBOX_SCREENSHOTS to a folder to keep screenshots of each page.
"""
import io
import os
from pathlib import Path

from PIL import Image, ImageDraw
from playwright.sync_api import expect

from tests.browser.helpers import assert_no_exception, open_app, upload_file, wait_for_app


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("GLASSBOX_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1280, "height": 2400})
        page.wait_for_timeout(1000)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))
        page.set_viewport_size({"width": 1400, "height": 1000})


def _png(width: int, height: int) -> bytes:
    picture = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(picture).line([(0, 0), (width - 1, height - 1)], fill="black", width=1)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def _shown_sizes(page) -> list[list[int]]:
    """The drawn sizes (CSS pixels) of the pictures on the page (the input picker's two)."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('[data-testid=stImage] img'))
        .map(img => [Math.round(img.getBoundingClientRect().width), Math.round(img.getBoundingClientRect().height)])""")


def test_very_wide_and_very_tall_pictures_are_shown_and_explained(app_server, page):
    for path, key in (("inspect_cnn", "cnn"), ("attributions", "attr")):
        open_app(page, app_server, path)
        page.get_by_role("radio", name="Upload a picture", exact=True).click()
        wait_for_app(page)
        for width, height in ((4000, 3), (169, 1)):
            name = f"strip-{width}x{height}.png"
            upload_file(page, f"{key}_upload", name, _png(width, height), "image/png")
            expect(page.get_by_text(f"upload: {name} · {width}×{height}")).to_be_visible()
            expect(page.get_by_text("The model says")).to_be_visible()
            assert_no_exception(page)
            shown = _shown_sizes(page)
            assert [168, 12] in shown, shown  # the strip itself: 168 wide, at least 12 high
            _screenshot(page, f"odd-picture-{path}-{width}x{height}")


def _paste(page, key: str, text: str) -> None:
    import time
    box = page.locator(f".st-key-{key} textarea")
    t = time.time()
    box.fill(text, timeout=20_000)
    print("fill took", time.time() - t)
    box.press("Control+Enter")  # a text area sends its value on Ctrl+Enter (or when it loses focus)
    wait_for_app(page, settle_ms=800)


def _use_preset(page) -> None:
    page.locator(".st-key-inspect_use_preset button").first.click()
    wait_for_app(page)


def test_a_long_paste_is_answered_in_words(app_server, page):
    open_app(page, app_server, "inspect_attention")
    _use_preset(page)  # the session starts on digits-cnn; the Attention page offers sentiment-transformer
    page.get_by_role("link", name="Attributions").click()
    wait_for_app(page)
    box = page.locator(".st-key-attr_text textarea")

    _paste(page, "attr_text", "the film was good " * 1_111 + "abc")  # 20,001 characters in one line
    assert len(box.input_value()) == 20_001  # the box took it (the browser used to drop it)
    expect(page.get_by_text("Line 1 has 20,001 characters; a sentence here can have at most 2,000: shorten it, "
                            "or put one sentence per line.")).to_be_visible()
    assert_no_exception(page)
    _screenshot(page, "long-paste-one-line")

    # 200,000 characters in 100 lines of 1,999 (Chromium's fill takes minutes over 10,000 lines)
    paragraph = ("the film was good " * 112)[:1_999]
    _paste(page, "attr_text", (paragraph + "\n") * 100)
    assert len(box.input_value()) == 200_000
    expect(page.get_by_text("Your text has 100 lines; only the first 8 are read.")).to_be_visible()
    expect(page.get_by_text("Your text has several lines; this page reads one sentence at a time")).to_be_visible()
    expect(page.get_by_text("The model says")).to_be_visible()
    assert_no_exception(page)
    _screenshot(page, "long-paste-many-lines")
