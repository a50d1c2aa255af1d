"""Figures for training: loss/accuracy curves (one run or several), confusion matrix, image grids.

Pure functions: plain Python lists and numpy arrays in, a Plotly figure out. Metrics records
are the dicts a run writes to ``metrics.jsonl``: ``{"type": "train", "step", "loss", "acc", ...}``
every few steps and ``{"type": "val", "step", "val_loss", "val_acc", ...}`` each epoch.
Run labels, class names and titles are made plain (``viz.labels``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from .activations import axis_names, subplot_grid
from .labels import plain, plain_lines, unique_labels
from .pictures import rgb_of_chw

PALETTE = qualitative.Plotly


def _series(records: Sequence[Mapping], kind: str, key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for record in records:
        value = record.get(key)
        if record.get("type") == kind and value is not None and math.isfinite(value):
            steps.append(record["step"])
            values.append(value)
    return steps, values


def curves_figure(runs: Mapping[str, Sequence[Mapping]], height: int = 360,
                  cursor_step: int | None = None) -> go.Figure:
    """Loss (left) and accuracy (right) against step; train as lines, validation as markers.

    ``runs`` maps a label to that run's metric records; one run gets one colour, so several runs
    overlay for comparison. ``cursor_step``: a vertical line on both at that step (a replay's).
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"), horizontal_spacing=0.08)
    for index, (label, records) in enumerate(runs.items()):
        colour = PALETTE[index % len(PALETTE)]
        # One run: validation in a colour of its own, so it is not lost in a noisy training line.
        val_colour = PALETTE[1] if len(runs) == 1 else colour
        prefix = f"{plain(label)}: " if len(runs) > 1 else ""
        for col, (train_key, val_key) in enumerate((("loss", "val_loss"), ("acc", "val_acc")), start=1):
            steps, values = _series(records, "train", train_key)
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=f"{prefix}train", legendgroup=plain(label),
                                     line=dict(color=colour), showlegend=col == 1), row=1, col=col)
            steps, values = _series(records, "val", val_key)
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers", name=f"{prefix}validation",
                                     legendgroup=plain(label), line=dict(color=val_colour, dash="dot"),
                                     marker=dict(size=8, line=dict(width=1.5, color="white")),
                                     showlegend=col == 1), row=1, col=col)
    if cursor_step is not None:
        last = max((r.get("step", 0) for records in runs.values() for r in records), default=0)
        side = "top left" if cursor_step > last / 2 else "top right"  # its words stay inside the plot
        for col in (1, 2):
            fig.add_vline(x=cursor_step, line=dict(color="rgba(60,60,60,0.8)", width=2, dash="dash"), row=1, col=col,
                          annotation=dict(text=f"step {cursor_step:,}"), annotation_position=side)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    # The legend hangs from below the "step" titles (centred on y=-0.2 it covered them once it wrapped).
    fig.update_layout(height=height, margin=dict(l=40, r=20, t=40, b=40),
                      legend=dict(orientation="h", yanchor="top", y=-0.25))
    return fig


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    true, predicted = np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    return np.bincount(true * num_classes + predicted, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], height: int | None = None) -> go.Figure:
    """Heatmap of counts with each cell's number written in it; the diagonal is what went right."""
    matrix = np.asarray(matrix)
    names = unique_labels(class_names)  # two classes of one name would share a row otherwise
    row_totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, row_totals, out=np.zeros(matrix.shape, dtype=float), where=row_totals > 0)
    fig = go.Figure(go.Heatmap(
        z=share, x=names, y=names, text=matrix, texttemplate="%{text}", colorscale="Blues", zmin=0, zmax=1,
        colorbar=dict(title="share of row", tickformat=".0%"),
        hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>"))
    size = height or min(700, 120 + 40 * len(names))
    fig.update_layout(height=size, margin=dict(l=60, r=20, t=30, b=60),
                      xaxis=dict(title="predicted", type="category"),
                      yaxis=dict(title="true", type="category", autorange="reversed"))
    return fig


def image_grid_figure(images: Sequence[np.ndarray], titles: Sequence[str], cols: int = 6,
                      tile: int = 130) -> go.Figure:
    """Small images in a grid, each with its title (e.g. 'predicted 3, true 8'); a title given as a
    tuple of texts is drawn as that many lines."""
    n = len(images)
    if n == 0:
        fig = go.Figure()
        fig.update_layout(height=80, annotations=[dict(text="nothing to show", showarrow=False)],
                          xaxis=dict(visible=False), yaxis=dict(visible=False))
        return fig
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    # One dict layout and dict traces, validated once by go.Figure (see viz.activations.subplot_grid).
    layout, cells = subplot_grid(rows, cols, [plain_lines(title) for title in titles], horizontal_spacing=0.02,
                                 vertical_spacing=min(0.12, 0.3 / rows), title_size=11)
    pictures = [dict(type="image", z=rgb_of_chw(image), hoverinfo="skip", xaxis=x, yaxis=y)
                for image, (x, y) in zip(images, cells)]
    for cell in cells:
        x_name, y_name = axis_names(cell)
        layout[x_name]["visible"] = layout[y_name]["visible"] = False
    layout.update(height=rows * tile + 40, margin=dict(l=10, r=10, t=30, b=10))
    return go.Figure(data=pictures, layout=layout)
