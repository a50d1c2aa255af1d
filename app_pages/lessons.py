"""Lessons: short guided tours of the app's views, one step at a time, on ready-trained models.

The lessons are data (``lessons/*.toml``, read by ``lessons.load_lessons``); each step draws one
live view from ``lesson_views.VIEWS``. Which lesson is open, the step each lesson was left at,
the steps seen and the answers revealed are kept for the session (``common.LESSON_*``). A lesson
file with a problem is shown as a plain error naming it; the others still open.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages import common
from app_pages.lesson_views import VIEWS
from lessons import Lesson, lessons_folder, load_lessons

LESSON_PARAM, STEP_PARAM = "lesson", "step"  # ?lesson=01-convolution&step=2: a link to one step (step from 1)
PAGE_TITLES = {Path(file).stem: title for file, title, _icon, _what in common.PAGES}
VIEW_FAILURES = (ValueError, TypeError, KeyError, IndexError)  # a teacher's options the view cannot use


@st.cache_data(show_spinner=False, max_entries=4)
def cached_lessons(folder: str, stamp: tuple) -> tuple[list[Lesson], list]:
    """The lessons, read again only when a file in the folder changes (``stamp``)."""
    return load_lessons(folder, known_views=set(VIEWS), known_pages=set(PAGE_TITLES))


def folder_stamp(folder: Path) -> tuple:
    try:
        return tuple((path.name, path.stat().st_mtime_ns, path.stat().st_size) for path in sorted(folder.glob("*.toml")))
    except OSError:
        return ()


# ---- moving through a lesson (button callbacks) ----------------------------------------
def open_lesson(slug: str | None) -> None:
    st.session_state[common.LESSON_OPEN] = slug


def go_to(slug: str, index: int) -> None:
    st.session_state[common.LESSON_STEPS][slug] = index


def reveal(slug: str, index: int) -> None:
    st.session_state[common.LESSON_ANSWERS].add((slug, index))


# ---- the address: a link to a lesson's step (a teacher's "everyone open this") ----------
def follow_address(by_slug: dict) -> None:
    """Open the lesson and step the address names (``?lesson=...&step=...``), when it names
    something other than what this session last wrote there: a link opened, not our own echo."""
    params = st.query_params
    wanted = params.get(LESSON_PARAM)
    if wanted is None:
        return
    step_text = params.get(STEP_PARAM, "1")
    if (wanted, step_text) == st.session_state[common.LESSON_ADDRESS]:
        return
    found = lesson_named(wanted, by_slug)
    if found is None:
        st.warning(f"There is no lesson called {common.as_markdown_text(wanted)}; here are the lessons there are.")
        open_lesson(None)
        return
    total = len(by_slug[found][1].steps)
    step = int(step_text) if step_text.isdigit() else 1
    open_lesson(found)
    go_to(found, min(max(step, 1), total) - 1)


def lesson_named(name: str, by_slug: dict) -> str | None:
    """The slug of the lesson ``name`` means: its slug ("01-convolution"), the slug without its number
    ("convolution"), or its number in the list ("1")."""
    if name in by_slug:
        return name
    for slug, (number, _lesson) in by_slug.items():
        if name in (str(number), slug.split("-", 1)[-1]):
            return slug
    return None


def write_address(opened: str | None) -> None:
    """Keep the address in step with the lesson shown (None: the list), so that it can be shared."""
    if opened is None:
        written = None
        st.query_params.pop(LESSON_PARAM, None)
        st.query_params.pop(STEP_PARAM, None)
    else:
        written = (opened, str(st.session_state[common.LESSON_STEPS].get(opened, 0) + 1))
        st.query_params[LESSON_PARAM], st.query_params[STEP_PARAM] = written
    st.session_state[common.LESSON_ADDRESS] = written


# ---- the list ---------------------------------------------------------------------------
def lesson_list(lessons: list[Lesson], problems: list) -> None:
    st.title("Lessons")
    st.caption("Short guided lessons. Each step has a few sentences, a live view of a ready-trained model, one thing "
               "to try and a question; open the full page from any step to see more. Your place is kept while "
               "you explore.")
    for problem in problems:
        st.error(f"A lesson could not be opened: {problem.message}", icon=":material/error:")
    seen = st.session_state[common.LESSON_SEEN]
    for number, lesson in enumerate(lessons, start=1):
        done, total = len(seen.get(lesson.slug, ())), len(lesson.steps)
        with st.container(border=True):
            text, action = st.columns([4, 1], vertical_alignment="center")
            with text:
                st.markdown(f"#### {number}. {lesson.title}")
                if lesson.summary:
                    st.markdown(lesson.summary)
                st.progress(done / total, text=f"{done} of {total} steps seen")
            label = "Start" if done == 0 else ("Open again" if done == total else "Continue")
            action.button(label, key=f"lesson_open_{lesson.slug}", on_click=open_lesson, args=(lesson.slug,),
                          type="primary" if done < total else "secondary", icon=":material/play_arrow:",
                          width="stretch")


# ---- one lesson, one step -----------------------------------------------------------------
def show_step(lesson: Lesson, number: int) -> None:
    slug, total = lesson.slug, len(lesson.steps)
    index = min(max(st.session_state[common.LESSON_STEPS].get(slug, 0), 0), total - 1)  # the file may have shrunk
    step = lesson.steps[index]
    st.session_state[common.LESSON_SEEN].setdefault(slug, set()).add(index)
    st.button("All lessons", key="lesson_back_to_list", on_click=open_lesson, args=(None,), type="tertiary",
              icon=":material/arrow_back:")
    st.title(f"{number}. {lesson.title}")
    st.progress((index + 1) / total, text=f"Step {index + 1} of {total}")
    st.subheader(step.title)
    st.markdown(step.text)  # the teacher's own Markdown (and maths), as the lesson file says
    options = {"model": lesson.model, **step.options} if lesson.model else dict(step.options)
    with st.container(border=True):
        try:
            VIEWS[step.view](options, f"lesson_{slug}_{index + 1}")
        except VIEW_FAILURES as err:
            st.error(f"{lesson.file}, step {index + 1}: the view '{step.view}' could not be drawn with this step's "
                     f"options ({common.sentence(err)})")
    st.info(f"**Try this:** {step.try_this}", icon=":material/touch_app:")
    st.markdown(f"**Question:** {step.question}")
    if (slug, index) in st.session_state[common.LESSON_ANSWERS]:
        st.success(f"**Answer:** {step.answer}", icon=":material/lightbulb:")
    else:
        st.button("Show the answer", key=f"lesson_reveal_{slug}_{index + 1}", on_click=reveal, args=(slug, index),
                  icon=":material/lightbulb:")
    st.page_link(f"app_pages/{step.page}.py", label=f"See it on the {PAGE_TITLES[step.page]} page",
                 icon=":material/open_in_new:")
    back, _gap, forward = st.columns([1, 3, 1])
    back.button("Back", key="lesson_step_back", on_click=go_to, args=(slug, index - 1), disabled=index == 0,
                icon=":material/chevron_left:", width="stretch")
    if index + 1 < total:
        forward.button("Next", key="lesson_step_next", on_click=go_to, args=(slug, index + 1), type="primary",
                       icon=":material/chevron_right:", icon_position="right", width="stretch")
    else:
        forward.button("Finish", key="lesson_finish", on_click=open_lesson, args=(None,), type="primary",
                       icon=":material/check:", width="stretch", help="Back to the list of lessons.")


folder = lessons_folder()
lessons, problems = cached_lessons(str(folder), folder_stamp(folder))
by_slug = {lesson.slug: (number, lesson) for number, lesson in enumerate(lessons, start=1)}
follow_address(by_slug)
opened = st.session_state[common.LESSON_OPEN]
if opened in by_slug:
    number, lesson = by_slug[opened]
    show_step(lesson, number)
    write_address(opened)
else:
    if not lessons and not problems:
        st.info(f"There are no lessons in {folder}.")
    lesson_list(lessons, problems)
    write_address(None)
