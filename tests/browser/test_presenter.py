"""Presenter mode in Chromium at a projector's 1280×720 (issue 14): with ``?present=1`` in the
address the sidebar is collapsed (and its toggle is there when it is opened), every Plotly
figure's title, subplot titles and tick labels lie inside the figure and no title lies over a
picture (the tiles of the row above), tick labels are at least 16 px, and there is no "Download
as HTML" button; on the Feature maps page and on the Train page with a finished run. Set
GLASSBOX_SCREENSHOTS to a folder to keep screenshots of each page.
"""
import os
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.helpers import assert_no_exception, open_app, wait_for_app

PROJECTOR = {"width": 1280, "height": 720}
RUN_S = 240  # generous: only a hung worker or server should reach it
SLACK_PX = 1.5  # text whose box pokes out by less than this is not cut off (anti-aliasing, rounding)

# For every figure on the page: its SVG box, and each text that must lie inside it and be read
# from the back of a room (the title, subplot titles and other annotations, tick labels, colour
# bars' ticks), with its box and computed font size.
FIGURE_TEXTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map((plot, index) => {
    const svg = plot.querySelector('svg.main-svg');
    const box = svg.getBoundingClientRect();
    const key = (plot.closest('[class*="st-key-"]') || {className: ''}).className.match(/st-key-\\S+/);
    const texts = Array.from(plot.querySelectorAll(
        '.gtitle, .annotation-text, .xtick text, .ytick text, .cbaxis text, .g-xtitle text, .g-ytitle text, .legendtext'))
        .filter(t => t.getBBox().width > 0 && (t.textContent || '').trim())
        .map(t => {
            const r = t.getBoundingClientRect();
            return {kind: t.closest('.xtick,.ytick,.cbaxis') ? 'tick' : t.classList.contains('gtitle') ? 'title'
                          : t.classList.contains('annotation-text') ? 'annotation' : 'label',
                    text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                    size: parseFloat(getComputedStyle(t).fontSize)};
        });
    const pictures = Array.from(plot.querySelectorAll('.cartesianlayer image')).map(p => p.getBoundingClientRect())
        .filter(r => r.width > 0).map(r => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom}));
    return {index, key: key ? key[0] : '', left: box.left, right: box.right, top: box.top, bottom: box.bottom,
            width: box.width, texts, pictures};
})"""


def _screenshots(page, name: str) -> None:
    """The page as the projector shows it, and all of it in a tall window (the app scrolls inside)."""
    folder = os.environ.get("GLASSBOX_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(Path(folder) / f"presenter-{name}-1280x720.png"), full_page=True)
    page.set_viewport_size({"width": PROJECTOR["width"], "height": 3600})
    page.wait_for_timeout(1500)
    page.screenshot(path=str(Path(folder) / f"presenter-{name}-tall.png"), full_page=True)
    page.set_viewport_size(PROJECTOR)
    page.wait_for_timeout(1000)


def _check_figures(page, least: int) -> None:
    page.wait_for_timeout(1500)  # Plotly lays figures out after the script run ends
    figures = page.evaluate(FIGURE_TEXTS)
    assert len(figures) >= least, f"{len(figures)} figures on the page, expected at least {least}"
    main = page.get_by_test_id("stMain").bounding_box()
    for figure in figures:
        where = f"figure {figure['index'] + 1} ({figure['key']})"
        for text in figure["texts"]:
            inside = (text["left"] >= figure["left"] - SLACK_PX and text["right"] <= figure["right"] + SLACK_PX
                      and text["top"] >= figure["top"] - SLACK_PX and text["bottom"] <= figure["bottom"] + SLACK_PX)
            assert inside, f"{where}: {text['kind']} {text['text']!r} is cut off: {text} not inside {figure}"
            if text["kind"] in ("title", "annotation"):  # a subplot title written over the tiles above it
                covered = [p for p in figure["pictures"] if _overlap(text, p) > SLACK_PX]
                assert not covered, f"{where}: {text['kind']} {text['text']!r} lies over a picture: {text} {covered[0]}"
            if text["kind"] == "tick":
                assert text["size"] >= 16, f"{where}: tick label {text['text']!r} is {text['size']} px"
    widest = max(figure["width"] for figure in figures)
    assert widest >= 0.8 * main["width"] - 80, f"no figure uses the page's width ({widest} of {main['width']} px)"


def _overlap(a: dict, b: dict) -> float:
    """How far two boxes overlap (the smaller of the two overlaps, across and down; 0 if apart)."""
    across = min(a["right"], b["right"]) - max(a["left"], b["left"])
    down = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
    return max(0.0, min(across, down))


def _sidebar_is_collapsed(page) -> None:
    expect(page.get_by_test_id("stSidebar")).to_have_attribute("data-collapsed", "true")


def test_the_feature_maps_page_reads_well_on_a_projector(app_server, page):
    page.set_viewport_size(PROJECTOR)
    open_app(page, app_server, "inspect_cnn?present=1")
    expect(page.get_by_text("The model says")).to_be_visible()
    _sidebar_is_collapsed(page)
    expect(page.get_by_role("button", name="Download as HTML")).to_have_count(0)
    expect(page.get_by_role("button", name="Download the raw activations (.npz)")).to_have_count(0)
    _check_figures(page, least=3)
    _screenshots(page, "feature-maps")
    assert_no_exception(page)

    # The toggle is in the sidebar, once it is opened: it turns presenter mode off, and on again,
    # which closes the sidebar although the browser now remembers it open (the click on its arrow).
    toggle = page.get_by_test_id("stSidebar").get_by_text("Presenter mode")
    for _ in range(2):
        page.get_by_test_id("stExpandSidebarButton").click()
        expect(toggle).to_be_visible()
        toggle.click()
        wait_for_app(page)
        expect(page.get_by_role("button", name="Download as HTML").first).to_be_visible()
        assert "present=" not in page.url
        toggle.click()
        wait_for_app(page)
        _sidebar_is_collapsed(page)
        expect(page.get_by_role("button", name="Download as HTML")).to_have_count(0)
        assert "present=1" in page.url


def test_the_train_page_with_a_finished_run_reads_well_on_a_projector(app_server, page):
    page.set_viewport_size(PROJECTOR)
    open_app(page, app_server, "train?present=1")
    _sidebar_is_collapsed(page)
    train = page.get_by_role("button", name="Train", exact=True)
    if not train.is_visible():  # a run is already shown (another test's, or a demo's): the form is folded away
        page.get_by_text("New run", exact=False).first.click()
    train.click()
    wait_for_app(page)
    expect(page.get_by_test_id("stAlertContentSuccess").filter(has_text="Finished:")).to_be_visible(
        timeout=RUN_S * 1000)
    wait_for_app(page)
    expect(page.get_by_text("Confusion matrix")).to_be_visible()
    _sidebar_is_collapsed(page)
    _check_figures(page, least=3)
    expect(page.get_by_role("button", name="Download as HTML")).to_have_count(0)
    _screenshots(page, "train")
    assert_no_exception(page)
