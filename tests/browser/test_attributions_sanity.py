"""In Chromium (issue 16): the Attributions page's sanity check is shown without opening anything,
every map has a colour bar, no tile title is cut off by its figure's edge, and a class chosen for
the digits CNN does not follow the person to an LSTM."""
import re

from playwright.sync_api import expect

from tests.browser.helpers import assert_no_exception, open_app, wait_for_app
from tests.browser.test_inspect_pages import _screenshot
from tests.browser.test_state_survives import _choose_preset, _go_to


def _figure_facts(page, key: str) -> dict:
    """For the Plotly figure with widget key ``key``: how many heatmaps, how many show their colour
    bar, and the titles whose drawn text reaches outside the figure (cut off)."""
    selector = f".st-key-{key} .js-plotly-plot"
    page.wait_for_selector(selector, timeout=60_000)
    return page.evaluate("""(selector) => {
        const plot = document.querySelector(selector);
        const heatmaps = plot.data.filter(t => t.type === 'heatmap');
        const box = plot.querySelector('svg.main-svg').getBoundingClientRect();
        const cut = [...plot.querySelectorAll('.annotation-text')].filter(text => {
            const r = text.getBoundingClientRect();
            return r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1);
        }).map(text => text.textContent);
        return {heatmaps: heatmaps.length, bars: heatmaps.filter(t => t.showscale).length, cut: cut,
                drawn_bars: plot.querySelectorAll('.colorbar').length};
    }""", selector)


def test_the_sanity_check_is_visible_with_colour_bars_and_whole_titles(app_server, page):
    open_app(page, app_server, "attributions")
    page.get_by_role("button", name="Guided Grad-CAM", exact=True).click()  # the longest title of all
    wait_for_app(page, settle_ms=800)
    expect(page.get_by_role("heading", name="Sanity check: does each map depend on what the model learned?")) \
        .to_be_visible()
    for key, tiles in [("attr_grid", 4), ("attr_sanity_pair_0", 2), ("attr_cascade_3", 5)]:
        facts = _figure_facts(page, key)
        assert facts["heatmaps"] == facts["bars"] == facts["drawn_bars"] == tiles, (key, facts)
        assert facts["cut"] == [], (key, facts)
    expect(page.get_by_text("Spearman of |map|").first).to_be_visible()
    expect(page.locator(".st-key-attr_cascade_curve .js-plotly-plot")).to_be_visible()
    _screenshot(page, "attributions-sanity")
    assert_no_exception(page)


def test_a_class_chosen_for_the_cnn_does_not_follow_to_an_lstm(app_server, page):
    open_app(page, app_server, "attributions")
    box = page.locator(".st-key-attr_target input")
    box.click()
    box.fill("3")  # typing filters the options
    page.get_by_role("option", name="3", exact=True).click()
    wait_for_app(page)
    expect(page.get_by_role("heading", name="What speaks for “3”")).to_be_visible()
    _go_to(page, "Model")
    _choose_preset(page, "sentiment-lstm")
    page.get_by_role("button", name="Use this model").click()
    wait_for_app(page)
    _go_to(page, "Attributions")
    heading = page.get_by_role("heading", name="What speaks for")
    expect(heading).to_be_visible()
    expect(heading).not_to_have_text("What speaks for “3”")
    predicted = re.compile(r"^the predicted one \((negative|positive)\)$")
    expect(page.locator(".st-key-attr_target input")).to_have_value(predicted)
    expect(page.locator(".st-key-attr_cascade_0 .js-plotly-plot")).to_be_visible()  # words, step by step
    _screenshot(page, "attributions-lstm")
    assert_no_exception(page)
