"""Figures on a page: ``plotly_chart`` is ``st.plotly_chart``, made for a projector in presenter mode.

Every Plotly figure a page shows goes through here, so presenter mode reaches all of them: the
figure is drawn through ``viz.presenter.for_projector`` (a copy with labels of at least 16 px;
the figure itself is shared between sessions and stays as it is), across its container's full
width, without the toolbar's "Download plot as a PNG" (downloads are hidden in presenter mode).
``columns`` puts figures side by side, or one under the other at the full width in presenter mode.
"""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from app_pages import common
from viz.presenter import for_projector

PROJECTOR_FONT = 16  # pixels: the least a label may be to be read from the back of a classroom


def plotly_chart(figure_or_data, use_container_width: bool | None = None, **kwargs):
    """``st.plotly_chart(figure_or_data, ...)`` with the same arguments; in presenter mode the
    figure is enlarged for a projector and stretched to the full width."""
    if common.presenting():
        figure = figure_or_data if isinstance(figure_or_data, go.Figure) else go.Figure(figure_or_data)
        figure_or_data = for_projector(figure, min_font=PROJECTOR_FONT)
        use_container_width = None  # deprecated in Streamlit; ``width`` says the same
        kwargs["width"] = "stretch"
        config = dict(kwargs.get("config") or {})
        config["modeBarButtonsToRemove"] = [*config.get("modeBarButtonsToRemove", []), "toImage"]
        kwargs["config"] = config
    if use_container_width is not None:
        kwargs["use_container_width"] = use_container_width
    return st.plotly_chart(figure_or_data, **kwargs)


def columns(spec, **kwargs) -> list:
    """``st.columns(spec, **kwargs)``; in presenter mode as many containers one under the other,
    so that the figures in them use the page's full width (side by side, at 1280×720, each
    would get half of it or less)."""
    if common.presenting():
        count = spec if isinstance(spec, int) else len(spec)
        return [st.container() for _ in range(count)]
    return st.columns(spec, **kwargs)
