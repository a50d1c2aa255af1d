"""A figure made readable on a projector: every font at least a given size, and room for it.

Pure: a Plotly figure in, a new Plotly figure out. The figure given is never changed, because the
pages share figures between sessions (``app_pages.shared_views.figure_once`` computes a view once
per server), so one teacher's presenter mode must not enlarge a student's figure.

Every label gets an explicit size (tick labels, axis titles, the figure's title, colour-bar ticks
and titles, legend, annotations such as subplot titles, text written in cells, hover labels):
inherited sizes are not enough, because Streamlit's Plotly theme sets 12 px tick labels in the
figure's template, which an inherited ``layout.font`` does not override. Margins grow with the
fonts: axes push their margins (``automargin``), the top margin is made tall enough for the
title and the subplot titles above the first row, the left one for row titles written sideways,
and the figure grows by what the margins took, so its plots keep their size.
"""
from __future__ import annotations

import re

import plotly.graph_objects as go

PLOTLY_MARGIN = {"t": 100, "b": 80, "l": 80, "r": 80}  # pixels, where a figure sets none
DEFAULT_FONT = 12  # Plotly's and Streamlit's theme's size for a label given none
TITLE_SCALE = 1.25  # a figure's title a little larger than its labels
LINE_HEIGHT = 1.3  # a line of text takes about this many times its font size
TICK_SPACING = 2.2  # font heights from one colour-bar tick label to the next, at the least
TOP_PAD = 8  # pixels between the title (or subplot titles) and the edge
AXIS_KEY = re.compile(r"[xyz]axis\d*")
COLOUR_AXIS_KEY = re.compile(r"coloraxis\d*")
SCENE_KEY = re.compile(r"scene\d*")
SCALED_TRACES = {"heatmap", "contour", "histogram2d", "histogram2dcontour", "surface"}  # traces with a colorbar


def for_projector(fig: go.Figure, min_font: int = 16) -> go.Figure:
    """A copy of ``fig`` with every font at least ``min_font`` px (its title at least
    ``TITLE_SCALE`` times that) and margins that keep its titles and labels inside the figure."""
    spec = fig.to_dict()  # a deep copy: what follows never reaches ``fig``
    layout = spec.setdefault("layout", {})
    template = layout.pop("template", None)  # defaults only: left as they are, and not walked
    old_margin = dict(layout.get("margin") or {})
    for trace in spec.get("data", []):
        _raise_trace(trace, layout, min_font)
    _raise_layout(layout, min_font)
    _raise_everywhere(spec.get("data", []), min_font)
    _raise_everywhere(layout, min_font)
    _make_room(layout, old_margin)
    _spread_colorbar_ticks(spec.get("data", []), layout)
    if template is not None:
        layout["template"] = template
    # Not validated again: ``fig`` was valid and only sizes and margins changed (validating the
    # ~100 subplots of a CNN page's figure takes a tenth of a second; the tests validate).
    return go.Figure(spec, _validate=False)


# ---- fonts ------------------------------------------------------------------------------
def _at_least(font: dict, size: float) -> dict:
    """``font`` with its size raised to ``size`` (a per-point list of sizes element by element)."""
    current = font.get("size")
    if isinstance(current, (list, tuple)):
        font["size"] = [max(s if isinstance(s, (int, float)) else 0, size) for s in current]
    else:
        font["size"] = max(current if isinstance(current, (int, float)) else DEFAULT_FONT, size)
    return font


def _font_of(owner: dict, key: str = "font") -> dict:
    found = owner.get(key)
    if not isinstance(found, dict):
        found = owner[key] = {}
    return found


def _title_of(owner: dict) -> dict:
    title = owner.get("title")
    if isinstance(title, str):
        title = owner["title"] = {"text": title}
    elif not isinstance(title, dict):
        title = owner["title"] = {}
    return title


