"""Figures of each block's answer: a classifier's probabilities after every block, and GPT-2's
logit lens (the likeliest next token at each position and block) as a table-like heatmap.

Pure functions: numpy arrays in, a Plotly figure out (the arrays come from ``explain.lens``).
Blocks count from 1; tokens and class names are made plain.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from .labels import counted, plain, unique_labels

MAX_LINES = 10  # classes drawn as lines: the likeliest at the last block


def block_answers_figure(probabilities: np.ndarray, class_names: Sequence[str],
                         switched_off: np.ndarray | None = None) -> go.Figure:
    """One line per class: its probability when the head reads each block's output; with
    ``switched_off`` (the same, with parts switched off), a dashed line of each class's colour."""
    probabilities = np.asarray(probabilities, dtype=float)
    blocks, classes = probabilities.shape
    shown = np.argsort(-probabilities[-1])[:MAX_LINES]
    names = [plain(name) for name in class_names]
    x = [f"block {counted(b)}" for b in range(blocks)]
    runs = [(probabilities, "solid", "")]
    if switched_off is not None:
        runs.append((np.asarray(switched_off, dtype=float), "dash", " (switched off)"))
    lines = [dict(type="scatter", x=x, y=values[:, k], mode="lines+markers", name=names[k] + suffix,
                  line=dict(color=qualitative.Plotly[i % len(qualitative.Plotly)], width=3, dash=dash),
                  marker=dict(size=9), hovertemplate=f"after %{{x}}: {names[k]}{suffix} %{{y:.1%}}<extra></extra>")
             for values, dash, suffix in runs for i, k in enumerate(shown)]
    return go.Figure(data=lines, layout=dict(
        height=320, margin=dict(l=50, r=20, t=50, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        xaxis=dict(type="category", title="the classifier reads the output of"),
        yaxis=dict(range=[0, 1.02], tickformat=".0%", title="probability")))


def logit_lens_figure(tokens: Sequence[str], top_tokens: Sequence[Sequence[Sequence[str]]],
                      top_probabilities: np.ndarray) -> go.Figure:
    """Rows: blocks (1 on top); columns: the input's tokens. Each cell writes the likeliest next
    token after that position as that block's stream reads it, coloured by its probability;
    the hover lists the runners-up."""
    top_probabilities = np.asarray(top_probabilities, dtype=float)
    blocks, length, _ = top_probabilities.shape
    columns = unique_labels(tokens)
    rows = [f"block {counted(b)}" for b in range(blocks)]
    text = [[plain(top_tokens[b][t][0]) for t in range(length)] for b in range(blocks)]
    hover = [["<br>".join(f"{plain(tok)}: {p:.1%}" for tok, p in zip(top_tokens[b][t], top_probabilities[b, t]))
              for t in range(length)] for b in range(blocks)]
    return go.Figure(
        data=[dict(type="heatmap", z=top_probabilities[:, :, 0], x=columns, y=rows, text=text, customdata=hover,
                   texttemplate="%{text}", textfont=dict(size=12), zmin=0, zmax=1, colorscale="Blues",
                   colorbar=dict(title=dict(text="probability", side="right"), tickformat=".0%"),
                   hovertemplate="after '%{x}', %{y} expects:<br>%{customdata}<extra></extra>", xgap=1, ygap=1)],
        layout=dict(height=140 + 40 * blocks, margin=dict(l=70, r=20, t=30, b=90),
                    xaxis=dict(type="category", tickangle=-45, title="after reading up to", side="bottom"),
                    yaxis=dict(type="category", autorange="reversed")))
