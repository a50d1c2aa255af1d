"""In Chromium: a new visitor goes Home -> Start here -> Lessons -> lesson 1 and through every
step with Next: each step draws its live view (a Plotly figure), the answer appears on a click,
and the last step ends the lesson.

Set GLASSBOX_SCREENSHOTS to a folder to keep a screenshot of each step (tall viewport).
"""
import os
from pathlib import Path

from playwright.sync_api import expect

from lessons import LESSONS_DIR, load_lessons
from tests.browser.helpers import assert_no_exception, open_app, wait_for_app

LESSON = load_lessons(LESSONS_DIR)[0][0]  # 01-convolution


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("GLASSBOX_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1400, "height": 2400})
        page.wait_for_timeout(1000)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))
        page.set_viewport_size({"width": 1400, "height": 1000})


def _click(page, key: str) -> None:
    page.locator(f".st-key-{key} button").first.click()  # a button with help= holds a second one (its tooltip)
    wait_for_app(page)


def test_home_leads_to_lesson_one_and_through_every_step(app_server, page):
    open_app(page, app_server)
    page.get_by_role("link", name="Start here: the Lessons").click()
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Lessons", exact=True)).to_be_visible()
    expect(page.get_by_text(LESSON.title).first).to_be_visible()
    _screenshot(page, "lessons-list")
    _click(page, f"lesson_open_{LESSON.slug}")
    expect(page.get_by_role("heading", name=f"1. {LESSON.title}")).to_be_visible()

    total = len(LESSON.steps)
    for number, step in enumerate(LESSON.steps, start=1):
        expect(page.get_by_role("heading", name=step.title, exact=True)).to_be_visible()
        expect(page.get_by_text(f"Step {number} of {total}")).to_be_visible()
        view = page.locator(f"[class*='st-key-lesson_{LESSON.slug}_{number}_'] .js-plotly-plot")
        expect(view.first).to_be_visible(timeout=30_000)
        if number == 1:  # "drag the row to 5": the sum follows the slider
            expect(page.get_by_text("the value at row 3, column")).to_be_visible()
            thumb = page.locator(f".st-key-lesson_{LESSON.slug}_1_row input[type=range]")
            thumb.focus()
            thumb.press("ArrowRight")
            thumb.press("ArrowRight")
            wait_for_app(page, settle_ms=800)
            expect(page.get_by_text("the value at row 5, column")).to_be_visible()
        expect(page.get_by_text(step.try_this)).to_be_visible()
        expect(page.get_by_text(step.answer)).to_have_count(0)
        _click(page, f"lesson_reveal_{LESSON.slug}_{number}")
        expect(page.get_by_text(step.answer)).to_be_visible()
        expect(page.get_by_role("link", name="See it on the Feature maps page")).to_be_visible()
        assert_no_exception(page)
        _screenshot(page, f"lesson-1-step-{number}")
        if number < total:
            _click(page, "lesson_step_next")
    expect(page.locator(".st-key-lesson_step_next")).to_have_count(0)
    _click(page, "lesson_finish")
    expect(page.get_by_role("heading", name="Lessons", exact=True)).to_be_visible()
    expect(page.get_by_text(f"{total} of {total} steps seen").first).to_be_visible()
    assert_no_exception(page)