def _raise_axis(axis: dict, size: int, automargin: bool = True) -> None:
    _at_least(_font_of(axis, "tickfont"), size)
    _at_least(_font_of(_title_of(axis)), size)
    if automargin:
        axis["automargin"] = True  # larger tick labels and titles push the margin instead of being cut


def _raise_colorbar(colorbar: dict, size: int) -> None:
    _at_least(_font_of(colorbar, "tickfont"), size)
    _at_least(_font_of(_title_of(colorbar)), size)


def _raise_trace(trace: dict, layout: dict, size: int) -> None:
    """A trace's colour bar, its texts, and the axes it is drawn on (created when the layout
    names none, so that they get explicit sizes too)."""
    kind = trace.get("type", "scatter")
    if kind in SCALED_TRACES:
        _raise_colorbar(_font_of(trace, "colorbar"), size)
    marker = trace.get("marker")
    if isinstance(marker, dict) and marker.get("showscale"):
        _raise_colorbar(_font_of(marker, "colorbar"), size)
    if trace.get("text") is not None or trace.get("texttemplate") is not None:
        _at_least(_font_of(trace, "textfont"), size)
    _at_least(_font_of(_font_of(trace, "hoverlabel")), size)
    if kind.endswith("3d") or kind in ("surface", "mesh3d", "cone", "streamtube", "volume", "isosurface"):
        layout.setdefault(trace.get("scene", "scene"), {})
        return
    for letter in ("x", "y"):
        name = trace.get(f"{letter}axis", letter)  # "x2" -> layout key "xaxis2"
        layout.setdefault(f"{letter}axis{name[1:]}", {})


def _raise_layout(layout: dict, size: int) -> None:
    _at_least(_font_of(layout), size)
    title = _title_of(layout)
    if title.get("text"):
        _at_least(_font_of(title), round(size * TITLE_SCALE))
        # At the top of the figure, in the room ``_make_room`` keeps for it above anything else
        # there (Plotly's own placement, the middle of the top margin, would overlap subplot titles).
        title.update(yref="container", y=1, yanchor="top", pad={**(title.get("pad") or {}), "t": TOP_PAD})
    _at_least(_font_of(_font_of(layout, "legend")), size)
    _at_least(_font_of(_title_of(layout["legend"])), size)
    _at_least(_font_of(_font_of(layout, "hoverlabel")), size)
    for annotation in layout.get("annotations") or []:
        _at_least(_font_of(annotation), size)
    for key, value in list(layout.items()):
        if not isinstance(value, dict):
            continue
        if AXIS_KEY.fullmatch(key):
            _raise_axis(value, size)
        elif COLOUR_AXIS_KEY.fullmatch(key):
            _raise_colorbar(_font_of(value, "colorbar"), size)
        elif SCENE_KEY.fullmatch(key):
            for axis in ("xaxis", "yaxis", "zaxis"):
                _raise_axis(_font_of(value, axis), size, automargin=False)  # a 3-D scene has no margins


