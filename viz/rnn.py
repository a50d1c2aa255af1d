"""Figures of a recurrent network reading a sentence: paths through hidden space, unit and gate
heatmaps, and one step's numbers.

Pure functions: numpy arrays in, a Plotly figure out (``explain.rnn`` computes the arrays).
The prediction after each prefix is ``viz.probe.prefix_predictions_figure``. Words and sentences
are made plain (``viz.labels``); units and words count from 1.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from explain.rnn import GATE_SYMBOLS, TANH_GATES, StepArithmetic  # the data type and its gate conventions

from .activations import DIVERGING, axis_names, subplot_grid
from .labels import FIRST, glyphs, numbered, plain, unique_labels

GATE_SCALE = "Blues"  # sigmoid gates: 0 (closed) white to 1 (open) blue


def trajectory_figure(paths: list[dict], dims: int = 2, axis_titles: list[str] | None = None,
                      height: int = 480) -> go.Figure:
    """Each path {"label", "points" (T, k), "tokens" (T,)} as a line through the words, in 2-D or 3-D.

    The first point (the first word) is drawn larger, as a diamond, so the direction of reading
    is visible; each point is labelled with its word.
    """
    if dims not in (2, 3):
        raise ValueError(f"a trajectory is drawn in 2 or 3 dimensions, not {dims}")
    titles = [plain(t) for t in axis_titles] if axis_titles is not None else [f"PC{i + FIRST}" for i in range(dims)]
    if len(titles) < dims:
        raise ValueError(f"need {dims} axis titles, got {len(titles)}")
    palette = qualitative.Plotly
    lines = []  # dicts: validated once, by go.Figure
    for index, path in enumerate(paths):
        points = np.asarray(path["points"], dtype=float)
        tokens = [str(token) for token in path["tokens"]]
        label = plain(path["label"]) if "label" in path else numbered("path", index)
        if points.ndim != 2 or points.shape[1] < dims or points.shape[0] != len(tokens):
            raise ValueError(f"'{label}': need (T, >={dims}) points for {len(tokens)} words, got shape {points.shape}")
        steps = len(tokens)
        colour = palette[index % len(palette)]
        marker = dict(color=colour, size=[12] + [6] * (steps - 1), symbol=["diamond"] + ["circle"] * (steps - 1))
        # The 2-D labels and every hover label are drawn as HTML (entities decoded); a 3-D scene
        # draws its point labels with a text engine of its own, which decodes none (viz.labels.glyphs).
        text = [plain(token) for token in tokens] if dims == 2 else [glyphs(token) for token in tokens]
        common = dict(mode="lines+markers+text", name=label, text=text, marker=marker,
                      line=dict(color=colour, width=3 if dims == 2 else 5), customdata=np.arange(FIRST, FIRST + steps),
                      hovertemplate=f"{label}<br>word %{{customdata}}: %{{text}}<extra></extra>")
        if dims == 2:
            lines.append(dict(type="scatter", x=points[:, 0], y=points[:, 1], textposition="top center", **common))
        else:
            lines.append(dict(type="scatter3d", x=points[:, 0], y=points[:, 1], z=points[:, 2], **common))
    layout = dict(height=height, margin=dict(l=40, r=10, t=30, b=40),
                  legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    if dims == 2:
        layout.update(xaxis=dict(title=dict(text=titles[0])), yaxis=dict(title=dict(text=titles[1])))
    else:
        layout["scene"] = dict(xaxis=dict(title=dict(text=titles[0])), yaxis=dict(title=dict(text=titles[1])),
                               zaxis=dict(title=dict(text=titles[2])))
    return go.Figure(data=lines, layout=layout)


def units_heatmap(values: np.ndarray, tokens: Sequence[str], title: str = "hidden state h_t", colorbar: str = "h",
                  signed: bool | None = None, height: int = 320) -> go.Figure:
    """(T, H) values per word and unit: one column per word, one row per unit.

    Signed values (h_t, c_t) get a diverging scale centred on zero; unsigned ones (sigmoid
    gates) a 0..1 scale, so "half open" always looks the same. ``signed=None`` decides from
    the data.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[0] != len(tokens):
        raise ValueError(f"need (T, H) values for {len(tokens)} words, got shape {values.shape}")
    signed = bool(values.min() < 0) if signed is None else signed
    title, colorbar = plain(title), plain(colorbar)
    if signed:
        bound = float(np.abs(values).max()) or 1.0
        low, high, scale = -bound, bound, DIVERGING
    else:
        low, high, scale = 0.0, max(1.0, float(values.max())), GATE_SCALE
    return go.Figure(  # dicts: validated once, by go.Figure
        data=[dict(type="heatmap", z=values.T, x=unique_labels(tokens), y=unit_rows(values.shape[1]),  # z: (H, T)
                   zmin=low, zmax=high, colorscale=scale, colorbar=dict(title=colorbar),
                   hovertemplate=f"after '%{{x}}', unit %{{y}}: {colorbar} = %{{z:.3f}}<extra></extra>")],
        layout=dict(title=title or None, height=height, margin=dict(l=50, r=10, t=40 if title else 10, b=60),
                    xaxis=dict(type="category", tickangle=-45), yaxis=dict(title="unit", autorange="reversed")))


