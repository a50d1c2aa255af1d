"""Figures of what a channel wants: the optimised picture beside the examples that excite the
channel most, and how the channel's value climbed step by step.

Pure functions: pictures ((H, W, C) or (H, W) arrays) and numbers in, a Plotly figure out. Titles
may hold user text (class names) and go through ``viz.labels.plain``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .activations import axis_names, subplot_grid
from .labels import FIRST, plain, plain_lines
from .pictures import rgb_of_hwc

TILE = 150  # pixels per picture: a 16×16 digit is blown up about 9 times, each pixel visible


def pictures_row(pictures: Sequence[np.ndarray], titles: Sequence, tile: int = TILE,
                 title: str = "") -> go.Figure:
    """Pictures side by side, each under its title (a text, or a tuple of lines); ``pictures``
    are (H, W, 3) or (H, W, 1) uint8 (drawn as they are) or (H, W) grey."""
    if not len(pictures):
        raise ValueError("there are no pictures to show")
    if len(titles) != len(pictures):
        raise ValueError(f"{len(pictures)} pictures but {len(titles)} titles")
    count = len(pictures)
    layout, cells = subplot_grid(1, count, [plain_lines(t) for t in titles],
                                 horizontal_spacing=0.04 / max(count - 1, 1), title_size=13)
    data = []
    for picture, cell in zip(pictures, cells):
        picture = np.asarray(picture)
        if picture.ndim == 3 and picture.shape[2] == 1:
            picture = np.repeat(picture, 3, axis=2)  # grey: the same value in R, G and B
        rgb = rgb_of_hwc(picture)
        data.append(go.Image(z=rgb, xaxis=cell[0], yaxis=cell[1], hovertemplate="row %{y}, column %{x}<extra></extra>",
                             x0=FIRST, y0=FIRST))
        x_name, y_name = axis_names(cell)
        layout[x_name].update(showticklabels=False, showgrid=False, zeroline=False, ticks="")
        layout[y_name].update(showticklabels=False, showgrid=False, zeroline=False, ticks="", scaleanchor=cell[0])
    lines = max(len(t) if isinstance(t, (tuple, list)) else 1 for t in titles)
    top = 20 * lines + (40 if title else 10)  # room for the tallest title, and the figure's own
    layout.update(height=tile + 40 + 20 * lines, margin={"l": 10, "r": 10, "t": top, "b": 10},
                  title={"text": plain(title)} if title else None)
    return go.Figure(data=data, layout=layout)


def climb_figure(history: np.ndarray, start: float, average_example: float, best_example: float,
                 what: str = "the channel") -> go.Figure:
    """The objective at each step of the optimisation, against the average and the best
    validation example's value (dashed lines)."""
    history = np.asarray(history, dtype=float)
    steps = np.arange(FIRST, len(history) + FIRST)
    fig = go.Figure(go.Scatter(x=steps, y=history, mode="lines", name="the picture being grown",
                               hovertemplate="step %{x}: %{y:.3f}<extra></extra>"))
    ends = [FIRST, max(len(history), 1) + FIRST - 1]
    for value, label, dash in ((best_example, "the strongest validation example", "dot"),
                               (average_example, "the average validation example", "dash"),
                               (start, "the noise it started from", "dashdot")):
        fig.add_trace(go.Scatter(x=ends, y=[float(value)] * 2, mode="lines", name=label,
                                 line={"dash": dash, "color": "grey" if dash != "dot" else "black", "width": 1.5},
                                 hovertemplate=f"{label}: %{{y:.3f}}<extra></extra>"))
    fig.update_layout(height=320, margin={"l": 60, "r": 20, "t": 50, "b": 50},
                      title={"text": f"How {plain(what)} climbed, step by step"},
                      xaxis_title="step", yaxis_title="value",
                      legend={"orientation": "h", "y": -0.25})
    return fig
