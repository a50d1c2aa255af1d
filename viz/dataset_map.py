"""The whole data set as a cloud of points: one per example, placed by what the model's
classifier reads (``explain.dataset_map``), coloured by true class, mistakes drawn as crosses.

WebGL traces (``Scattergl``; ``Scatter3d`` is WebGL already) keep ten thousand points smooth.
Every point carries its example's 0-based row as ``customdata`` (a plain list: a NumPy array
would be sent as a typed array, and a click would hand back an object instead of the number), so
a page can open the example a click selects. Class names and example texts are user text: they go through ``plain``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from .labels import counted, plain

PALETTE = qualitative.Plotly + qualitative.Dark24  # 34 distinct colours; more classes cycle
HOVER_CHARS = 90  # an example's text longer than this is cut in the hover label
RIGHT, WRONG = "circle", "x"
WRONG_3D = "cross"  # a 3-D scene draws "x" from a font glyph that many browsers lack (an empty box)


def class_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def short(text: str, limit: int = HOVER_CHARS) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dataset_map_figure(coords: np.ndarray, true: np.ndarray, predicted: np.ndarray, indices: np.ndarray,
                       class_names: Sequence[str], examples: Sequence[str] | None = None,
                       explained: np.ndarray | None = None, title: str = "") -> go.Figure:
    """One point per example at ``coords`` (N, 2) or (N, 3); ``examples`` (N,) is what the hover
    shows of each (a sentence's words), None for "example 12" (its row counted from 1)."""
    coords = np.asarray(coords, dtype=float)
    true, predicted, indices = (np.asarray(a).astype(int) for a in (true, predicted, indices))
    count, dims = coords.shape
    if dims not in (2, 3):
        raise ValueError(f"a map has 2 or 3 axes, not {dims}")
    if not len(true) == len(predicted) == len(indices) == count:
        raise ValueError("every point needs its true class, its prediction and its row")
    names = [plain(name) for name in class_names]
    wrong = predicted != true
    described = [f"example {counted(i)}" for i in indices] if examples is None else \
        [f"“{plain(short(text))}”" for text in examples]
    hover = [f"{what}<br>true: {names[t]}<br>predicted: {names[p]}{' (wrong)' if w else ''}"
             for what, t, p, w in zip(described, true, predicted, wrong)]
    hover = np.asarray(hover, dtype=object)
    cross = WRONG_3D if dims == 3 else WRONG
    data = []
    for cls in np.unique(true):
        rows = np.flatnonzero(true == cls)
        marker = {"color": class_colour(cls), "symbol": [cross if wrong[r] else RIGHT for r in rows],
                  "size": 4 if dims == 3 else 6, "opacity": 0.8}
        common = {"name": names[cls], "mode": "markers", "marker": marker, "hovertext": hover[rows],
                  "hovertemplate": "%{hovertext}<extra></extra>", "customdata": [int(i) for i in indices[rows]]}
        if dims == 3:
            data.append(go.Scatter3d(x=coords[rows, 0], y=coords[rows, 1], z=coords[rows, 2], **common))
        else:
            data.append(go.Scattergl(x=coords[rows, 0], y=coords[rows, 1], **common))
    # A legend entry only: what the crosses mean.
    key = {"name": f"misclassified ({int(wrong.sum()):,} of {count:,})", "mode": "markers",
           "marker": {"color": "grey", "symbol": cross}, "hoverinfo": "skip"}
    data.append(go.Scatter3d(x=[None], y=[None], z=[None], **key) if dims == 3
                else go.Scattergl(x=[None], y=[None], **key))
    axes = [_axis_title(k, explained) for k in range(dims)]
    fig = go.Figure(data=data)
    if dims == 3:
        fig.update_layout(scene={"xaxis_title": axes[0], "yaxis_title": axes[1], "zaxis_title": axes[2]}, height=650)
    else:
        fig.update_layout(xaxis_title=axes[0], yaxis_title=axes[1], height=600, dragmode="pan")
    fig.update_layout(title={"text": plain(title)} if title else None, legend_title_text="true class",
                      margin={"l": 60, "r": 20, "t": 60 if title else 30, "b": 50}, hovermode="closest")
    return fig


def _axis_title(k: int, explained: np.ndarray | None) -> str:
    name = f"direction {counted(k)}"
    if explained is None or k >= len(explained):
        return name
    return f"{name} ({float(explained[k]):.0%} of the variance)"
