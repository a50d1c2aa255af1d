"""Figures of the sanity checks (``explain.attributions.sanity`` and ``cascade``): how a sentence's
word scores change as the model's layers are re-drawn one after another, and the similarity
curve of Adebayo et al. (2018), each method's map against the trained model's after each step.

Pure functions: arrays in, Plotly figures out. A picture's row of maps is ``viz.attributions.
attribution_grid``. Method and layer names and the words come through ``viz.labels``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .activations import DIVERGING
from .labels import plain, unique_labels

# One colour per method, the same in the solid (Spearman) and dashed (SSIM) line of each.
METHOD_COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04")


def word_cascade_figure(tokens: Sequence[str], step_titles: Sequence[str], scores: Sequence[np.ndarray],
                        title: str = "") -> go.Figure:
    """One row per step (the trained model first), one column per word: each row's scores
    divided by its own largest |score|, so a row says which words matter most at that step
    (random layers give far smaller scores, which one shared scale would hide). Hovering shows
    the score itself."""
    scores = [np.asarray(row, dtype=float) for row in scores]
    if len(scores) != len(step_titles) or not scores:
        raise ValueError(f"need one row of scores per step: {len(step_titles)} steps, {len(scores)} rows")
    if any(row.shape != (len(tokens),) for row in scores):
        raise ValueError(f"every row needs one score per word ({len(tokens)})")
    raw = np.stack(scores)  # (steps, T)
    largest = np.abs(raw).max(axis=1, keepdims=True)  # (steps, 1)
    shares = np.divide(raw, largest, out=np.zeros_like(raw), where=largest > 0)  # (steps, T) in [-1, 1]
    words = unique_labels(tokens)
    steps = [plain(step) for step in step_titles]
    title = plain(title)
    return go.Figure(
        data=[dict(type="heatmap", z=shares, x=words, y=steps, zmin=-1.0, zmax=1.0, colorscale=DIVERGING,
                   customdata=raw, xgap=2, ygap=2,
                   colorbar=dict(title=dict(text="share of the<br>row's largest", side="right"), thickness=12),
                   hovertemplate="%{y} · %{x}: %{customdata:.4g}<extra></extra>")],
        layout=dict(title=title or None, height=90 + 34 * len(steps), margin=dict(l=10, r=10, t=40 if title else 10,
                                                                                   b=60),
                    xaxis=dict(type="category", tickangle=-45, side="bottom"),
                    yaxis=dict(type="category", autorange="reversed", automargin=True)))


def similarity_curve_figure(step_titles: Sequence[str], spearman: dict[str, Sequence[float]],
                            ssim: dict[str, Sequence[float]] | None = None, height: int = 340) -> go.Figure:
    """How alike each method's map stays to the trained model's as layers are re-drawn: one line
    per method (``spearman``: method label -> one value per step, the trained model's own 1 first),
    solid for the Spearman rank correlation of |map|, dashed for SSIM when given (pictures).
    A missing value (NaN: a flat map) leaves a gap."""
    steps = [plain(step) for step in step_titles]
    traces = []
    for index, (label, values) in enumerate(spearman.items()):
        colour = METHOD_COLOURS[index % len(METHOD_COLOURS)]
        curves = [("Spearman", values, "solid")] + ([("SSIM", ssim[label], "dash")] if ssim else [])
        for measure, curve, dash in curves:
            curve = [None if value is None or np.isnan(value) else float(value) for value in curve]
            if len(curve) != len(steps):
                raise ValueError(f"{len(curve)} values for {len(steps)} steps")
            name = f"{plain(label)} · {measure}"
            traces.append(dict(type="scatter", mode="lines+markers", x=steps, y=curve, name=name,
                               line=dict(color=colour, dash=dash), connectgaps=False,
                               hovertemplate=f"{name}<br>%{{x}}: %{{y:.2f}}<extra></extra>"))
    return go.Figure(data=traces, layout=dict(
        height=height, margin=dict(l=10, r=10, t=10, b=10), showlegend=True,
        xaxis=dict(type="category", title="layers re-drawn, from the output back", automargin=True),
        yaxis=dict(title="alike the trained map", range=[-1.05, 1.05], zeroline=True, automargin=True),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0)))
