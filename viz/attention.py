"""Figures of a transformer's attention: every head at a glance, one query's weights and the
scores behind them, and a vision transformer's attention laid over the picture.

Pure functions: numpy arrays in, a Plotly figure out (see ``explain.attention`` for the arrays).
Tokens and titles are made plain (``viz.labels``); blocks, heads and patches count from 1.
One head on its own is ``viz.activations.attention_heatmap``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .activations import axis_names, subplot_grid
from .labels import counted, numbered, plain, plain_lines, unique_labels
from .pictures import rgb_of_hwc

WEIGHT_SCALE = "Blues"  # attention weights, 0..1, as in attention_heatmap
WEIGHT_COLOUR = "#2563eb"
CHOSEN_COLOUR = "#f97316"  # the frame around the head opened below the grid
POSITIVE_COLOUR, NEGATIVE_COLOUR = "#dc2626", "#2563eb"  # signed scores: red above zero, blue below
# Overlay on a picture: low attention fades out so the picture shows, high attention glows.
OVERLAY_SCALE = [[0.0, "rgba(255,255,0,0.0)"], [0.5, "rgba(255,140,0,0.55)"], [1.0, "rgba(220,20,20,0.85)"]]


def attention_grid(patterns: np.ndarray, labels: Sequence[str], tile: int = 150,
                   chosen: tuple[int, int] | None = None, clickable: bool = False) -> go.Figure:
    """(L, heads, T, T) patterns as L rows (blocks) × heads columns of small heatmaps, all on one 0..1
    colour scale (one shared colour axis keeps a 12×12 grid light: no colour bar per tile).

    Rows are labelled "block 1", "block 2", ... on the left and columns "head 1", ... on top;
    ``tile`` is a row's height in pixels. ``chosen`` (block, head), 0-based, is framed.
    ``clickable`` puts one click target on each tile (a point whose ``customdata`` is its
    0-based [block, head]): Plotly selects points, never heatmap cells, so this is what a click
    on a tile selects (``st.plotly_chart(on_select=...)``). Then hovering anywhere on a tile
    names it and its strongest link; otherwise hovering a cell names its query and key.
    """
    patterns = np.asarray(patterns, dtype=float)
    if patterns.ndim != 4 or patterns.shape[2] != patterns.shape[3]:
        raise ValueError(f"attention_grid needs (blocks, heads, T, T) patterns, got shape {patterns.shape}")
    layers, heads, length, _ = patterns.shape
    if len(labels) != length:
        raise ValueError(f"there are {len(labels)} labels for {length} positions")
    names = unique_labels(labels)
    top, left = 30, 62  # pixels: room for the head labels above and the block labels on the left
    height = layers * tile + top + 10
    # The layout is written out as one dict rather than through make_subplots and per-axis
    # updates: Plotly re-validates the figure on every such call, which takes seconds at 144 tiles.
    layout = dict(height=height, margin=dict(l=left, r=10, t=top, b=10), annotations=[], shapes=[],
                  showlegend=False, hovermode="closest",
                  coloraxis=dict(colorscale=WEIGHT_SCALE, cmin=0, cmax=1,
                                 colorbar=dict(title="weight", thickness=12, len=min(1.0, 300 / (layers * tile)))))
    if clickable:
        layout["hoverdistance"] = -1  # the tile's one target answers wherever the pointer is on the tile
    traces = []
    # Tiles fill their cells (not forced square), so the labels sit right against them; the
    # caller picks ``tile`` near the width a column gets, which keeps them about square.
    x_domains = _domains(heads, gap=min(0.01, 0.3 / heads))
    y_domains = _domains(layers, gap=min(6 / (layers * tile), 0.3 / layers))[::-1]  # block 1 at the top
    label_font = dict(size=11 if heads <= 16 else 9)
    for head in range(heads):
        layout["annotations"].append(dict(text=numbered("head", head), x=sum(x_domains[head]) / 2, y=1, xref="paper",
                                          yref="paper", xanchor="center", yanchor="bottom", showarrow=False,
                                          font=label_font))
    for layer in range(layers):
        layout["annotations"].append(dict(text=numbered("block", layer), x=0, y=sum(y_domains[layer]) / 2, xref="paper",
                                          yref="paper", xanchor="right", yanchor="middle", xshift=-4,
                                          showarrow=False, font=label_font))
    # fixedrange: a zoomable axis puts drag handles along its ends, which on a 60-pixel tile cover
    # most of it and swallow the hover and the click.
    hidden = dict(type="category", showticklabels=False, ticks="", showgrid=False, zeroline=False, fixedrange=True)
    middle = names[(length - 1) // 2]
    for layer, head in np.ndindex(layers, heads):
        suffix = "" if layer == head == 0 else str(layer * heads + head + 1)
        title = f"{numbered('block', layer)} · {numbered('head', head)}"
        x_axis, y_axis = f"x{suffix}", f"y{suffix}"
        pattern = patterns[layer, head]
        traces.append(dict(type="heatmap", z=pattern, x=names, y=names, coloraxis="coloraxis", name=title,
                           xaxis=x_axis, yaxis=y_axis,
                           hovertemplate=f"{title}<br>%{{y}} → %{{x}}: %{{z:.3f}}<extra></extra>"))
        if clickable:
            query, key = np.unravel_index(int(np.argmax(pattern)), pattern.shape)
            traces.append(dict(type="scatter", x=[middle], y=[middle], mode="markers", name=title,
                               marker=dict(size=max(8, tile // 2), color="rgba(0,0,0,0)"),
                               customdata=[[layer, head]], xaxis=x_axis, yaxis=y_axis,
                               hovertemplate=f"<b>{title}</b><br>strongest: {names[query]} → {names[key]} "
                                             f"({pattern[query, key]:.2f})<br>click to open this head<extra></extra>"))
        layout[f"xaxis{suffix}"] = dict(hidden, domain=x_domains[head], anchor=y_axis)
        layout[f"yaxis{suffix}"] = dict(hidden, domain=y_domains[layer], anchor=x_axis, autorange="reversed")
    if chosen is not None:
        layer, head = chosen
        if 0 <= layer < layers and 0 <= head < heads:
            layout["shapes"].append(dict(type="rect", xref="paper", yref="paper", x0=x_domains[head][0],
                                         x1=x_domains[head][1], y0=y_domains[layer][0], y1=y_domains[layer][1],
                                         line=dict(color=CHOSEN_COLOUR, width=3)))
    return go.Figure(data=traces, layout=layout)


# 20 colours that read on white, each far from the others (CIELAB distance over 30; picked greedily,
# farthest first, from Plotly's qualitative palettes): heads, and tokens in viz.token_paths.
DISTINCT_COLOURS = ["#2E91E5", "#FB0D0D", "#66AA00", "#FE00FA", "#8C564B", "#00A08B", "#1616A7", "#FC0080", "#B68100",
                    "#984EA3", "#0D2A63", "#6C7C32", "#ED645A", "#222A2A", "#6E899C", "#6A76FC", "#511CFB", "#FF7F00",
                    "#620042", "#F781BF"]
LINE_WIDTH_PER_WEIGHT = 10.0  # pixels of line for a weight of 1: a line's width is its weight × this
ROW_PIXELS = 24  # the lines view's height per token: one row of its y axis
LEAST_LINE_WEIGHT = 0.05  # weights below this get no line: hundreds of hairlines would hide the strong ones


def distinct_colours(count: int) -> list[str]:
    """``count`` colours, all different up to 20 (then they repeat)."""
    return [DISTINCT_COLOURS[index % len(DISTINCT_COLOURS)] for index in range(count)]


def attention_lines(patterns: np.ndarray, labels: Sequence[str], heads: Sequence[int] | None = None,
                    least: float = LEAST_LINE_WEIGHT) -> go.Figure:
    """One block's (heads, T, T) patterns as lines, as BertViz draws them: the tokens that look on
    the left, the tokens looked at on the right, one band from query i to key j per head whose
    weight is at least ``least``, ``weight × LINE_WIDTH_PER_WEIGHT`` pixels thick, one colour per
    head. Only ``heads`` (0-based; all when None) are drawn; the legend switches each on and off.

    Why bands, not lines: a Plotly line has one width per trace, and a trace per line took a
    millisecond each (hundreds per block). A band is a four-cornered polygon; all of a head's
    bands are one filled trace, and one row of the plot is exactly ROW_PIXELS high, so a band
    ``weight × LINE_WIDTH_PER_WEIGHT / ROW_PIXELS`` rows thick (measured up and down) is that
    many pixels."""
    patterns = np.asarray(patterns, dtype=float)
    if patterns.ndim != 3 or patterns.shape[1] != patterns.shape[2]:
        raise ValueError(f"attention_lines needs (heads, T, T) patterns, got shape {patterns.shape}")
    count, length, _ = patterns.shape
    if len(labels) != length:
        raise ValueError(f"there are {len(labels)} labels for {length} positions")
    drawn = list(range(count)) if heads is None else [int(h) for h in heads]
    names = unique_labels(labels)
    colours = distinct_colours(count)
    rows = -np.arange(length, dtype=float)  # token i at y = -i: the sentence reads downwards
    traces = []
    for head in drawn:
        group, name = f"head{counted(head)}", numbered("head", head)
        queries, keys = np.nonzero(patterns[head] >= least)
        weights = patterns[head][queries, keys]
        half = weights * LINE_WIDTH_PER_WEIGHT / ROW_PIXELS / 2  # (lines,) half a band's thickness, in rows
        x = np.tile([0.0, 0.0, 1.0, 1.0, np.nan], len(weights))  # NaN: a gap, so each band is its own shape
        y = np.stack([rows[queries] - half, rows[queries] + half, rows[keys] + half, rows[keys] - half,
                      np.full(len(weights), np.nan)], axis=1).ravel()
        traces.append(dict(type="scatter", x=x, y=y, mode="none", fill="toself", fillcolor=colours[head],
                           opacity=0.6, name=name, legendgroup=group, hoverinfo="skip"))
        # Filled shapes name only their trace on hover; a point in the middle of each band says its weight.
        traces.append(dict(type="scatter", x=np.full(len(weights), 0.5), y=(rows[queries] + rows[keys]) / 2,
                           mode="markers", marker=dict(size=10, color="rgba(0,0,0,0)"), legendgroup=group,
                           showlegend=False, name=name, customdata=weights,
                           text=[f"{names[q]} → {names[k]}" for q, k in zip(queries, keys)],
                           hovertemplate=f"{name}: %{{text}}: %{{customdata:.3f}}<extra></extra>"))
    for side, position in ((-0.02, "middle left"), (1.02, "middle right")):  # a little air between word and band
        traces.append(dict(type="scatter", x=[side] * length, y=rows, mode="text", text=names, textposition=position,
                           showlegend=False, hoverinfo="skip", textfont=dict(size=13)))
    top, bottom = 50, 10
    span = (length - 1 + 0.6, 1.4)  # rows below the first token's (to the last, and some air) and above it
    layout = dict(height=top + bottom + round(ROW_PIXELS * sum(span)), margin=dict(l=10, r=10, t=top, b=bottom),
                  legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, title="heads (click to hide or show):"),
                  xaxis=dict(range=[-0.6, 1.6], visible=False, fixedrange=True),
                  yaxis=dict(range=[-span[0], span[1]], visible=False, fixedrange=True),
                  annotations=[dict(text="token that looks", x=0, y=0.9, xref="x", yref="y", xanchor="right",
                                    yanchor="middle", showarrow=False, font=dict(color="#6b7280")),
                               dict(text="token looked at", x=1, y=0.9, xref="x", yref="y", xanchor="left",
                                    yanchor="middle", showarrow=False, font=dict(color="#6b7280"))])
    return go.Figure(data=traces, layout=layout)


def _domains(count: int, gap: float) -> list[list[float]]:
    """[start, end] paper fractions of ``count`` equal cells separated by ``gap``, left to right."""
    size = (1 - gap * (count - 1)) / count
    return [[index * (size + gap), min(1.0, index * (size + gap) + size)] for index in range(count)]  # min: rounding


def query_bars(weights: np.ndarray, labels: Sequence[str], query_label: str) -> go.Figure:
    """Horizontal bars of where one query attends: one bar per key, in sentence order."""
    weights = np.asarray(weights, dtype=float)
    _check_row(weights, labels, "weights")
    names = unique_labels(labels)
    query_label = plain(query_label)
    return go.Figure(  # dicts: validated once, by go.Figure
        data=[dict(type="bar", x=weights, y=names, orientation="h", text=[f"{w:.2f}" for w in weights],
                   textposition="auto", marker_color=WEIGHT_COLOUR,
                   hovertemplate=f"{query_label} → %{{y}}: %{{x:.3f}}<extra></extra>")],
        layout=dict(title=f"where “{query_label}” attends", height=90 + 24 * len(names),
                    margin=dict(l=10, r=10, t=40, b=30), xaxis=dict(range=[0, 1], title="attention weight"),
                    yaxis=dict(type="category", autorange="reversed")))


def scores_figure(scores: np.ndarray, weights: np.ndarray, labels: Sequence[str]) -> go.Figure:
    """Two bar panels side by side for one query: the raw scores qk/√d and the weights the
    softmax turns them into, so the effect of the softmax (sharpening, positives) is visible."""
    scores, weights = np.asarray(scores, dtype=float), np.asarray(weights, dtype=float)
    _check_row(scores, labels, "scores")
    _check_row(weights, labels, "weights")
    names = unique_labels(labels)
    # One dict layout and dict traces, validated once by go.Figure (see viz.activations.subplot_grid).
    layout, ((x1, y1), (x2, y2)) = subplot_grid(1, 2, ["score qk/√d (before softmax)", "weight (after softmax)"],
                                                horizontal_spacing=0.06)
    bars = [dict(type="bar", x=scores, y=names, orientation="h", text=[f"{s:.2f}" for s in scores],
                 textposition="auto", marker_color=[POSITIVE_COLOUR if s >= 0 else NEGATIVE_COLOUR for s in scores],
                 name="score", hovertemplate="%{y}: score %{x:.3f}<extra></extra>", xaxis=x1, yaxis=y1),
            dict(type="bar", x=weights, y=names, orientation="h", text=[f"{w:.2f}" for w in weights],
                 textposition="auto", marker_color=WEIGHT_COLOUR, name="weight",
                 hovertemplate="%{y}: weight %{x:.3f}<extra></extra>", xaxis=x2, yaxis=y2)]
    for cell in ((x1, y1), (x2, y2)):
        layout[axis_names(cell)[1]].update(type="category", autorange="reversed")
    layout["yaxis2"].update(matches=y1, showticklabels=False)  # one shared y axis, as make_subplots(shared_yaxes=True)
    layout["xaxis2"]["range"] = [0, 1]
    layout.update(height=100 + 24 * len(names), showlegend=False, margin=dict(l=10, r=10, t=40, b=30))
    return go.Figure(data=bars, layout=layout)


def patch_attention_figure(image: np.ndarray, maps: np.ndarray, patch_size: int,
                           titles: Sequence[str] | None = None, show_average: bool = True,
                           tile: int = 220) -> go.Figure:
    """The picture once per head with that head's (rows, cols) patch attention drawn over it,
    each map cell covering its patch_size × patch_size pixels; plus the mean of the heads.

    ``image`` is (H, W, 3) (uint8 as is, other types stretched to 0..255) or (H, W) grey.
    All overlays share one colour axis from the smallest to the largest weight, so heads compare.
    """
    picture = rgb_of_hwc(image)
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3:
        raise ValueError(f"patch_attention_figure needs (heads, rows, cols) maps, got shape {maps.shape}")
    heads, rows, cols = maps.shape
    height, width = picture.shape[:2]
    if (rows * patch_size, cols * patch_size) != (height, width):
        raise ValueError(f"{rows}×{cols} patches of {patch_size} pixels do not cover a {height}×{width} picture")
    titles = [plain_lines(t) for t in titles] if titles is not None else [numbered("head", h) for h in range(heads)]
    if len(titles) != heads:
        raise ValueError(f"there are {len(titles)} titles for {heads} heads")
    panels = [*maps, maps.mean(axis=0)] if show_average else list(maps)  # each (rows, cols)
    titles = [*titles, "mean of heads"] if show_average else titles
    # One dict layout and dict traces, validated once by go.Figure (see viz.activations.subplot_grid).
    layout, cells = subplot_grid(1, len(panels), titles, horizontal_spacing=0.02, title_size=11)
    # go.Image puts pixel i's centre at i, covering [i - 0.5, i + 0.5]; a patch of p pixels
    # starting at pixel c*p therefore has its centre at c*p + (p - 1) / 2, and a cell p wide there
    # spans exactly its pixels.
    centre = (patch_size - 1) / 2
    patch_numbers = np.stack(np.meshgrid(np.arange(1, rows + 1), np.arange(1, cols + 1), indexing="ij"), axis=-1)
    traces = []  # patch_numbers: (rows, cols, 2) 1-based patch row and column, for the hover
    for index, (panel, (x, y)) in enumerate(zip(panels, cells)):
        traces.append(dict(type="image", z=picture, hoverinfo="skip", xaxis=x, yaxis=y))
        traces.append(dict(
            type="heatmap", z=panel, x0=centre, dx=patch_size, y0=centre, dy=patch_size, coloraxis="coloraxis",
            name=titles[index], customdata=patch_numbers, xaxis=x, yaxis=y,
            hovertemplate=f"{titles[index]}<br>patch row %{{customdata[0]}}, col %{{customdata[1]}}: "
                          f"%{{z:.3f}}<extra></extra>"))
    for cell in cells:  # square pixels (y follows its own x axis), row 0 on top, as in the picture
        x_name, y_name = axis_names(cell)
        layout[x_name].update(visible=False, range=[-0.5, width - 0.5], constrain="domain")
        layout[y_name].update(visible=False, range=[height - 0.5, -0.5], constrain="domain", scaleanchor=cell[0])
    # Stretched from the weakest to the strongest weight: an untrained or diffuse head gives
    # nearly equal weights (about 1/T each), which a 0-based scale would paint one flat colour.
    low, high = float(maps.min()), float(maps.max())
    layout.update(height=tile + 50, margin=dict(l=10, r=10, t=30, b=10),
                  coloraxis=dict(colorscale=OVERLAY_SCALE, cmin=low, cmax=high if high > low else low + 1e-6,
                                 colorbar=dict(title="attention", thickness=12)))
    return go.Figure(data=traces, layout=layout)


def _check_row(values: np.ndarray, labels: Sequence[str], what: str) -> None:
    if values.ndim != 1 or len(values) != len(labels):
        raise ValueError(f"need one value per label ({len(labels)}) for the {what}, got shape {values.shape}")
