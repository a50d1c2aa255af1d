"""Figures of what is inside a model: map grids (filters, feature maps), attention, predictions.

Pure functions: numpy arrays in, a Plotly figure out.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

DIVERGING = "RdBu_r"  # signed values: blue negative, white zero, red positive
SEQUENTIAL = "Viridis"


def heatmap_grid(maps: np.ndarray, titles: Sequence[str] | None = None, cols: int = 8, shared_scale: bool = True,
                 signed: bool | None = None, tile: int = 110) -> go.Figure:
    """(N, H, W) maps as a grid of small heatmaps, e.g. every channel of a feature map or filter.

    With ``shared_scale`` all tiles use one colour range, so strong and weak channels can be
    compared; without it each tile is stretched to its own range. Signed data (anything below
    zero) gets a diverging scale centred on zero.
    """
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3:
        raise ValueError(f"heatmap_grid needs (N, H, W) maps, got shape {maps.shape}")
    n = maps.shape[0]
    titles = list(titles) if titles is not None else [str(i) for i in range(n)]
    signed = bool(maps.min() < 0) if signed is None else signed
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.015,
                        vertical_spacing=min(0.08, 0.3 / rows))
    bound = float(np.abs(maps).max()) or 1.0
    for index in range(n):
        tile_map = maps[index]
        if shared_scale:
            low, high = (-bound, bound) if signed else (float(maps.min()), float(maps.max()))
        else:
            own = float(np.abs(tile_map).max()) or 1.0
            low, high = (-own, own) if signed else (float(tile_map.min()), float(tile_map.max()))
        fig.add_trace(go.Heatmap(z=tile_map, zmin=low, zmax=high if high > low else low + 1,
                                 colorscale=DIVERGING if signed else SEQUENTIAL, showscale=shared_scale and index == 0,
                                 hovertemplate=f"{titles[index]}<br>row %{{y}}, col %{{x}}: %{{z:.3f}}<extra></extra>"),
                      row=index // cols + 1, col=index % cols + 1)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    for index in range(1, n + 1):  # keep each tile square: y follows its own x axis
        suffix = "" if index == 1 else str(index)
        fig.layout[f"yaxis{suffix}"].scaleanchor = f"x{suffix}"
    fig.update_annotations(font_size=10)
    fig.update_layout(height=rows * tile + 40, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def attention_heatmap(pattern: np.ndarray, tokens: Sequence[str], title: str = "") -> go.Figure:
    """One head's (Tq, Tk) attention weights with the tokens on both axes (rows attend to columns)."""
    pattern = np.asarray(pattern, dtype=float)
    labels = _unique_labels(tokens)
    fig = go.Figure(go.Heatmap(z=pattern, x=labels, y=labels, zmin=0, zmax=1, colorscale="Blues",
                               colorbar=dict(title="weight"),
                               hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>"))
    side = min(640, 160 + 26 * len(labels))
    fig.update_layout(title=title or None, height=side, margin=dict(l=80, r=20, t=40 if title else 20, b=80),
                      xaxis=dict(title="attends to (key)", type="category", tickangle=-45),
                      yaxis=dict(title="token (query)", type="category", autorange="reversed"))
    return fig


def probability_bars(probabilities: np.ndarray, class_names: Sequence[str], top_k: int | None = None) -> go.Figure:
    """Horizontal bars of class probabilities, most likely on top."""
    probabilities = np.asarray(probabilities, dtype=float)
    order = np.argsort(-probabilities)[: top_k or len(probabilities)]
    names = [str(class_names[i]) for i in order]
    fig = go.Figure(go.Bar(x=probabilities[order], y=names, orientation="h", text=[f"{p:.1%}" for p in probabilities[order]],
                           textposition="auto", marker_color="#2563eb", hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_layout(height=80 + 28 * len(order), margin=dict(l=10, r=10, t=10, b=30),
                      xaxis=dict(range=[0, 1], tickformat=".0%"), yaxis=dict(autorange="reversed", type="category"))
    return fig


def _unique_labels(tokens: Sequence[str]) -> list[str]:
    """Plotly merges equal category labels, so repeated words get their position appended."""
    seen: dict[str, int] = {}
    labels = []
    for position, token in enumerate(tokens):
        labels.append(f"{token} ({position})" if token in seen else str(token))
        seen[token] = position
    if len(set(labels)) != len(labels):
        labels = [f"{token} ({position})" for position, token in enumerate(tokens)]
    return labels
