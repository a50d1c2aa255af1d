"""Figures of faithfulness (see ``explain.faithfulness``): each method's deletion and insertion
curves in one figure, and the table that ranks the methods.

Pure functions: numbers in, a Plotly figure (or rows for a table) out. One colour per method,
the same in both panels; the random ranking, the reference, is a grey dashed line. Method labels
and the class name are made plain (``viz.labels``); fractions are shown in percent.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from .labels import plain

PALETTE = qualitative.Plotly
REFERENCE_STYLE = dict(color="#6b7280", dash="dash", width=2)
SCORE_COLUMNS = {"comprehensiveness": "Comprehensiveness ↑", "sufficiency": "Sufficiency ↓",  # key -> header
                 "infidelity": "Infidelity ↓", "max_sensitivity": "Max-sensitivity ↓"}
TABLE_NOTE = "↑: higher is better; ↓: lower is better."
RANK_ORDER = "insertion area − deletion area"  # how the table ranks: both curves in one number, higher is better


def faithfulness_curves(fractions: np.ndarray, deletion: Mapping[str, np.ndarray], insertion: Mapping[str, np.ndarray],
                        reference: str | None = None, class_name: str | None = None, height: int = 380) -> go.Figure:
    """Two panels sharing one legend: the class's probability against the share of the input removed
    (deletion) and revealed (insertion). ``deletion`` and ``insertion`` map a method's label to its
    probabilities at ``fractions`` (0..1); the method labelled ``reference`` is drawn dashed grey."""
    what = f"p({plain(class_name)})" if class_name is not None else "probability of the class"
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, shared_yaxes=True,
                        subplot_titles=("Deletion: most important removed first<br><sup>lower area is better</sup>",
                                        "Insertion: most important revealed first<br><sup>higher area is better</sup>"))
    percent = 100 * np.asarray(fractions, dtype=float)
    colour = 0
    for label in deletion:
        is_reference = label == reference
        line = REFERENCE_STYLE if is_reference else dict(color=PALETTE[colour % len(PALETTE)], width=2)
        colour += 0 if is_reference else 1
        name = plain(label)
        for column, curves in ((1, deletion), (2, insertion)):
            fig.add_trace(go.Scatter(
                x=percent, y=np.asarray(curves[label], dtype=float), mode="lines", line=line, name=name,
                legendgroup=name, showlegend=column == 1,
                hovertemplate=f"{name}<br>%{{x:.0f}}% {'removed' if column == 1 else 'revealed'}: "
                              f"{what} = %{{y:.3f}}<extra></extra>"), row=1, col=column)
    fig.update_xaxes(title_text="share of the input removed (%)", range=[0, 100], row=1, col=1)
    fig.update_xaxes(title_text="share of the input revealed (%)", range=[0, 100], row=1, col=2)
    fig.update_yaxes(title_text=what, range=[0, 1.02], row=1, col=1)
    legend_rows = 1 + len(deletion) // 4  # the legend sits under the axes, about four names a row
    fig.update_layout(height=height + 20 * legend_rows, margin=dict(l=60, r=20, t=70, b=50 + 20 * legend_rows),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0), hovermode="closest")
    return fig


def faithfulness_table(rows: Sequence[Mapping], reference: str | None = None) -> list[dict]:
    """Rows for ``st.dataframe``, best method first. Each input row has "method", "deletion" and
    "insertion" (areas) and may have "comprehensiveness", "sufficiency", "infidelity" and
    "max_sensitivity"; the row of ``reference`` (the random ranking) comes last and is not ranked.
    Methods are ranked by insertion area − deletion area (higher is better). Headers carry ↑ where
    higher is better and ↓ where lower is (``TABLE_NOTE`` says so in words); areas are rounded
    to 3 decimals, the other scores to 3 significant digits."""
    def score(row):
        return row["insertion"] - row["deletion"]

    methods = sorted((r for r in rows if r["method"] != reference), key=score, reverse=True)
    ordered = methods + [r for r in rows if r["method"] == reference]
    columns = SCORE_COLUMNS
    shown = [key for key in columns if any(row.get(key) is not None for row in rows)]
    table = []
    for rank, row in enumerate(ordered, start=1):
        entry = {"Rank": "reference" if row["method"] == reference else str(rank), "Method": str(row["method"]),
                 "Deletion area ↓": round(float(row["deletion"]), 3),
                 "Insertion area ↑": round(float(row["insertion"]), 3),
                 "Insertion − deletion ↑": round(score(row), 3)}
        for key in shown:
            value = row.get(key)
            entry[columns[key]] = None if value is None else float(f"{float(value):.3g}")  # small values keep their digits
        table.append(entry)
    return table
