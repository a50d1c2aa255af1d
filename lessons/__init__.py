"""The lessons: guided steps through the app's views, written as data a teacher edits.

Each lesson is a TOML file in this folder, ``NN-slug.toml`` (read in file-name order)::

    title = "What a convolution computes"
    summary = "One sentence for the list of lessons."
    model = "digits-cnn"                # optional: the demo model it works on

    [[steps]]
    title = "One output value"
    text = \"\"\"Two or three sentences of Markdown (may use $maths$).\"\"\"
    view = "conv_sum"                   # a name in app_pages.lesson_views.VIEWS
    try = "Drag the row to 5."          # one thing to try
    question = "Why is ...?"
    answer = "Because ..."              # revealed on a click
    page = "inspect_cnn"                # stem of the full page (a file of app_pages/common.PAGES)
    [steps.options]                     # optional, handed to the view
    layer = 1

``load_lessons`` reads every file; a file that cannot be used (not TOML, a key missing or
unknown, a view or page that does not exist) becomes a ``LessonProblem`` naming the file and
the problem in plain words, and the other lessons still load. Nothing here imports Streamlit:
the Lessons page passes the names of the views and pages it knows.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

LESSONS_DIR = Path(__file__).resolve().parent
FOLDER_VARIABLE = "GLASSBOX_LESSONS"  # a teacher's own folder of lessons instead of the shipped ones
LESSON_KEYS = {"title": str, "summary": str, "model": str, "steps": list}
LESSON_REQUIRED = ("title", "steps")
STEP_KEYS = {"title": str, "text": str, "view": str, "try": str, "question": str, "answer": str, "page": str,
             "options": dict}
STEP_REQUIRED = ("title", "text", "view", "try", "question", "answer", "page")
TYPE_WORDS = {str: "text", list: "a list of [[steps]]", dict: "a table"}


@dataclass
class Step:
    title: str
    text: str  # Markdown, the teacher's own
    view: str  # name of the live view (app_pages.lesson_views.VIEWS)
    try_this: str  # "try" in the file
    question: str
    answer: str
    page: str  # stem of the full page for this view: "inspect_cnn"
    options: dict = field(default_factory=dict)  # handed to the view


@dataclass
class Lesson:
    slug: str  # file name without ".toml": "01-convolution"
    file: str  # file name as a person reads it: "01-convolution.toml"
    title: str
    summary: str
    model: str | None
    steps: list[Step]


@dataclass
class LessonProblem:
    file: str  # "01-convolution.toml"
    message: str  # plain words, naming the file: "01-convolution.toml: step 2 has no 'answer'."


class _Unusable(ValueError):
    """What is wrong with a lesson file, in words (without the file's name)."""


def lessons_folder() -> Path:
    """The folder the Lessons page reads: $GLASSBOX_LESSONS when set, else the shipped lessons."""
    chosen = os.environ.get(FOLDER_VARIABLE, "").strip()
    return Path(chosen).expanduser() if chosen else LESSONS_DIR


def load_lessons(folder: str | Path | None = None, known_views: set[str] | None = None,
                 known_pages: set[str] | None = None) -> tuple[list[Lesson], list[LessonProblem]]:
    """Every ``*.toml`` lesson in ``folder`` (default: ``lessons_folder()``), sorted by file
    name, and a problem for each file that cannot be used. Views and pages are checked against
    ``known_views`` / ``known_pages`` when given."""
    folder = Path(folder) if folder is not None else lessons_folder()
    lessons, problems = [], []
    try:
        files = sorted(path for path in folder.iterdir() if path.suffix == ".toml" and path.is_file())
    except OSError as err:
        return [], [LessonProblem(str(folder), f"the lessons folder {folder} cannot be read ({err.strerror}).")]
    for path in files:
        try:
            lessons.append(read_lesson(path, known_views, known_pages))
        except _Unusable as err:
            problems.append(LessonProblem(path.name, f"{path.name}: {err}"))
    return lessons, problems


def read_lesson(path: Path, known_views: set[str] | None = None, known_pages: set[str] | None = None) -> Lesson:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise _Unusable(f"this is not valid TOML ({err}).") from None
    except (OSError, UnicodeDecodeError) as err:
        raise _Unusable(f"the file cannot be read ({err}).") from None
    _check_keys(data, LESSON_KEYS, LESSON_REQUIRED, "the lesson")
    if not data["steps"]:
        raise _Unusable("the lesson has no steps: add at least one [[steps]] table.")
    steps = []
    for number, raw in enumerate(data["steps"], start=1):
        where = f"step {number}"
        if not isinstance(raw, dict):
            raise _Unusable(f"{where} is not a [[steps]] table.")
        _check_keys(raw, STEP_KEYS, STEP_REQUIRED, where)
        if known_views is not None and raw["view"] not in known_views:
            raise _Unusable(f"{where} names the view '{raw['view']}', which does not exist; "
                            f"the views are: {', '.join(sorted(known_views))}.")
        if known_pages is not None and raw["page"] not in known_pages:
            raise _Unusable(f"{where} links to the page '{raw['page']}', which does not exist; "
                            f"the pages are: {', '.join(sorted(known_pages))}.")
        steps.append(Step(raw["title"], raw["text"], raw["view"], raw["try"], raw["question"], raw["answer"],
                          raw["page"], dict(raw.get("options", {}))))
    return Lesson(path.stem, path.name, data["title"], data.get("summary", ""), data.get("model"), steps)


def _check_keys(table: dict, allowed: dict, required: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise _Unusable(f"unknown key '{key}' in {where}; the keys are: {', '.join(allowed)}.")
    for key in required:
        if key not in table:
            raise _Unusable(f"{where} has no '{key}'.")
    for key, value in table.items():
        if not isinstance(value, allowed[key]):
            raise _Unusable(f"'{key}' in {where} should be {TYPE_WORDS[allowed[key]]}.")
