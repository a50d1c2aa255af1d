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