def _raise_everywhere(node, size: int) -> None:
    """Any other font the figure sets itself (a bar's inside text, a legend group's title, ...)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("font") and isinstance(value, dict):
                _at_least(value, size)
            _raise_everywhere(value, size)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                _raise_everywhere(item, size)


# ---- room for them ------------------------------------------------------------------------
def _lines(text) -> int:
    return str(text or "").count("<br>") + 1


def _text_height(text, size: float) -> float:
    return _lines(text) * size * LINE_HEIGHT


def _margin(margin: dict, side: str) -> float:
    value = margin.get(side)
    return value if isinstance(value, (int, float)) else PLOTLY_MARGIN[side]


def _make_room(layout: dict, old_margin: dict) -> None:
    """Top and left margins wide enough for what is written there, the figure taller by what the
    top margin grew, so that its plots keep their height, and taller again where subplot titles
    need more room between rows."""
    margin = layout.setdefault("margin", {})
    above = 0.0  # what stands above the plots: subplot titles over the first row
    beside = 0.0  # what is written sideways left of the plots: row titles
    for annotation in layout.get("annotations") or []:
        if annotation.get("yref") == "paper" and annotation.get("yanchor") == "bottom" \
                and float(annotation.get("y", 0)) >= 1 - 1e-9:
            above = max(above, _text_height(annotation.get("text"), annotation["font"]["size"])
                        + float(annotation.get("yshift", 0) or 0))
        if annotation.get("xref") == "paper" and annotation.get("xanchor") == "right" \
                and float(annotation.get("x", 1)) <= 1e-9 and abs(float(annotation.get("textangle", 0) or 0)) == 90:
            beside = max(beside, _text_height(annotation.get("text"), annotation["font"]["size"])
                         + abs(float(annotation.get("xshift", 0) or 0)))
    title = layout.get("title") or {}
    title_height = _text_height(title["text"], title["font"]["size"]) + TOP_PAD if title.get("text") else 0.0
    if above or title_height:
        margin["t"] = max(_margin(margin, "t"), round(above + title_height + TOP_PAD))
    if beside:
        margin["l"] = max(_margin(margin, "l"), round(beside + 4))
    if isinstance(layout.get("height"), (int, float)):
        layout["height"] += _margin(margin, "t") - _margin(old_margin, "t")
        layout["height"] = round(layout["height"] + _room_between_rows(layout))
    layout.pop("width", None)  # the figure takes its container's full width


def _room_between_rows(layout: dict) -> float:
    """How much taller the plots must be for each subplot title below the first row to fit in the
    gap above its subplot (a gap is a share of the plots' height); 0 when they fit already."""
    plot_px = layout["height"] - _margin(layout["margin"], "t") - _margin(layout["margin"], "b")
    tops = [axis["domain"][1] for key, axis in layout.items()
            if key.startswith("yaxis") and isinstance(axis, dict) and isinstance(axis.get("domain"), list)]
    bottoms = [axis["domain"][0] for key, axis in layout.items()
               if key.startswith("yaxis") and isinstance(axis, dict) and isinstance(axis.get("domain"), list)]
    needed = plot_px
    for annotation in layout.get("annotations") or []:
        y = annotation.get("y")
        if annotation.get("yref") != "paper" or annotation.get("yanchor") != "bottom" or not isinstance(y, (int, float)) \
                or y >= 1 - 1e-9 or not any(abs(top - y) < 1e-9 for top in tops):
            continue
        above = [bottom - y for bottom in bottoms if bottom > y + 1e-9]  # the row above starts there
        if above:
            gap = min(above)
            needed = max(needed, (_text_height(annotation.get("text"), annotation["font"]["size"]) + 4) / gap)
    return max(0.0, needed - plot_px)


def _spread_colorbar_ticks(data: list, layout: dict) -> None:
    """At most one colour-bar tick per ``TICK_SPACING`` font heights, so that a short bar (a row
    of small tiles) does not write its larger numbers over each other."""
    if not isinstance(layout.get("height"), (int, float)):
        return  # how tall the bar is drawn is not known here
    plot_px = layout["height"] - _margin(layout["margin"], "t") - _margin(layout["margin"], "b")
    bars = [trace["colorbar"] for trace in data if isinstance(trace.get("colorbar"), dict)]
    bars += [value["colorbar"] for key, value in layout.items()
             if COLOUR_AXIS_KEY.fullmatch(key) and isinstance(value, dict) and isinstance(value.get("colorbar"), dict)]
    for bar in bars:
        if any(bar.get(name) is not None for name in ("nticks", "tickvals", "dtick")) or bar.get("lenmode") == "pixels":
            continue
        length = plot_px * float(bar.get("len", 1) or 1)
        bar["nticks"] = max(2, int(length // (TICK_SPACING * bar["tickfont"]["size"])))
