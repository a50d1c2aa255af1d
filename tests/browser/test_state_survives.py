"""In Chromium: what a person chose on a page is still chosen when they come back to it
(issue 12 item 1: Streamlit drops the value of a widget whose page is not shown)."""
from playwright.sync_api import expect

from models import presets
from tests.browser.helpers import assert_no_exception, open_app, wait_for_app


def _go_to(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    wait_for_app(page)
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()


def _choose_preset(page, name: str) -> None:
    box = page.locator(".st-key-preset input")
    box.click()
    box.fill(name)  # typing filters the options
    page.get_by_role("option", name=name, exact=True).click()
    wait_for_app(page)


def _picker(page):
    return page.locator(".st-key-preset input")


def _design_name(page):
    return page.locator(".st-key-edit_name input")


def _total(page):
    return page.get_by_test_id("stMetricValue").first


def test_the_preset_picker_keeps_its_choice_across_pages(app_server, page):
    open_app(page, app_server)
    _go_to(page, "Model")
    _choose_preset(page, "sentiment-lstm")
    expect(_picker(page)).to_have_value("sentiment-lstm")
    expect(_design_name(page)).to_have_value("sentiment-lstm")

    _go_to(page, "Train")
    _go_to(page, "Model")
    # The picker, its description and the design below all still say sentiment-lstm.
    expect(_picker(page)).to_have_value("sentiment-lstm")
    expect(page.get_by_text(presets.describe("sentiment-lstm"), exact=True)).to_be_visible()
    expect(_design_name(page)).to_have_value("sentiment-lstm")
    expect(_total(page)).to_have_text(f"{presets.get('sentiment-lstm').parameter_count():,}")
    assert_no_exception(page)

    # Choosing digits-cnn now really switches the design.
    _choose_preset(page, "digits-cnn")
    expect(_picker(page)).to_have_value("digits-cnn")
    expect(_design_name(page)).to_have_value("digits-cnn")
    expect(_total(page)).to_have_text(f"{presets.get('digits-cnn').parameter_count():,}")
    assert_no_exception(page)