def gates_figure(gates: np.ndarray, gate_names: Sequence[str], tokens: Sequence[str], height_per_gate: int = 220) -> go.Figure:
    """(T, G, H) gate values: one heatmap per gate, stacked, words along the shared x axis.

    Sigmoid gates use 0..1 (how open); tanh ones ("candidate", "new", "h") use -1..1.
    """
    gates = np.asarray(gates, dtype=float)
    if gates.ndim != 3 or gates.shape[0] != len(tokens) or gates.shape[1] != len(gate_names):
        raise ValueError(f"need (T, G, H) gates for {len(tokens)} words and {len(gate_names)} gates, "
                         f"got shape {gates.shape}")
    count = len(gate_names)
    labels = unique_labels(tokens)
    gate_names = [plain(name) for name in gate_names]
    # One dict layout and dict traces, validated once by go.Figure (see viz.activations.subplot_grid).
    layout, cells = subplot_grid(count, 1, [_gate_title(name) for name in gate_names],
                                 vertical_spacing=0.06 if count > 1 else 0)
    traces = []
    for g, (name, cell) in enumerate(zip(gate_names, cells)):
        tanh = name in TANH_GATES
        traces.append(dict(
            type="heatmap", z=gates[:, g, :].T, x=labels, y=unit_rows(gates.shape[2]),  # (H, T)
            zmin=-1.0 if tanh else 0.0, zmax=1.0, colorscale=DIVERGING if tanh else GATE_SCALE, name=name,
            colorbar=dict(title=name, len=0.9 / count, y=1 - (g + 0.5) / count, yanchor="middle"),
            hovertemplate=f"{name} gate after '%{{x}}', unit %{{y}}: %{{z:.3f}}<extra></extra>",
            xaxis=cell[0], yaxis=cell[1]))
        x_name, y_name = axis_names(cell)
        layout[y_name].update(title=dict(text="unit"), autorange="reversed")
        layout[x_name].update(type="category", tickangle=-45)
        if g < count - 1:  # shared x axis, as make_subplots(shared_xaxes=True): words only under the last gate
            layout[x_name].update(matches=cells[-1][0], showticklabels=False)
    layout.update(height=count * height_per_gate + 60, margin=dict(l=50, r=10, t=30, b=60))
    return go.Figure(data=traces, layout=layout)


def unit_rows(count: int) -> np.ndarray:
    """The row numbers of ``count`` hidden units, as a student counts them: 1 .. count."""
    return np.arange(FIRST, FIRST + count)


def _gate_title(name: str) -> str:
    if name in TANH_GATES:
        return f"{name} ({GATE_SYMBOLS.get(name, name)}, tanh: -1..1)"
    return f"{name} gate ({GATE_SYMBOLS.get(name, name)}, sigmoid: 0 closed .. 1 open)"


def step_columns(step: StepArithmetic, units: int = 16) -> tuple[list[str], np.ndarray]:
    """The vectors of one step as (column labels, (U, C) numbers) for the first ``units`` units:
    h[t-1] (and c[t-1]), then each gate's pre-activation and value, then (c[t] and) h[t]."""
    if units < 1:
        raise ValueError(f"show at least one unit, not {units}")
    shown = min(units, len(step.h))
    columns: list[tuple[str, np.ndarray]] = [("h[t-1]", step.h_prev)]
    if step.c_prev is not None:
        columns.append(("c[t-1]", step.c_prev))
    for gate, parts in step.terms.items():
        symbol = GATE_SYMBOLS.get(gate, gate)
        squash = "tanh" if gate in TANH_GATES else "σ"
        columns.append((f"{symbol}: pre", parts["pre"]))
        if gate != "h":  # a plain RNN's value is h[t] itself, shown last
            columns.append((f"{symbol} = {squash}(pre)", parts["value"]))
    if step.c is not None:
        columns.append(("c[t]", step.c))
    columns.append(("h[t]", step.h))
    labels = [label for label, _ in columns]
    numbers = np.stack([np.asarray(vector, dtype=float)[:shown] for _, vector in columns], axis=1)  # (U, C)
    return labels, numbers


def step_figure(step: StepArithmetic, units: int = 16) -> go.Figure:
    """One step's vectors as labelled columns of numbers (rows are units), coloured around zero."""
    labels, numbers = step_columns(step, units)
    bound = float(np.abs(numbers).max()) or 1.0
    return go.Figure(  # dicts: validated once, by go.Figure
        data=[dict(type="heatmap", z=numbers, x=labels, y=unit_rows(numbers.shape[0]), zmin=-bound, zmax=bound,
                   colorscale=DIVERGING, texttemplate="%{z:.2f}", textfont=dict(size=10), showscale=False,
                   hovertemplate="unit %{y}, %{x}: %{z:.4f}<extra></extra>")],
        layout=dict(title=f"{numbered('step', step.t)}: reading '{plain(step.token)}'",
                    height=130 + 22 * numbers.shape[0],
                    margin=dict(l=50, r=10, t=90, b=10),
                    xaxis=dict(type="category", side="top"), yaxis=dict(title="unit", autorange="reversed")))
