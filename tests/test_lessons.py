"""The lesson loader (lessons/__init__.py): every shipped lesson loads, names real views and
pages, and a malformed file becomes one plain problem naming it while the others still load."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app_pages.common import PAGES
from app_pages.lesson_views import VIEWS
from lessons import LESSONS_DIR, Lesson, LessonProblem, Step, lessons_folder, load_lessons

PAGE_STEMS = {Path(file).stem for file, _title, _icon, _what in PAGES}
SHIPPED = sorted(path.name for path in LESSONS_DIR.glob("*.toml"))

GOOD_STEP = '''
[[steps]]
title = "A step"
text = "Some *text*."
view = "conv_sum"
try = "Drag the row to 5."
question = "Why?"
answer = "Because."
page = "inspect_cnn"
'''


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_shipped_lesson_loads_with_no_problem():
    lessons, problems = load_lessons(LESSONS_DIR, known_views=set(VIEWS), known_pages=PAGE_STEMS)
    assert problems == []
    assert [lesson.file for lesson in lessons] == SHIPPED  # sorted by file name
    assert {"01-convolution.toml", "02-pooling.toml", "03-training.toml"} <= set(SHIPPED)
    for lesson in lessons:
        assert lesson.title and lesson.summary and lesson.steps
        for step in lesson.steps:
            assert step.view in VIEWS, (lesson.file, step.title)
            assert step.page in PAGE_STEMS, (lesson.file, step.title)
            assert all([step.title, step.text, step.try_this, step.question, step.answer])


def test_a_lesson_file_reads_into_its_steps(tmp_path):
    write(tmp_path, "01-one.toml", 'title = "One"\nsummary = "S."\nmodel = "digits-cnn"\n' + GOOD_STEP
          + "[steps.options]\nlayer = 2\n")
    lessons, problems = load_lessons(tmp_path)
    assert problems == []
    assert lessons == [Lesson("01-one", "01-one.toml", "One", "S.", "digits-cnn", [
        Step("A step", "Some *text*.", "conv_sum", "Drag the row to 5.", "Why?", "Because.", "inspect_cnn",
             {"layer": 2})])]


@pytest.mark.parametrize("text, words", [
    ('title = "Broken\n' + GOOD_STEP, "not valid TOML"),
    ('summary = "no title"\n' + GOOD_STEP, "the lesson has no 'title'"),
    ('title = "T"\n' + GOOD_STEP.replace('answer = "Because."\n', ""), "step 1 has no 'answer'"),
    ('title = "T"\n' + GOOD_STEP + GOOD_STEP.replace("try =", "tyr ="), "unknown key 'tyr' in step 2"),
    ('title = "T"\ncolour = "red"\n' + GOOD_STEP, "unknown key 'colour' in the lesson"),
    ('title = "T"\n' + GOOD_STEP.replace('"conv_sum"', '"conv_summ"'), "names the view 'conv_summ'"),
    ('title = "T"\n' + GOOD_STEP.replace('"inspect_cnn"', '"nowhere"'), "links to the page 'nowhere'"),
    ('title = "T"\nsteps = []\n', "has no steps"),
    ('title = 3\n' + GOOD_STEP, "'title' in the lesson should be text"),
])
def test_a_malformed_file_is_one_plain_problem_naming_it_and_the_others_load(tmp_path, text, words):
    shutil.copy(LESSONS_DIR / "01-convolution.toml", tmp_path / "01-convolution.toml")
    write(tmp_path, "02-broken.toml", text)
    shutil.copy(LESSONS_DIR / "03-training.toml", tmp_path / "03-training.toml")
    lessons, problems = load_lessons(tmp_path, known_views=set(VIEWS), known_pages=PAGE_STEMS)
    assert [lesson.file for lesson in lessons] == ["01-convolution.toml", "03-training.toml"]
    assert len(problems) == 1
    problem = problems[0]
    assert isinstance(problem, LessonProblem) and problem.file == "02-broken.toml"
    assert problem.message.startswith("02-broken.toml: ") and words in problem.message, problem.message
    assert "Traceback" not in problem.message and "tomllib" not in problem.message


def test_views_and_pages_are_checked_only_when_known(tmp_path):
    write(tmp_path, "01-a.toml", 'title = "T"\n' + GOOD_STEP.replace('"conv_sum"', '"a_view_of_lesson_4"'))
    assert load_lessons(tmp_path)[1] == []
    assert load_lessons(tmp_path, known_views={"conv_sum"})[1][0].file == "01-a.toml"


def test_the_folder_is_the_shipped_one_unless_glassbox_lessons_names_another(tmp_path, monkeypatch):
    monkeypatch.delenv("GLASSBOX_LESSONS", raising=False)
    assert lessons_folder() == LESSONS_DIR
    monkeypatch.setenv("GLASSBOX_LESSONS", str(tmp_path))
    assert lessons_folder() == tmp_path
    write(tmp_path, "01-a.toml", 'title = "Mine"\n' + GOOD_STEP)
    assert [lesson.title for lesson in load_lessons()[0]] == ["Mine"]


def test_a_missing_folder_is_a_plain_problem(tmp_path):
    lessons, problems = load_lessons(tmp_path / "nowhere")
    assert lessons == [] and len(problems) == 1 and "cannot be read" in problems[0].message
