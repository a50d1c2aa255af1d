"""End to end in Chromium: the built-in pretrained MiniLM on a sentence of words no class grammar
has: its 6 blocks × 12 heads of attention, and its subword tokens."""
from playwright.sync_api import expect

from tests.browser.helpers import assert_no_exception, open_app, wait_for_app
from tests.browser.test_inspect_pages import _plot, _screenshot, _type

LOAD_S = 120  # generous: loading transformers and the 90 MB of weights the first time


def test_the_builtin_minilm_shows_a_6_by_12_attention_grid(app_server, page):
    open_app(page, app_server, "model")
    page.locator(".st-key-load_builtin_pretrained button").first.click()
    wait_for_app(page, timeout_ms=LOAD_S * 1000)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("all-MiniLM-L6-v2")
    expect(page.get_by_test_id("stSidebar")).to_contain_text("pretrained")
    page.get_by_role("link", name="Attention").click()
    wait_for_app(page, timeout_ms=LOAD_S * 1000)
    _type(page, "attention_text", "The zorblax at the cinema was unexpectedly delightful")
    grid = _plot(page, "attention_grid")
    assert grid["types"].count("heatmap") == 6 * 12  # and a click target on each
    head = _plot(page, "attention_head_map")
    assert head["y"][0] == "[CLS]" and head["y"][-1] == "[SEP]"
    assert "##or" in " ".join(head["y"])  # "zorblax" split into pieces the model knows
    _screenshot(page, "pretrained-attention")
    assert_no_exception(page)


def test_a_click_on_a_grid_tile_opens_that_head(app_server, page):
    """The grid's tiles are clicked where a student would, off their centre: the tile's block and
    head open below, in the pickers, the head's map and the lines view."""
    open_app(page, app_server, "model")
    page.locator(".st-key-load_builtin_pretrained button").first.click()
    wait_for_app(page, timeout_ms=LOAD_S * 1000)
    page.get_by_role("link", name="Attention").click()
    wait_for_app(page, timeout_ms=LOAD_S * 1000)
    _type(page, "attention_text", "The students at the back could not hear the teacher")
    grid = ".st-key-attention_grid .js-plotly-plot"
    page.wait_for_selector(grid, timeout=30_000)
    for block, head, across, down in [(2, 9, 0.2, 0.8), (5, 4, 0.85, 0.15)]:
        page.locator(grid).scroll_into_view_if_needed()
        tile = page.evaluate("""([selector, n]) => {
            const plot = document.querySelector(selector), box = plot.getBoundingClientRect();
            const suffix = n === 1 ? '' : String(n);
            const x = plot._fullLayout['xaxis' + suffix], y = plot._fullLayout['yaxis' + suffix];
            return {left: box.left + x._offset, top: box.top + y._offset, width: x._length, height: y._length};
        }""", [grid, (block - 1) * 12 + head])
        point = (tile["left"] + across * tile["width"], tile["top"] + down * tile["height"])
        page.mouse.move(point[0] - 20, point[1] - 20)
        page.mouse.move(*point, steps=5)
        expect(page.locator(f"{grid} .hoverlayer")).to_contain_text(f"block {block} · head {head}")
        page.mouse.click(*point)
        wait_for_app(page, settle_ms=1500)
        expect(page.locator(".st-key-attention_layer input")).to_have_value(str(block))
        expect(page.locator(".st-key-attention_head input")).to_have_value(f"head {head}")
        expect(page.locator(".st-key-attention_head_map .gtitle")).to_have_text(f"Block {block}, head {head}")
        expect(page.locator(".st-key-attention_lines_heads")).to_contain_text(f"head {head}")
    assert_no_exception(page)
