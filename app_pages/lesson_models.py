"""The models, runs and examples the lessons work on: the ready-trained demos, so a lesson opens
on a working view with no waiting.

The demos (``models.demos``, put into the run store by ``run_data.demo_model``) are loaded once
per server: the lessons only look at them. A demo that is not shipped (or cannot be read) falls
back to the untrained preset it is a copy of (the views still work, and say that the model is
untrained), and the training lesson says that its run is not there. Nothing here draws except
those plain notes.
"""
from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages.inspect_target import examples_dataset
from app_pages.run_data import UNREADABLE, demo_model, demo_run_id, store
from explain.inputs import InputError, PreparedImage, example_image, input_context
from models import build_model, presets

DEFAULT_MODEL = "digits-cnn"
BASE_PRESET = {"digits-cnn-too-fast": "digits-cnn", "digits-cnn-tiny-data": "digits-cnn"}


def lesson_model(name: str | None = None):
    """The trained demo ``name`` (default digits-cnn); its untrained preset when no demo is installed."""
    name = name or DEFAULT_MODEL
    try:
        model = trained_demo(name)
    except UNREADABLE:  # not shipped (UnknownDemo is a ValueError), or its files are damaged
        return preset_model(BASE_PRESET.get(name, name))
    lesson_run(name)  # a deleted demo run comes back: its data gives the examples, its checkpoints the steps
    return model


@st.cache_resource(show_spinner=False, max_entries=8)
def trained_demo(name: str):
    """The demo, loaded once per server (``demo_model`` reads a fresh copy on every call): the
    same model object on every run keeps the shared view caches warm. Read-only."""
    return demo_model(name)


@st.cache_resource(show_spinner=False, max_entries=8)
def preset_model(name: str):
    """A preset built with the app's seed, once per server (read-only: the lessons only look)."""
    return build_model(presets.get(name), seed=common.SEED)


def lesson_run(name: str) -> str | None:
    """The id of the demo's training run in the run store, or None when it is not installed."""
    try:
        run_id = demo_run_id(name)
        return run_id if run_id and store().exists(run_id) else None
    except UNREADABLE:
        return None


def shown_run(name: str) -> str | None:
    """The demo's run id for a view that draws it; None, after saying that it is missing."""
    run_id = lesson_run(name)
    if run_id is None:
        missing_run_note(name)
    return run_id


def run_metrics(run_id: str) -> list[dict]:
    try:
        return store().metrics(run_id)
    except UNREADABLE:
        return []


def run_checkpoints(run_id: str) -> list[int]:
    try:
        return store().checkpoint_steps(run_id)
    except UNREADABLE:
        return []


def missing_run_note(name: str) -> None:
    st.info(f"The ready-trained demo run **{common.as_markdown_text(name)}** is not installed on this server, "
            "so this view has nothing to show. Train the preset on the Train page to see your own run's curves.",
            icon=":material/info:")


def untrained_note(model) -> None:
    """Say so when a lesson stands on an untrained model (no demo installed): its filters are random."""
    if not model.meta.dataset and not model.is_pretrained:
        st.caption(f"{common.as_markdown_text(model.spec.name)} is not trained here (no ready-trained demo is "
                   "installed): its filters are still random, but the arithmetic is the same.")


def example_of(model, label: str) -> PreparedImage | None:
    """The first validation example of class ``label`` ("3") in the model's own data, prepared as
    in training; the first example of any class when there is none; None without data."""
    dataset = examples_dataset(model)
    if dataset is None or dataset.input_kind != "image":
        return None
    try:
        context = input_context(model, dataset)
    except InputError:
        return None
    names = list(dataset.class_names)
    wanted = names.index(label) if label in names else None
    index = next((i for i, y in enumerate(dataset.y_val.tolist()) if y == wanted), 0)
    truth = names[int(dataset.y_val[index])]
    return example_image(context, dataset.x_val[index], f"validation example {index + 1} (a {truth})")
