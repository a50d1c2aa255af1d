"""App tests (Streamlit AppTest) for the Lessons page: every step of every shipped lesson draws
its text, view, "try this" and question, the answer appears on a click, lesson 1's sum is
F.conv2d's value at the chosen position, and a malformed lesson file is a plain error naming it
while the other lessons still open."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch.nn.functional as F

from app_pages import common
from app_pages.lesson_models import example_of, lesson_model
from app_pages.lesson_views import VIEWS
from lessons import LESSONS_DIR, load_lessons
from models import demos
from tests.app_helpers import figure, open_page, run, texts, values

PAGE_STEMS = {Path(file).stem for file, _title, _icon, _what in common.PAGES}
LESSONS, _ = load_lessons(LESSONS_DIR, known_views=set(VIEWS), known_pages=PAGE_STEMS)
NOT_SHIPPED = "is not installed on this server"  # the note of a view whose demo run is missing


def open_lesson(at, slug: str):
    at.button(key=f"lesson_open_{slug}").click()
    return run(at)


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.slug for lesson in LESSONS])
def test_every_step_of_the_lesson_draws_its_text_view_try_and_question_and_reveals_the_answer(lesson):
    at = open_lesson(open_page("lessons"), lesson.slug)
    for number, step in enumerate(lesson.steps, start=1):
        assert f"Step {number} of {len(lesson.steps)}" in at.get("progress")[0].proto.text
        assert texts(at.subheader)[0] == step.title
        assert step.text in texts(at.markdown)
        assert any(step.try_this in info for info in texts(at.info))
        assert f"**Question:** {step.question}" in texts(at.markdown)
        assert not at.error, texts(at.error)
        charts = at.get("plotly_chart")
        missing = [info for info in texts(at.info) if NOT_SHIPPED in info]
        assert charts or missing, f"{lesson.file} step {number} drew no figure"
        if missing:  # only a demo that is not shipped may be missing, and it must say so
            assert not any(f"**{name}**" in missing[0] for name in demos.names())
        assert not any(step.answer in s for s in texts(at.success))
        at.button(key=f"lesson_reveal_{lesson.slug}_{number}").click()
        run(at)
        assert any(step.answer in s for s in texts(at.success))
        assert [link.proto.page for link in at.get("page_link")][-1] == step.page
        if number < len(lesson.steps):
            at.button(key="lesson_step_next").click()
            run(at)
    seen = at.session_state[common.LESSON_SEEN][lesson.slug]
    assert seen == set(range(len(lesson.steps)))
    at.button(key="lesson_finish").click()
    run(at)
    assert at.session_state[common.LESSON_OPEN] is None
    assert at.button(key=f"lesson_open_{lesson.slug}").label == "Open again"


def test_back_returns_to_the_step_before_and_the_place_is_kept_per_lesson():
    at = open_lesson(open_page("lessons"), "01-convolution")
    at.button(key="lesson_step_next").click()
    run(at)
    assert texts(at.subheader)[0] == LESSONS[0].steps[1].title
    at.button(key="lesson_back_to_list").click()
    run(at)
    assert at.button(key="lesson_open_01-convolution").label == "Continue"
    at = open_lesson(at, "01-convolution")
    assert texts(at.subheader)[0] == LESSONS[0].steps[1].title  # where it was left
    at.button(key="lesson_step_back").click()
    run(at)
    assert texts(at.subheader)[0] == LESSONS[0].steps[0].title
    assert at.button(key="lesson_step_back").disabled


def test_lesson_one_sum_is_conv2d_at_the_chosen_position():
    at = open_lesson(open_page("lessons"), "01-convolution")
    at.slider(key="lesson_01-convolution_1_row").set_value(5)
    at.slider(key="lesson_01-convolution_1_col").set_value(7)
    at.slider(key="lesson_01-convolution_1_filter").set_value(2)
    run(at)
    model = lesson_model("digits-cnn")
    assert model.meta.dataset, "lesson 1 should work on the trained demo"
    x = example_of(model, "3").x  # (1, 16, 16): the digit the lesson shows
    weights = model.state_dict()
    reference = F.conv2d(x[None], weights["conv.0.conv.weight"], weights["conv.0.conv.bias"], padding=1)
    expected = float(reference[0, 1, 4, 6])  # filter 2, row 5, column 7, counted from 1
    bias = float(weights["conv.0.conv.bias"][1])
    sentence = next(text for text in texts(at.markdown) if text.startswith("The 9 products add up to"))
    shown = [float(n) for n in re.findall(r"\*\*(-?[\d.]+)\*\*", sentence)]  # [weighted sum, value]
    assert "row 5, column 7 of feature map 2" in sentence
    assert shown == pytest.approx([expected - bias, expected], abs=6e-5)
    products = values(figure(at, "lesson_01-convolution_1_sum")["data"][2]["z"])  # (3, 3) patch ⊙ filter
    assert float(np.sum(products)) == pytest.approx(expected - bias, abs=1e-5)
    assert any(r"\sum" in line for line in texts(at.get("latex")))


def test_the_articles_formula_gives_pytorchs_number_with_the_flipped_kernel():
    at = open_lesson(open_page("lessons"), "01-convolution")
    at.button(key="lesson_step_next").click()
    run(at)
    sentence = next(text for text in texts(at.markdown) if "a true convolution of the patch" in text)
    convolution, correlation = (float(n) for n in re.findall(r"\*\*(-?[\d.]+)\*\*", sentence))
    assert convolution == correlation
    tiles = figure(at, "lesson_01-convolution_2_flip")["data"]
    learned, flipped = values(tiles[0]["z"]), values(tiles[1]["z"])
    assert np.array_equal(flipped, learned[::-1, ::-1])
    assert any("x(i-p+1" in line for line in texts(at.get("latex")))


def test_a_malformed_lesson_file_is_a_plain_error_naming_it_and_the_others_still_open(tmp_path, monkeypatch):
    folder = tmp_path / "lessons"
    folder.mkdir()
    shutil.copy(LESSONS_DIR / "01-convolution.toml", folder)
    (folder / "02-broken.toml").write_text('title = "Broken"\n[[steps]]\ntitle = "x"\ntyr = "oops"\n',
                                           encoding="utf-8")
    monkeypatch.setenv("GLASSBOX_LESSONS", str(folder))
    at = open_page("lessons")
    errors = texts(at.error)
    assert len(errors) == 1 and "02-broken.toml" in errors[0] and "unknown key 'tyr' in step 1" in errors[0]
    assert not at.exception
    at = open_lesson(at, "01-convolution")
    assert texts(at.subheader)[0] == LESSONS[0].steps[0].title
    assert at.get("plotly_chart")


def test_home_says_start_here_and_leads_to_the_lessons_listed_after_home():
    assert [Path(file).stem for file, *_ in common.PAGES][:2] == ["home", "lessons"]
    at = open_page("home")
    assert texts(at.subheader)[0] == "Start here"
    assert at.get("page_link")[0].proto.page == "lessons"
