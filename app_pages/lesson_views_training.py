"""The live views of lesson 3 (training), on the ready-trained demos' own runs: the curves of
digits-cnn, a learning rate too high (digits-cnn-too-fast, SGD), over-fitting a tiny training set
(digits-cnn-tiny-data), and the first layer's filters at a few of digits-cnn's checkpoints.

Views as in ``lesson_views_cnn`` (``view(options, key)``); they read the run store, train nothing.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app_pages import common
from app_pages.inspect_ui import computed, show_figure
from app_pages.lesson_models import example_of, lesson_run, run_checkpoints, run_metrics, shown_run
from app_pages.run_data import UNREADABLE, checkpoint_model, store
from app_pages.shared_views import figure_once
from explain.cnn import inspect_cnn
from viz.training import curves_figure
from viz.activations import heatmap_grid

FILTER_STEPS = 5  # checkpoints shown, one row each: enough to see the filters form, few enough to read


def _last(records: list[dict], kind: str, key: str) -> float | None:
    values = [r[key] for r in records if r.get("type") == kind and isinstance(r.get(key), (int, float))
              and math.isfinite(r[key])]
    return values[-1] if values else None


def _settings(run_id: str) -> str:
    """'Adam, learning rate 0.001, 5 epochs', from the run's own record."""
    try:
        hyper = store().read(run_id).hyperparameters
    except UNREADABLE:
        return "settings unknown"
    optimizer = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}.get(hyper.get("optimizer"), hyper.get("optimizer"))
    return f"{optimizer}, learning rate {hyper.get('lr', '?')}, {hyper.get('epochs', '?')} epochs"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _curves(runs: dict[str, list[dict]], key: str, caption: str, log_loss: bool = False) -> None:
    figure = figure_once(curves_figure, runs)
    if log_loss:  # a diverging loss (hundreds) would flatten a healthy one (below 1) to the axis
        figure = go.Figure(figure)  # a copy: the shared figure is read-only
        figure.update_yaxes(type="log", rangemode="normal", title_text="loss (log scale)", row=1, col=1)
    show_figure(figure, f"{key}_curves", "curves", downloads=False, caption=caption)


def training_curves(options: dict, key: str) -> None:
    """Loss and accuracy of the demo's training run, step by step."""
    name = str(options.get("demo", "digits-cnn"))
    run_id = shown_run(name)
    if run_id is None:
        return
    records = run_metrics(run_id)
    _curves({name: records}, key, f"The training run of {name} ({_settings(run_id)}): the lines are measured on "
                                   "the batches it learns from, the dots on validation data it never learns from.")
    st.markdown(f"At the end: training loss {(_last(records, 'train', 'loss') or float('nan')):.3f}, "
                f"validation accuracy **{_percent(_last(records, 'val', 'val_acc'))}**.")


def too_fast(options: dict, key: str) -> None:
    """A run whose learning rate is too high, beside the demo that learns well."""
    name, good = str(options.get("demo", "digits-cnn-too-fast")), str(options.get("compare", "digits-cnn"))
    run_id = shown_run(name)
    if run_id is None:
        return
    runs = {f"{name} ({_settings(run_id)})": run_metrics(run_id)}
    good_id = lesson_run(good)
    if good_id is not None:
        runs[f"{good} ({_settings(good_id)})"] = run_metrics(good_id)
    _curves(runs, key, "Both runs on the same data from the same starting weights; only the optimizer and its "
                       "learning rate differ. The loss is drawn on a log scale (each grid line ten times the one "
                       "below), so that both runs fit.", log_loss=True)
    records = runs[next(iter(runs))]
    broken = next((r["step"] for r in records if r.get("type") == "train"
                   and not (isinstance(r.get("loss"), (int, float)) and math.isfinite(r["loss"]))), None)
    try:
        message = store().read(run_id).message
    except UNREADABLE:
        message = ""
    ending = (f"its loss stopped being a number at step {broken:,}" if broken is not None
              else f"its validation accuracy ended at {_percent(_last(records, 'val', 'val_acc'))}")
    st.markdown(f"**{common.as_markdown_text(name)}**: {ending}."
                + (f" The run says: *{common.as_markdown_text(message)}*" if message else ""))


def overfit(options: dict, key: str) -> None:
    """Training on a tiny set: training accuracy climbs, validation accuracy does not follow."""
    name = str(options.get("demo", "digits-cnn-tiny-data"))
    run_id = shown_run(name)
    if run_id is None:
        return
    records = run_metrics(run_id)
    try:
        trained_on = store().read(run_id).dataset.get("train_size")
    except UNREADABLE:
        trained_on = None
    _curves({name: records}, key, f"The training run of {name}"
                                  + (f", on only {trained_on:,} training pictures" if isinstance(trained_on, int) else "")
                                  + ": the gap between the two accuracies is over-fitting.")
    train_acc, val_acc = _last(records, "train", "acc"), _last(records, "val", "val_acc")
    gap = "" if train_acc is None or val_acc is None else f", a gap of {abs(train_acc - val_acc):.0%}"
    st.markdown(f"At the end: training accuracy **{_percent(train_acc)}**, validation accuracy "
                f"**{_percent(val_acc)}**{gap}.")


def filters_forming(options: dict, key: str) -> None:
    """The first layer's filters at a few of the run's checkpoints, from random to trained."""
    name = str(options.get("demo", "digits-cnn"))
    run_id = shown_run(name)
    if run_id is None:
        return
    steps = run_checkpoints(run_id)
    if not steps:
        st.info(f"The run of {common.as_markdown_text(name)} kept no checkpoints.")
        return
    # First, last and evenly among the log-spaced checkpoints between: the filters change most at the start.
    chosen = sorted({steps[int(round(i))] for i in np.linspace(0, len(steps) - 1, min(FILTER_STEPS, len(steps)))})
    weights, shown = [], []
    for step in chosen:
        try:
            model = checkpoint_model(str(store().root), run_id, step)
        except UNREADABLE:
            st.warning(f"The checkpoint at step {step:,} cannot be read; it is left out.")
            continue
        picture = example_of(model, "3")
        if picture is None:
            st.warning("There is no example to run the model on.")
            return
        weights.append(computed(inspect_cnn, model, picture.x).convs[0].weight.mean(axis=1))  # (O, k, k)
        shown.append(step)
    if not weights:
        return
    count = weights[0].shape[0]
    titles = [f"step {step:,}: filter {j + 1}" if j == 0 else f"filter {j + 1}" for step in shown for j in range(count)]
    # One colour scale for every checkpoint, so a filter growing stronger is seen as such.
    show_figure(figure_once(heatmap_grid, np.concatenate(weights), titles, cols=count, shared_scale=True, signed=True,
                            tile=90),
                f"{key}_filters", "filters-forming", downloads=False,
                caption="One row per checkpoint, from the first (step 0: the random weights it started from) to the "
                        "last; red where a filter wants brightness, blue where it wants darkness.")
    st.caption(f"{len(shown)} of the {len(steps)} checkpoints the run kept (steps {', '.join(f'{s:,}' for s in steps)}).")


VIEWS = {
    "training_curves": training_curves,
    "too_fast": too_fast,
    "overfit": overfit,
    "filters_forming": filters_forming,
}
