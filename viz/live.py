"""The live training view's panels: what one checkpoint makes of the probe, as rows of figures.

Pure functions: a probe view (``explain.probe.ProbeView``, plain arrays) in, rows of captioned
Plotly figures out. The Train page draws each row side by side, in the given widths.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from .activations import attention_heatmap, heatmap_grid, probability_bars
from .labels import counted
from .probe import filters_figure, hidden_states_figure, prefix_predictions_figure
from .training import image_grid_figure

FILTER_COLUMNS = 4  # filters and feature maps per row in the live view: big enough to see


@dataclass(frozen=True)
class Panel:
    caption: str
    figure: go.Figure
    width: int = 1  # share of the row, for panels side by side


def sentence_panels(view) -> list[list[Panel]]:
    """How a model reads the probe sentence: the prediction word by word, and the hidden state
    (recurrent networks) or the last block's attention (Transformers)."""
    rows = [[Panel("How the prediction changes word by word",
                   prefix_predictions_figure(view.tokens, view.prefix_probabilities, view.class_names, height=260))]]
    if view.hidden is not None:
        rows.append([Panel("The hidden state after each word (one row per unit)",
                           hidden_states_figure(view.hidden, view.tokens, height=260))])
    if view.attention is not None:
        rows.append([Panel(f"Where each word looks in the last block (mean of {len(view.attention_heads)} heads)",
                           attention_heatmap(view.attention, view.attention_tokens))])
    return rows


def picture_panels(view, picture: np.ndarray, label: str,
                   weights: str = "the weights it has learned so far") -> list[list[Panel]]:
    """What a model makes of the probe picture (``picture`` (C, H, W), a ``label``): its answer,
    the first layer's filters and feature maps (CNNs) or the last block's attention (ViTs).
    ``weights`` says what the filters are at this snapshot (learned, or still the random start)."""
    rows = [[Panel(f"Shown: a picture labelled {label}", image_grid_figure([picture], [""], tile=140), width=2),
             Panel("What the model says it is", probability_bars(view.probabilities, view.class_names, top_k=3),
                   width=3)]]
    if view.filters is not None:
        rows.append([Panel(f"The first layer's filters, {weights}: the small patterns it looks for "
                           "(red: bright there, blue: dark there)",
                           filters_figure(view.filters, cols=FILTER_COLUMNS, tile=90))])
    maps = view.activations if view.activations is not None else view.feature_maps
    if maps is not None:
        rows.append([Panel("Where the picture matches each filter (the first layer's feature maps)",
                           heatmap_grid(maps, [str(counted(i)) for i in range(len(maps))], cols=FILTER_COLUMNS,
                                        tile=90))])
    if view.attention is not None:
        rows.append([Panel("Which patches look at which in the last block (mean of the heads)",
                           attention_heatmap(view.attention, view.attention_tokens))])
    return rows
