"""Figures of what is inside a model: map grids (filters, feature maps), attention, predictions.

Pure functions: numpy arrays in, a Plotly figure out. Text from a user enters through
``viz.labels.plain`` / ``unique_labels``; a map's pixel (row, col) is drawn centred on
(col + 1, row + 1), so hovering it reads row and column counted from 1.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .labels import FIRST, counted, plain, plain_lines, unique_labels

DIVERGING = "RdBu_r"  # signed values: blue negative, white zero, red positive
SEQUENTIAL = "Viridis"


def subplot_grid(rows: int, cols: int, titles: Sequence[str] = (), horizontal_spacing: float | None = None,
                 vertical_spacing: float | None = None, title_size: int = 16) -> tuple[dict, list[tuple[str, str]]]:
    """The layout ``make_subplots(rows, cols, subplot_titles=titles, ...)`` makes, as a plain dict,
    and the (xaxis, yaxis) pair of each cell in row-major order (the values a trace's ``xaxis`` and
    ``yaxis`` take).

    Why: make_subplots builds and re-validates a graph object per axis and per title, and each
    later ``update_*axes`` call walks them all again, which took most of a second for the ~100
    tiles of a CNN page. A dict is validated once, when the figure is made from it. The domains
    and titles are computed exactly as make_subplots computes them (row 1 at the top), so the
    figure is the same.
    """
    horizontal_spacing = 0.2 / cols if horizontal_spacing is None else horizontal_spacing
    if vertical_spacing is None:  # make_subplots leaves more room between rows when they have titles
        vertical_spacing = (0.5 if titles else 0.3) / rows
    width = (1.0 - horizontal_spacing * (cols - 1)) / cols
    height = (1.0 - vertical_spacing * (rows - 1)) / rows
    layout: dict = {"annotations": []}
    cells = []
    for row, col in np.ndindex(rows, cols):
        left = sum([width] * col) + col * horizontal_spacing  # summed as make_subplots sums, to the last bit
        from_bottom = rows - 1 - row
        bottom = sum([height] * from_bottom) + from_bottom * vertical_spacing
        x_domain = [max(left, 0.0), min(left + width, 1.0)]  # float dust clipped, as there
        y_domain = [max(bottom, 0.0), min(bottom + height, 1.0)]
        number = row * cols + col + 1
        suffix = "" if number == 1 else str(number)
        layout[f"xaxis{suffix}"] = {"domain": x_domain, "anchor": f"y{suffix}"}
        layout[f"yaxis{suffix}"] = {"domain": y_domain, "anchor": f"x{suffix}"}
        cells.append((f"x{suffix}", f"y{suffix}"))
        if number <= len(titles) and titles[number - 1]:
            layout["annotations"].append({
                "text": titles[number - 1], "x": sum(x_domain) / 2.0, "y": y_domain[1], "xref": "paper",
                "yref": "paper", "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                "font": {"size": title_size}})
    return layout, cells


def axis_names(cell: tuple[str, str]) -> tuple[str, str]:
    """("x3", "y3") -> ("xaxis3", "yaxis3"): the layout keys of a cell's axes."""
    return "xaxis" + cell[0][1:], "yaxis" + cell[1][1:]


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
    titles = [plain_lines(t) for t in titles] if titles is not None else [str(counted(i)) for i in range(n)]
    signed = bool(maps.min() < 0) if signed is None else signed
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    layout, cells = subplot_grid(rows, cols, titles, horizontal_spacing=0.015,
                                 vertical_spacing=min(0.08, 0.3 / rows), title_size=10)
    bound = float(np.abs(maps).max()) or 1.0
    tiles = []
    for index, cell in enumerate(cells[:n]):
        tile_map = maps[index]
        if shared_scale:
            low, high = (-bound, bound) if signed else (float(maps.min()), float(maps.max()))
        else:
            own = float(np.abs(tile_map).max()) or 1.0
            low, high = (-own, own) if signed else (float(tile_map.min()), float(tile_map.max()))
        # Plain dicts: go.Figure validates each trace once (a go.Heatmap here would be validated twice).
        tiles.append(dict(type="heatmap", z=tile_map, x0=FIRST, y0=FIRST,  # hover: row and col from 1
                          zmin=low, zmax=high if high > low else low + 1,
                          colorscale=DIVERGING if signed else SEQUENTIAL, showscale=shared_scale and index == 0,
                          hovertemplate=f"{titles[index]}<br>row %{{y}}, col %{{x}}: %{{z:.3f}}<extra></extra>",
                          xaxis=cell[0], yaxis=cell[1]))
    for cell in cells:  # every tile square (y follows its own x axis), row 0 at the top, no axes drawn
        x_name, y_name = axis_names(cell)
        layout[x_name].update(visible=False, constrain="domain")
        layout[y_name].update(visible=False, autorange="reversed", scaleanchor=cell[0], constrain="domain")
    layout.update(height=rows * tile + 40, margin=dict(l=10, r=10, t=30, b=10))
    return go.Figure(data=tiles, layout=layout)


def attention_heatmap(pattern: np.ndarray, tokens: Sequence[str], title: str = "") -> go.Figure:
    """One head's (Tq, Tk) attention weights with the tokens on both axes (rows attend to columns)."""
    pattern = np.asarray(pattern, dtype=float)
    labels = unique_labels(tokens)
    title = plain(title)
    side = min(640, 160 + 26 * len(labels))
    return go.Figure(  # dicts: validated once, by go.Figure
        data=[dict(type="heatmap", z=pattern, x=labels, y=labels, zmin=0, zmax=1, colorscale="Blues",
                   colorbar=dict(title="weight"), hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>")],
        layout=dict(title=title or None, height=side, margin=dict(l=80, r=20, t=40 if title else 20, b=80),
                    xaxis=dict(title="attends to (key)", type="category", tickangle=-45),
                    yaxis=dict(title="token (query)", type="category", autorange="reversed")))


def probability_axis(largest: float = 1.0) -> dict:
    """An axis of probabilities: 0% to 100% (or the largest value, should one exceed 1), every
    tick labelled up to the end. The end label ("100%") sits half outside the plot, so a figure
    using this axis across leaves ``PERCENT_ROOM`` pixels of margin on the right: with less,
    Plotly hides the label and the axis seems to stop at 80% while a bar reaches 100%."""
    end = max(1.0, float(largest))
    return dict(range=[0, end], tickvals=[i / 5 for i in range(6)], tickformat=".0%")


PERCENT_ROOM = 30  # pixels: half of a "100%" tick label, and some air


def probability_bars(probabilities: np.ndarray, class_names: Sequence[str], top_k: int | None = None) -> go.Figure:
    """Horizontal bars of class probabilities, most likely on top, on an axis from 0 to 100%."""
    probabilities = np.asarray(probabilities, dtype=float)
    order = np.argsort(-probabilities)[: top_k or len(probabilities)]
    names = unique_labels([class_names[i] for i in order])
    return go.Figure(  # dicts: validated once, by go.Figure
        data=[dict(type="bar", x=probabilities[order], y=names, orientation="h",
                   text=[f"{p:.1%}" for p in probabilities[order]], textposition="auto", marker_color="#2563eb",
                   hovertemplate="%{y}: %{x:.3f}<extra></extra>")],
        layout=dict(height=80 + 28 * len(order), margin=dict(l=10, r=PERCENT_ROOM, t=10, b=30),
                    xaxis=probability_axis(probabilities.max(initial=0.0)),
                    yaxis=dict(autorange="reversed", type="category")))
