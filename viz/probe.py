"""Figures of the live training view: filters, prefix predictions, hidden states.

Pure functions: numpy arrays in, a Plotly figure out (see ``explain.probe`` for the arrays).
Words and class names are made plain (``viz.labels``); units count from 1.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from .activations import DIVERGING, heatmap_grid
from .labels import FIRST, numbered, plain, unique_labels
from .training import image_grid_figure

MAX_LINES = 10  # more classes than this: only the most likely ones at the end get a line


def filters_figure(filters: np.ndarray, cols: int = 8, tile: int = 70) -> go.Figure:
    """(O, I, k, k) conv filters: grey-input filters as signed heatmaps, RGB ones as colour patches,
    others as the mean over their input channels, which the figure's title then says."""
    filters = np.asarray(filters, dtype=float)
    if filters.ndim != 4:
        raise ValueError(f"filters_figure needs (O, I, k, k) weights, got shape {filters.shape}")
    titles = [numbered("filter", i) for i in range(filters.shape[0])]
    if filters.shape[1] == 3:
        return image_grid_figure(list(filters), titles, cols=cols, tile=tile)
    if filters.shape[1] == 1:
        return heatmap_grid(filters[:, 0], titles, cols=cols, signed=True, tile=tile)
    fig = heatmap_grid(filters.mean(axis=1), titles, cols=cols, signed=True, tile=tile)  # (O, k, k)
    note = filters_note(filters.shape[1])
    fig.update_layout(title=dict(text=note, font=dict(size=12)), margin=dict(t=60), height=fig.layout.height + 30)
    return fig


def filters_note(input_channels: int) -> str:
    """What a filter tile shows when the filter reads more than one map (or colour): the mean."""
    return (f"Each filter reads all {input_channels} input channels: "
            f"a tile shows the mean of its {input_channels} slices")


def prefix_predictions_figure(tokens: Sequence[str], probabilities: np.ndarray, class_names: Sequence[str],
                              height: int = 300) -> go.Figure:
    """One line per class: its probability after reading each word of the sentence."""
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim != 2 or probabilities.shape[0] != len(tokens):
        raise ValueError(f"need (T, K) probabilities for {len(tokens)} tokens, got shape {probabilities.shape}")
    labels = unique_labels(tokens)
    classes = np.argsort(-probabilities[-1])[:MAX_LINES] if probabilities.shape[1] > MAX_LINES \
        else range(probabilities.shape[1])
    names = [plain(name) for name in class_names]
    lines = [dict(type="scatter", x=labels, y=probabilities[:, k], mode="lines+markers", name=names[k],
                  line=dict(color=qualitative.Plotly[int(k) % len(qualitative.Plotly)]),
                  hovertemplate=f"after '%{{x}}': {names[k]} %{{y:.1%}}<extra></extra>")
             for k in classes]  # dicts: validated once, by go.Figure
    return go.Figure(data=lines, layout=dict(
        height=height, margin=dict(l=40, r=10, t=40, b=60), legend=dict(orientation="h", yanchor="bottom", y=1.04, x=0),
        xaxis=dict(type="category", tickangle=-45, title="after reading up to"),
        yaxis=dict(range=[0, 1.02], tickformat=".0%", title="probability")))


def hidden_states_figure(hidden: np.ndarray, tokens: Sequence[str], height: int = 300) -> go.Figure:
    """(T, H) hidden states as a heatmap: one column per word, one row per hidden unit."""
    hidden = np.asarray(hidden, dtype=float)
    if hidden.ndim != 2 or hidden.shape[0] != len(tokens):
        raise ValueError(f"need (T, H) hidden states for {len(tokens)} tokens, got shape {hidden.shape}")
    bound = float(np.abs(hidden).max()) or 1.0
    labels = unique_labels(tokens)
    fig = go.Figure(go.Heatmap(z=hidden.T, x=labels, y=np.arange(FIRST, FIRST + hidden.shape[1]),  # (H, T)
                               zmin=-bound, zmax=bound, colorscale=DIVERGING,
                               colorbar=dict(title="h"),
                               hovertemplate="after '%{x}', unit %{y}: %{z:.3f}<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=40, r=10, t=10, b=60),
                      xaxis=dict(type="category", tickangle=-45), yaxis=dict(title="hidden unit", autorange="reversed"))
    return fig
