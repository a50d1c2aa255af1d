"""Open one example of the data on the page that inspects the model's kind.

The Inspect pages choose their input with ``inspect_ui``'s widgets: a picture page a validation
example by its number (``{page}_source`` = "example", ``{page}_example`` counted from 1), a text
page the sentences typed in ``{page}_text``. Setting those keys before ``st.switch_page`` opens
the page on that example, and the widgets keep it (they live in session state) as if the user
had typed it. The map on the "What it learned" page links its points through here.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from app_pages.inspect_target import KIND_PAGE
from explain.tokens import sentence_of

PAGE_TITLES = {"cnn": "Feature maps", "rnn": "Hidden states", "transformer": "Attention"}
WIDGET_PREFIX = {"cnn": "cnn", "rnn": "rnn", "transformer": "attention"}  # inspect_ui's ``page`` argument


@dataclass(frozen=True)
class ExampleLink:
    """Where one example opens and the widget values that choose it there."""

    page: str  # the page's file, for st.switch_page
    title: str  # the page's title, for a button's label
    values: tuple[tuple[str, object], ...]  # (session key, value) pairs


def example_link(model, dataset, row: int) -> ExampleLink | None:
    """The link to validation example ``row`` (0-based) of ``dataset`` for ``model``; None when
    no Inspect page shows this model's kind."""
    kind = model.spec.kind
    if kind not in KIND_PAGE:
        return None
    prefix = WIDGET_PREFIX[kind]
    if dataset.input_kind == "image":
        values = ((f"{prefix}_source", "example"), (f"{prefix}_example", int(row) + 1))
    else:
        values = ((f"{prefix}_text", sentence_of(dataset.x_val[int(row)], dataset.vocab)),)
    return ExampleLink(KIND_PAGE[kind], PAGE_TITLES[kind], values)


def clicked_row(point: dict) -> int | None:
    """The 0-based row a clicked point of the data map carries (its ``customdata``: a number, or
    a one-item list or typed-array object, as Plotly hands it back); None when it carries none."""
    found = point.get("customdata")
    if isinstance(found, dict):
        found = list(found.values())
    if isinstance(found, (list, tuple)):
        found = found[0] if found else None
    try:
        return int(found)
    except (TypeError, ValueError):
        return None


def open_example(link: ExampleLink) -> None:
    """Put the example into the target page's widgets and go there."""
    for key, value in link.values:
        st.session_state[key] = value
    st.switch_page(link.page)
