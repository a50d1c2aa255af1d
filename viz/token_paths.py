"""Each token's path through a transformer's blocks, in the plane of two principal components.

Pure function: the paths ``explain.layers.token_paths`` gives in, a Plotly figure out. Every
token has its own colour (20 that differ, then the same colours dotted), a diamond where it
starts (the embedding), and one label: its word, at the end of its path, placed so that no two
labels overlap (a thin line joins a label that had to move to its point). The depths ("block
3") are named on hover rather than printed at every point, which is what made the chart
unreadable: seven labels per token, all on top of each other.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .attention import DISTINCT_COLOURS
from .labels import FIRST, plain, unique_labels

ASSUMED_PLOT_WIDTH = 560  # pixels: labels are kept apart for a plot at least this wide (a wider one only spreads them)
LABEL_HEIGHT = 16  # pixels of a 12-pixel label
CHARACTER_WIDTH = 7.5  # pixels of one character of a 12-pixel label, a little more than the average
MARGIN = dict(l=60, r=20, t=40, b=50)
PADDING = 0.08  # of each axis' span, left around the points so end labels stay inside


def path_style(index: int) -> tuple[str, str]:
    """(colour, dash) of path ``index``: 20 colours solid, then the same colours dotted, then dashed."""
    colours = DISTINCT_COLOURS
    return colours[index % len(colours)], ("solid", "dot", "dash")[index // len(colours) % 3]


def token_paths_figure(paths: Sequence[dict], axis_titles: Sequence[str] = ("PC1", "PC2"),
                       height: int = 560) -> go.Figure:
    """Paths {"label", "points" (depths, >=2), "tokens": the depth names} as lines in 2-D."""
    if not paths:
        raise ValueError("there are no tokens to draw")
    names = unique_labels([path["label"] for path in paths])
    points = [np.asarray(path["points"], dtype=float)[:, :2] for path in paths]  # each (depths, 2)
    for name, path, drawn in zip(names, paths, points):
        if drawn.ndim != 2 or drawn.shape[1] < 2 or len(drawn) != len(path["tokens"]):
            raise ValueError(f"'{name}': need (depths, >=2) points for {len(path['tokens'])} depths, got {drawn.shape}")
    every = np.concatenate(points)
    low, high = every.min(axis=0), every.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    x_range, y_range = [low[0] - PADDING * span[0], high[0] + PADDING * span[0]], \
        [low[1] - PADDING * span[1], high[1] + PADDING * span[1]]
    traces = []  # dicts: validated once, by go.Figure
    for index, (name, path, drawn) in enumerate(zip(names, paths, points)):
        colour, dash = path_style(index)
        depths = [plain(depth) for depth in path["tokens"]]
        steps = len(depths)
        traces.append(dict(type="scatter", x=drawn[:, 0], y=drawn[:, 1], mode="lines+markers", name=name,
                           line=dict(color=colour, width=2.5, dash=dash),
                           marker=dict(color=colour, size=[11] + [6] * (steps - 1),
                                       symbol=["diamond"] + ["circle"] * (steps - 1)),
                           text=depths, customdata=np.arange(FIRST, FIRST + steps),
                           hovertemplate=f"{name}<br>%{{text}} (point %{{customdata}})<extra></extra>"))
    plot_height = height - MARGIN["t"] - MARGIN["b"]
    ends = np.array([drawn[-1] for drawn in points])  # (T, 2) where each token's path ends
    offsets = label_offsets(ends, names, x_range, y_range, (ASSUMED_PLOT_WIDTH, plot_height))
    annotations = [dict(x=end[0], y=end[1], text=name, ax=dx, ay=dy, xref="x", yref="y", axref="pixel",
                        ayref="pixel", showarrow=True, arrowhead=0, arrowwidth=1, arrowcolor=path_style(i)[0],
                        font=dict(size=12, color=path_style(i)[0]), bgcolor="rgba(255,255,255,0.75)")
                   for i, (end, name, (dx, dy)) in enumerate(zip(ends, names, offsets))]
    layout = dict(height=height, margin=MARGIN, annotations=annotations, hovermode="closest",
                  legend=dict(title="token", itemclick="toggle"),
                  xaxis=dict(title=dict(text=plain(axis_titles[0])), range=x_range, zeroline=False),
                  yaxis=dict(title=dict(text=plain(axis_titles[1])), range=y_range, zeroline=False))
    return go.Figure(data=traces, layout=layout)


def label_offsets(ends: np.ndarray, names: Sequence[str], x_range: Sequence[float], y_range: Sequence[float],
                  plot_size: tuple[float, float]) -> list[tuple[float, float]]:
    """Pixel offsets (dx, dy; y down, as Plotly's ``ax``/``ay``) of each label from its point such
    that no two label boxes overlap in a plot of ``plot_size`` pixels showing these ranges.

    Greedy: labels are placed from the top of the plot down, each at the first offset in a widening
    ring around its point (straight above first) where its box overlaps none placed before."""
    pixels = to_pixels(ends, x_range, y_range, plot_size)
    placed: list[tuple[float, float, float, float]] = []
    offsets: list[tuple[float, float]] = [(0.0, 0.0)] * len(names)
    for index in np.argsort(pixels[:, 1], kind="stable"):
        size = label_size(names[index])
        for dx, dy in _candidates():
            box = label_box(pixels[index], (dx, dy), size)
            if not any(_overlap(box, other) for other in placed):
                break
        placed.append(box)
        offsets[index] = (dx, dy)
    return offsets


def to_pixels(points: np.ndarray, x_range: Sequence[float], y_range: Sequence[float],
              plot_size: tuple[float, float]) -> np.ndarray:
    """(N, 2) data points to (N, 2) pixels from the plot's top left corner."""
    width, height = plot_size
    x = (points[:, 0] - x_range[0]) / (x_range[1] - x_range[0]) * width
    y = (y_range[1] - points[:, 1]) / (y_range[1] - y_range[0]) * height
    return np.stack([x, y], axis=1)


def label_size(name: str) -> tuple[float, float]:
    """Width and height in pixels of a label's box (its entities count as one character)."""
    shown = name.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&#37;", "%")
    return CHARACTER_WIDTH * len(shown) + 6, LABEL_HEIGHT


def label_box(point: np.ndarray, offset: tuple[float, float], size: tuple[float, float]) -> tuple[float, ...]:
    """(left, top, right, bottom) of a label centred ``offset`` pixels from ``point``."""
    x, y = point[0] + offset[0], point[1] + offset[1]
    return x - size[0] / 2, y - size[1] / 2, x + size[0] / 2, y + size[1] / 2


def _candidates():
    """Offsets to try, nearest first: above, below, then further out and to the sides."""
    for ring in range(1, 40):
        distance = 14 * ring
        for dx, dy in ((0, -distance), (0, distance), (distance * 1.5, -distance), (-distance * 1.5, -distance),
                       (distance * 1.5, distance), (-distance * 1.5, distance)):
            yield float(dx), float(dy)


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
