"""End to end in Chromium: on the Take apart page a student switches a head of the sentiment
transformer off and sees its answer change; the importance grid and each block's answer are drawn.

Set GLASSBOX_SCREENSHOTS to a folder to keep screenshots of the page.
"""
import os
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.helpers import assert_no_exception, open_app, wait_for_app


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("GLASSBOX_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1400, "height": 2600})
        page.wait_for_timeout(3000)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))
        page.set_viewport_size({"width": 1400, "height": 1000})


def _bars(page, key: str) -> list[list[str]]:
    """Each trace's bar texts ("68.7%") of the Plotly figure drawn with widget key ``key``."""
    selector = f".st-key-{key} .js-plotly-plot"
    page.wait_for_selector(selector, timeout=30_000)
    return page.evaluate("(s) => document.querySelector(s).data.map(t => Array.from(t.text))", selector)


def test_switching_a_head_off_changes_the_prediction(app_server, page):
    open_app(page, app_server, "inspect_attention")
    page.locator(".st-key-inspect_use_preset button").first.click()  # the session starts on digits-cnn
    wait_for_app(page)
    page.get_by_role("link", name="Take apart").click()
    wait_for_app(page)
    box = page.locator(".st-key-take_apart_text textarea")
    box.fill("the film was not good")
    box.press("Control+Enter")
    wait_for_app(page, settle_ms=600)
    before, after = _bars(page, "take_apart_before_after")
    assert before == after and len(before) == 2  # nothing switched off yet: both classes, same numbers
    expect(page.locator(".st-key-take_apart_importance .js-plotly-plot")).to_be_visible()
    expect(page.locator(".st-key-take_apart_blocks .js-plotly-plot")).to_be_visible()

    chooser = page.locator(".st-key-take_apart_heads input")
    for head in ("block 2, head 1", "block 2, head 2"):
        chooser.click()
        chooser.fill(head)
        chooser.press("Enter")
        wait_for_app(page, settle_ms=600)
    page.keyboard.press("Escape")
    wait_for_app(page)
    before, after = _bars(page, "take_apart_before_after")
    assert before != after  # the answer moved
    expect(page.get_by_text("Switched off:")).to_be_visible()
    _screenshot(page, "take-apart-transformer")
    assert_no_exception(page)
