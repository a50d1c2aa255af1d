"""What the views of lessons 4–6 share: the model a lesson works on, a sentence box, a digit
picker, the built-in pretrained model, and a computation that fails in words.

A lesson's model (``lesson_models.lesson_model``: the ready-trained demo, or the untrained preset
when no demo is installed) is shared by every session (one copy per server, read only), as are the
inspections and figures computed from it (``shared_views``): a class on the same step asks for
the same thing. User text is the user's: read from a length-limited box, shown as tokens
(``inspect_ui.show_tokens`` escapes them) and in figures through ``viz.labels.plain``.
"""
from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages import inspect_ui as ui
from app_pages.inspect_target import examples_dataset
from app_pages.model_files import shared_pretrained
from app_pages.shared_views import computed_once
from explain.inputs import (MAX_TEXT_CHARS, InputContext, InputError, PreparedImage, PreparedSentence,
                            example_image, input_context, prepare_sentence, split_sentences)
from models.pretrained import BUILTIN_TEXT, PretrainedError
from models.words import with_article

FAILURES = (ValueError, RuntimeError, IndexError, KeyError)  # what running a model on an input may raise


def model_note(model) -> None:
    """Say so when the lesson's model has not been trained: its answers are then chance."""
    if not model.meta.dataset and not model.is_pretrained:
        st.caption(f"This is {common.as_markdown_text(model.spec.name)} before any training (the ready-trained "
                   "demo is not installed here), so its answers are still chance; train it on the Train page "
                   "to see what it learns.")


def lesson_context(model) -> InputContext | None:
    """How the lesson's inputs are prepared for ``model`` (as in its training), or None, said in words."""
    try:
        return input_context(model, None if model.is_pretrained else examples_dataset(model))
    except InputError as err:
        st.error(common.sentence(err))
        return None


def lesson_sentence(context: InputContext, key: str, default: str, label: str = "A sentence",
                    help: str | None = None) -> PreparedSentence | None:
    """A one-line sentence box (kept for the session) and the tokens the model reads; None, with a
    warning in plain words, when there is nothing it can read."""
    text = st.text_input(label, value=default, key=key, max_chars=MAX_TEXT_CHARS, persist_state="session",
                         help=help)
    try:
        lines, _ = split_sentences(text, limit=1)
        prepared = prepare_sentence(context, lines[0])
    except InputError as err:
        st.warning(common.sentence(err))
        return None
    ui.show_tokens(prepared)
    return prepared


def lesson_digit(context: InputContext, dataset, key: str, default: int = 1) -> PreparedImage | None:
    """A validation example picked by number (1-based in the box), as the model receives it."""
    if dataset is None or dataset.input_kind != "image":
        st.warning("The examples of this lesson's data could not be loaded on this server.")
        return None
    count = len(dataset.x_val)
    index = lesson_number(f"Example (1 to {count:,} of the {dataset.name} validation data)", count, default, key)
    truth = dataset.class_names[int(dataset.y_val[index])]
    return example_image(context, dataset.x_val[index], f"example {index + 1} ({with_article(truth)})")


def lesson_number(label: str, count: int, default: int, key: str, column=st) -> int:
    """A number box (1 to ``count``) kept for the session; returns the 0-based index. The lesson's
    ``default`` goes into session state the first time, and a value left from a longer sentence
    (or a teacher's typo) is brought back into range there, so the widget needs no default of its
    own (Streamlit warns when a widget has both)."""
    _settle(key, count, default, first=1)
    return int(column.number_input(label, min_value=1, max_value=count, step=1, key=key,
                                   persist_state="session")) - 1


def lesson_choice(label: str, count: int, default: int, key: str, format_func, column=st) -> int:
    """A drop-down of ``count`` things (0-based, named by ``format_func``), kept for the session
    like ``lesson_number``."""
    _settle(key, count, default, first=0)
    return column.selectbox(label, range(count), key=key, format_func=format_func, persist_state="session")


def _settle(key: str, count: int, default: int, first: int) -> None:
    """Session state ``key`` holds a whole number from ``first`` to ``first + count - 1``."""
    state = st.session_state
    value = state.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        value = default if isinstance(default, int) and not isinstance(default, bool) else first
    value = min(max(value, first), first + count - 1)
    if state.get(key) != value:
        state[key] = value


def computed(function, *args, **kwargs):
    """``function(*args, **kwargs)`` once per server for the same content (``computed_once``), or
    None with the reason shown: the rest of the lesson page still draws."""
    try:
        return computed_once(function, *args, **kwargs)
    except FAILURES as err:
        st.error(f"The model could not be run on this input: {common.sentence(err)}")
        return None


def builtin_pretrained():
    """The built-in MiniLM, loaded once per server (the Model page's copy), or None, said in words."""
    try:
        with st.spinner(f"Loading {BUILTIN_TEXT}…"):
            return shared_pretrained(BUILTIN_TEXT)
    except PretrainedError as err:
        st.warning(f"The built-in pretrained model cannot be loaded here: {common.sentence(err)}")
        return None
