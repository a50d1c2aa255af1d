"""Figures of what switching parts off does: every head's importance as a block × head grid,
channels' or units' importance as bars, and the answer before and after side by side.

Pure functions: numpy arrays in, a Plotly figure out (the arrays come from ``explain.ablation``).
Blocks, heads, channels and units count from 1; class names and the measure's words are made plain.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .labels import counted, plain, unique_labels
from .activations import PERCENT_ROOM, probability_axis

DROP_SCALE = "RdBu_r"  # red: switching it off lowers the answer (the part helped); blue: raises it
BEFORE_COLOUR, AFTER_COLOUR = "#94a3b8", "#dc2626"


def _symmetric(values: np.ndarray) -> float:
    """The colour range's half-width: zero stays white, whichever sign is larger."""
    return max(float(np.abs(values).max(initial=0.0)), 1e-6)


def head_importance_grid(drops: np.ndarray, measure: str, marked: Sequence[tuple[int, int]] = ()) -> go.Figure:
    """(blocks, heads) drops as a heatmap, block 1 on top; ``marked`` (0-based) heads are outlined."""
    drops = np.asarray(drops, dtype=float)
    blocks, heads = drops.shape
    measure = plain(measure)
    half = _symmetric(drops)
    x = [f"head {counted(h)}" for h in range(heads)]
    y = [f"block {counted(b)}" for b in range(blocks)]
    shapes = [dict(type="rect", xref="x", yref="y", x0=h - 0.5, x1=h + 0.5, y0=b - 0.5, y1=b + 0.5,
                   line=dict(color="black", width=3)) for b, h in marked]
    return go.Figure(
        data=[dict(type="heatmap", z=drops, x=list(range(heads)), y=list(range(blocks)), zmin=-half, zmax=half,
                   colorscale=DROP_SCALE, colorbar=dict(title=dict(text="drop", side="right")),
                   customdata=[[f"{y[b]}, {x[h]}" for h in range(heads)] for b in range(blocks)],
                   hovertemplate=f"%{{customdata}}: the {measure} falls by %{{z:.3f}}<extra></extra>",
                   xgap=1, ygap=1)],
        layout=dict(height=max(260, 130 + 40 * blocks), margin=dict(l=70, r=20, t=40, b=40), shapes=shapes,
                    title=dict(text=f"How much the {measure} falls when one head is switched off", font=dict(size=14)),
                    xaxis=dict(tickvals=list(range(heads)), ticktext=[str(counted(h)) for h in range(heads)],
                               title="head", constrain="domain"),
                    yaxis=dict(tickvals=list(range(blocks)), ticktext=y, autorange="reversed")))


def part_importance_bars(drops: np.ndarray, measure: str, part: str, marked: Sequence[int] = ()) -> go.Figure:
    """(parts,) drops as bars, one per channel or unit (numbered from 1); ``marked`` (0-based) in black."""
    drops = np.asarray(drops, dtype=float)
    measure, part = plain(measure), plain(part)
    numbers = [counted(i) for i in range(len(drops))]
    colours = ["#111827" if i in set(marked) else ("#dc2626" if d >= 0 else "#2563eb") for i, d in enumerate(drops)]
    return go.Figure(
        data=[dict(type="bar", x=numbers, y=drops, marker_color=colours,
                   hovertemplate=f"{part} %{{x}}: the {measure} falls by %{{y:.3f}}<extra></extra>")],
        layout=dict(height=300, margin=dict(l=50, r=20, t=40, b=40), bargap=0.1,
                    title=dict(text=f"How much the {measure} falls when one {part} is switched off",
                               font=dict(size=14)),
                    xaxis=dict(title=part, tickmode="auto"), yaxis=dict(title="drop", zeroline=True)))


def before_after_bars(before: np.ndarray, after: np.ndarray, class_names: Sequence[str], top_k: int = 5) -> go.Figure:
    """Each class's probability before and after the ablation, the classes likeliest before on top."""
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    order = np.argsort(-np.maximum(before, after))[:top_k]
    names = unique_labels([class_names[i] for i in order])
    bars = [dict(type="bar", x=values[order], y=names, orientation="h", name=label, marker_color=colour,
                 text=[f"{p:.1%}" for p in values[order]], textposition="auto",
                 hovertemplate=f"%{{y}} {label}: %{{x:.1%}}<extra></extra>")
            for values, label, colour in ((before, "before", BEFORE_COLOUR), (after, "after", AFTER_COLOUR))]
    return go.Figure(data=bars, layout=dict(
        barmode="group", height=110 + 46 * len(order), margin=dict(l=10, r=PERCENT_ROOM, t=30, b=30),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
        xaxis=probability_axis(max(before.max(initial=0.0), after.max(initial=0.0))),
        yaxis=dict(autorange="reversed", type="category")))
