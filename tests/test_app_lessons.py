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


def _run(store, name: str, records: list[dict], **record) -> str:
    run_id = store.create(name, {"status": "finished", "model": name, **record})
    writer = store.metrics_writer(run_id)
    for metrics in records:
        writer.write(metrics)
    writer.close()
    return run_id


def test_the_training_lesson_reads_its_numbers_from_the_demo_runs(monkeypatch):
    """The too-fast and tiny-data demos as runs in the store (whether or not they are shipped):
    the lesson says where the loss broke and the gap between the accuracies, from their metrics."""
    from app_pages import lesson_models
    from app_pages.run_data import store

    runs = store()
    too_fast = _run(runs, "digits-cnn-too-fast", [
        {"type": "train", "step": 1, "loss": 2.3, "acc": 0.1},
        {"type": "train", "step": 2, "loss": 40.0, "acc": 0.1},
        {"type": "train", "step": 3, "loss": float("nan"), "acc": 0.1},  # stored as null
    ], status="diverged", message="the loss became NaN at step 3",
        hyperparameters={"optimizer": "sgd", "lr": 5.0, "epochs": 3})
    tiny = _run(runs, "digits-cnn-tiny-data", [
        {"type": "train", "step": 10, "loss": 0.5, "acc": 0.75},
        {"type": "val", "step": 10, "val_loss": 1.5, "val_acc": 0.5},
        {"type": "train", "step": 20, "loss": 0.01, "acc": 1.0},
        {"type": "val", "step": 20, "val_loss": 2.0, "val_acc": 0.42},
    ], dataset={"name": "digits", "train_size": 60})
    real = lesson_models.demo_run_id
    ids = {"digits-cnn-too-fast": too_fast, "digits-cnn-tiny-data": tiny}
    monkeypatch.setattr(lesson_models, "demo_run_id", lambda name: ids[name] if name in ids else real(name))

    at = open_lesson(open_page("lessons"), "03-training")
    at.button(key="lesson_step_next").click()
    run(at)
    said = " ".join(texts(at.markdown))
    assert "its loss stopped being a number at step 3" in said
    assert "the loss became NaN at step 3" in said
    curves = figure(at, "lesson_03-training_2_curves")
    assert any("SGD, learning rate 5.0" in (trace.get("name") or "") for trace in curves["data"])
    assert any("digits-cnn (Adam" in (trace.get("name") or "") for trace in curves["data"])  # the good run beside it

    at.button(key="lesson_step_next").click()
    run(at)
    said = " ".join(texts(at.markdown))
    assert "training accuracy **100%**, validation accuracy **42%**, a gap of 58%" in said
    assert any("on only 60 training pictures" in caption for caption in texts(at.caption))


def test_a_step_whose_options_the_view_cannot_use_is_a_plain_error_naming_the_file(tmp_path, monkeypatch):
    folder = tmp_path / "lessons"
    folder.mkdir()
    text = (LESSONS_DIR / "01-convolution.toml").read_text(encoding="utf-8").replace("row = 3", 'row = "three"')
    (folder / "01-convolution.toml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("GLASSBOX_LESSONS", str(folder))
    at = open_lesson(open_page("lessons"), "01-convolution")
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("01-convolution.toml, step 1: the view 'conv_sum' could not")
    assert "three" in errors[0]
    assert any(LESSONS[0].steps[0].try_this in info for info in texts(at.info))  # the rest of the step is there


def test_lesson_two_pools_like_max_pool2d_and_counts_the_receptive_field_by_hand():
    at = open_lesson(open_page("lessons"), "02-pooling")
    model = lesson_model("digits-cnn")
    weights = model.state_dict()
    x = example_of(model, "3").x
    maps = F.relu(F.conv2d(x[None], weights["conv.0.conv.weight"], weights["conv.0.conv.bias"], padding=1))[0]
    pooled = F.max_pool2d(maps[None], 2)[0]  # (8, 8, 8)
    channel, row, col = np.unravel_index(int(pooled.argmax()), pooled.shape)  # where the step starts
    window = maps[channel, 2 * row: 2 * row + 2, 2 * col: 2 * col + 2]
    kept_row, kept_col = np.unravel_index(int(window.argmax()), window.shape)
    sentence = next(text for text in texts(at.markdown) if text.startswith("The window holds"))
    assert f"**{float(pooled.max()):.2f}**" in sentence
    assert f"found at row {2 * row + kept_row + 1}, column {2 * col + kept_col + 1} of the feature map" in sentence
    assert at.slider(key="lesson_02-pooling_1_channel").value == channel + 1

    at.button(key="lesson_step_next").click()
    run(at)
    at.button(key="lesson_step_next").click()
    run(at)  # the deepest layer, Pool 2: 3x3 conv, 2x2 pool, 3x3 conv, 2x2 pool
    sizes = [row["sees (pixels)"] for row in at.dataframe[0].value.to_dict("records")]
    # r = r + (k - 1) * j, j = j * s: 1+2*1 = 3; 3+1*1 = 4 (j 2); 4+2*2 = 8; 8+1*2 = 10
    assert sizes == ["3×3", "4×4", "8×8", "10×10"]


def lesson_link(at, lesson: str, step: str):
    """The page run after a link ?lesson=...&step=... is opened in this session."""
    at.query_params["lesson"], at.query_params["step"] = lesson, step
    return run(at)


def test_a_link_opens_a_lessons_step_and_the_address_follows_the_lesson():
    first, fifth = LESSONS[0], LESSONS[4]
    at = open_page("lessons")
    assert "lesson" not in at.query_params  # the list: nothing in the address
    at = lesson_link(at, first.slug, "2")
    assert texts(at.subheader)[0] == first.steps[1].title
    assert (at.query_params["lesson"], at.query_params["step"]) == (first.slug, "2")
    at.button(key="lesson_step_next").click()
    run(at)  # the address, still saying step 2 when the click came, is our own echo: Next wins
    assert texts(at.subheader)[0] == first.steps[2].title and at.query_params["step"] == "3"
    # a shorter name, the lesson's number, and a step past the end (the last step)
    for name, step, expected in (("attention", "1", (fifth, 0)), ("1", "99", (first, len(first.steps) - 1))):
        at = lesson_link(at, name, step)
        lesson, index = expected
        assert texts(at.subheader)[0] == lesson.steps[index].title
        assert at.query_params["lesson"] == lesson.slug and at.query_params["step"] == str(index + 1)
    at.button(key="lesson_back_to_list").click()
    run(at)
    assert "lesson" not in at.query_params and "step" not in at.query_params


def test_a_link_to_a_lesson_that_does_not_exist_says_so_and_shows_the_list():
    at = lesson_link(open_page("lessons"), "<b>nope</b>", "1")
    assert any("There is no lesson called" in w and "<b>" not in w for w in texts(at.warning))
    assert at.button(key=f"lesson_open_{LESSONS[0].slug}")  # the list
    assert "lesson" not in at.query_params
