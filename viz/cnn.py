"""Figures of a CNN's inside: feature maps, a pooling step, a receptive field, one conv value by hand.

Pure functions: numpy arrays in, a Plotly figure out (``explain.cnn`` computes the arrays).
Rectangles are layout shapes with a ``name`` ("window", "cell", "grid", "receptive field"), so
a page can restyle them and a test can find them. Arguments are 0-based indices (code); what is
drawn counts from 1, as the page's inputs do: pixel (row, col) is drawn centred on
(col + FIRST, row + FIRST), so hovering it reads "row 9, col 9" for index (8, 8), and a box
(top, left, bottom, right) with exclusive bottom/right spans left + FIRST - 0.5 .. right + FIRST - 0.5.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explain.cnn import ConvArithmetic, window_box

from .activations import DIVERGING, SEQUENTIAL, axis_names, heatmap_grid, subplot_grid
from .labels import FIRST, numbered, plain, stage_label
from .pictures import rgb_of_hwc

HIGHLIGHT = "#f59e0b"  # amber: stands out on both the diverging and the viridis scales
GRID = {SEQUENTIAL: "rgba(255, 255, 255, 0.55)", DIVERGING: "rgba(0, 0, 0, 0.3)"}  # faint, yet seen on each scale


def feature_maps_figure(maps: np.ndarray, shared_scale: bool = True, cols: int = 8, title: str = "channel"
                        ) -> go.Figure:
    """(N, H, W) feature maps as a grid of heatmaps titled "channel 1", "channel 2", ... (1-based;
    ``heatmap_grid`` makes the titles plain)."""
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3:
        raise ValueError(f"feature_maps_figure needs (N, H, W) maps, got shape {maps.shape}")
    return heatmap_grid(maps, [numbered(title, i) for i in range(maps.shape[0])], cols=cols, shared_scale=shared_scale)


def _box_shape(box: tuple[int, int, int, int], name: str, axis: str = "", colour: str = HIGHLIGHT,
               width: float = 3) -> dict:
    top, left, bottom, right = box
    return dict(type="rect", name=name, xref=f"x{axis}", yref=f"y{axis}", x0=left + FIRST - 0.5,
                x1=right + FIRST - 0.5, y0=top + FIRST - 0.5, y1=bottom + FIRST - 0.5,
                line=dict(color=colour, width=width))


def _colour_range(*arrays: np.ndarray) -> tuple[float, float, str]:
    """(zmin, zmax, colorscale) shared by ``arrays``: centred on zero when anything is negative."""
    low = min(float(a.min()) for a in arrays)
    high = max(float(a.max()) for a in arrays)
    if low < 0:
        bound = max(-low, high) or 1.0
        return -bound, bound, DIVERGING
    return low, high if high > low else low + 1, SEQUENTIAL


def pooling_figure(before: np.ndarray, after: np.ndarray, kernel: int, stride: int, padding: int, kind: str,
                   highlight: tuple[int, int] | None = None) -> go.Figure:
    """A pool's (H, W) input and (H', W') output side by side on one colour range; faint lines mark
    the windows, and the window of the ``highlight`` output cell is outlined on both sides."""
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if before.ndim != 2 or after.ndim != 2:
        raise ValueError(f"pooling_figure needs one channel: (H, W) maps, got {before.shape} and {after.shape}")
    (height, width), (out_h, out_w) = before.shape, after.shape
    pad = f", padding {padding}" if padding else ""
    titles = (f"input {height}×{width}", f"{kind} pool {kernel}×{kernel}, stride {stride}{pad} → {out_h}×{out_w}")
    # One dict layout and dict traces, validated once by go.Figure (see viz.activations.subplot_grid).
    layout, cells = subplot_grid(1, 2, titles, horizontal_spacing=0.08)
    zmin, zmax, scale = _colour_range(before, after)
    traces = [dict(type="heatmap", z=values, x0=FIRST, y0=FIRST, zmin=zmin, zmax=zmax, colorscale=scale,
                   showscale=label == "pooled",
                   hovertemplate=f"{label} row %{{y}}, col %{{x}}: %{{z:.3f}}<extra></extra>", xaxis=x, yaxis=y)
              for (values, label), (x, y) in zip(((before, "input"), (after, "pooled")), cells)]
    shapes = []
    # Window edges: where a window starts or ends, clipped to the input (padding is off the picture).
    rows_edges = sorted({edge for r in range(out_h) for edge in window_box(r, 0, kernel, stride, padding, height, width)[::2]})
    cols_edges = sorted({edge for c in range(out_w) for edge in window_box(0, c, kernel, stride, padding, height, width)[1::2]})
    start = FIRST - 0.5  # the left (top) border of column (row) 0, as drawn
    for edge in rows_edges:
        shapes.append(dict(type="line", name="grid", xref="x", yref="y", x0=start, x1=start + width,
                           y0=start + edge, y1=start + edge, line=dict(color=GRID[scale], width=1)))
    for edge in cols_edges:
        shapes.append(dict(type="line", name="grid", xref="x", yref="y", y0=start, y1=start + height,
                           x0=start + edge, x1=start + edge, line=dict(color=GRID[scale], width=1)))
    if highlight is not None:
        row, col = highlight
        if not (0 <= row < out_h and 0 <= col < out_w):
            raise ValueError(f"the pooled map is {out_h}×{out_w}: there is no cell at {numbered('row', row)}, "
                             f"{numbered('column', col)}")
        shapes.append(_box_shape(window_box(row, col, kernel, stride, padding, height, width), "window"))
        shapes.append(_box_shape((row, col, row + 1, col + 1), "cell", axis="2"))
    for cell in cells:  # square pixels (y follows its own x axis), row 0 at the top
        x_name, y_name = axis_names(cell)
        layout[x_name].update(visible=False, constrain="domain")
        layout[y_name].update(visible=False, autorange="reversed", constrain="domain", scaleanchor=cell[0])
    layout.update(shapes=shapes, height=380, margin=dict(l=10, r=10, t=40, b=10))
    return go.Figure(data=traces, layout=layout)


def receptive_field_figure(image: np.ndarray, box: tuple[int, int, int, int], title: str = "") -> go.Figure:
    """The input picture, (H, W) values or (H, W, 3) colour, with the receptive field box drawn on it."""
    image = np.asarray(image)
    if image.ndim == 2:
        height, width = image.shape
        trace = dict(type="heatmap", z=image.astype(float), x0=FIRST, y0=FIRST, colorscale="gray", showscale=False,
                     hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>")
    elif image.ndim == 3 and image.shape[2] == 3:
        height, width = image.shape[:2]
        pixels = rgb_of_hwc(image)  # (H, W, 3) uint8
        trace = dict(type="image", z=pixels, x0=FIRST, y0=FIRST,
                     hovertemplate="row %{y}, col %{x}: %{z}<extra></extra>")
    else:
        raise ValueError(f"receptive_field_figure needs an (H, W) or (H, W, 3) image, got shape {image.shape}")
    top, left, bottom, right = box
    title = plain(title)
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        raise ValueError(f"the box {tuple(box)} does not lie inside the {height}×{width} image")
    return go.Figure(data=[trace], layout=dict(  # dicts: validated once, by go.Figure
        shapes=[_box_shape(box, "receptive field")], title=title or None, height=360,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10), xaxis=dict(visible=False, constrain="domain"),
        yaxis=dict(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")))


def conv_arithmetic_figure(arith: ConvArithmetic, max_channels: int = 4, channels: Sequence[int] | None = None,
                           decimals: int = 2) -> go.Figure:
    """patch | kernel | patch⊙kernel for one input channel per row, each cell's number written in it.

    By default the ``max_channels`` input channels that contribute most (largest |partial sum|)
    are shown, biggest first; ``channels`` picks them instead (0-based).
    """
    partial = arith.products.sum(axis=(1, 2))  # (I,) each input channel's share of the weighted sum
    if channels is None:
        channels = list(np.argsort(-np.abs(partial), kind="stable")[:max(1, max_channels)])
    channels = [int(c) for c in channels]
    if not channels or any(not 0 <= c < len(partial) for c in channels):
        raise ValueError(f"input channels must be between 0 and {len(partial) - 1}, got {channels}")
    titles = []
    for c in channels:
        titles += [f"{numbered('input channel', c)}: patch", "kernel",
                   f"patch ⊙ kernel: sum {partial[c]:.{decimals}f}"]
    layout, cells = subplot_grid(len(channels), 3, titles, horizontal_spacing=0.06,
                                 vertical_spacing=min(0.12, 0.4 / len(channels)), title_size=11)
    columns = (arith.patch, arith.kernel, arith.products)  # each (I, k, k)
    traces = []  # column by column: every patch, then every kernel, then every product
    for col, values in enumerate(columns):
        shown = values[channels]  # (n, k, k): one colour range per column, so rows compare
        zmin, zmax, scale = _colour_range(shown)
        for row, c in enumerate(channels):
            text = [[_cell_text(v, decimals) for v in line] for line in values[c]]  # (k, k) strings
            x, y = cells[row * 3 + col]
            traces.append(dict(type="heatmap", z=values[c], x0=FIRST, y0=FIRST, text=text, texttemplate="%{text}",
                               zmin=zmin, zmax=zmax,
                               colorscale=scale, showscale=False, xaxis=x, yaxis=y,
                               hovertemplate="u %{y}, v %{x}: %{z:.4f}<extra></extra>"))
    for cell in cells:  # square cells (each y axis follows its own x axis), row 0 at the top
        x_name, y_name = axis_names(cell)
        layout[x_name].update(visible=False, constrain="domain")
        layout[y_name].update(visible=False, autorange="reversed", constrain="domain", scaleanchor=cell[0])
    shown = "" if len(channels) == len(partial) else f" (showing {len(channels)} of {len(partial)} input channels)"
    where = ", ".join(numbered(noun, index) for noun, index in (("channel", arith.channel), ("row", arith.row),
                                                                 ("col", arith.col)))
    layout.update(title=f"{stage_label(arith.layer)}, {where}: "
                        f"sum {arith.weighted_sum:.{decimals + 2}f}{shown}",
                  height=170 * len(channels) + 70, margin=dict(l=10, r=10, t=70, b=10))
    return go.Figure(data=traces, layout=layout)


def _cell_text(value: float, decimals: int) -> str:
    """The number written in a cell; a tiny negative shows as 0.00, not -0.00."""
    text = f"{value:.{decimals}f}"
    return f"{0:.{decimals}f}" if float(text) == 0 else text
