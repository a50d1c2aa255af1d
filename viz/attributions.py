"""Figures of attributions: which pixels or words made the model decide (see ``explain.attributions``).

Pure functions: numpy arrays in, a Plotly figure (or, for a sentence, an HTML string) out.
A picture's attributions arrive in input space, (C, H, W) (Grad-CAM: (1, H, W)); they are summed
over channels to one (H, W) map and shown signed, absolute or positive only, optionally blended
over the picture. A sentence's attributions arrive as one score per token, (T,).
Colours follow the rest of the app: red speaks for the class, blue against it. Titles and tokens
are made plain (``viz.labels``); pixel (row, col) is drawn centred on (col + 1, row + 1), so
hovering reads rows and columns counted from 1.
"""
from __future__ import annotations

import html
import re
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .activations import DIVERGING, SEQUENTIAL, axis_names, subplot_grid
from .attention import NEGATIVE_COLOUR, POSITIVE_COLOUR
from .labels import FIRST, plain, unique_labels
from .pictures import rgb_of_hwc

MODES = {"signed": "signed (red helps, blue hurts)",
         "absolute": "absolute (how much, either way)",
         "positive": "positive only (what speaks for the class)"}
# Signed maps centre a diverging scale on zero; the others run from 0 up. Positive-only is red,
# as "helps" is in the signed view; absolute has no direction, so it gets the neutral sequential scale.
MODE_SCALES = {"signed": DIVERGING, "absolute": SEQUENTIAL, "positive": "Reds"}
# Over a picture, values near zero are see-through, so the picture shows wherever the method
# finds nothing (a white zero at the blend's opacity would grey out the whole picture).
TITLE_LINE_PX = 16  # one line of a 12 px tile title
COLOUR_BAR_PX = 44  # a colour bar under a tile, with its numbers
GRID_TITLE_CHARACTERS = 100  # a title line across a whole grid (see title_width)
MIN_TITLE_CHARACTERS = 12
NARROW_BAR_COLUMNS = 5  # in a row longer than this, a colour bar has room for two short numbers only
OVERLAY_SCALES = {
    "signed": [[0.0, "rgba(37, 99, 235, 1)"], [0.5, "rgba(255, 255, 255, 0)"], [1.0, "rgba(220, 38, 38, 1)"]],
    "absolute": [[0.0, "rgba(253, 224, 71, 0)"], [0.5, "rgba(249, 115, 22, 0.8)"], [1.0, "rgba(220, 38, 38, 1)"]],
    "positive": [[0.0, "rgba(220, 38, 38, 0)"], [1.0, "rgba(220, 38, 38, 1)"]],
}


def attribution_map(values: np.ndarray, mode: str = "signed") -> np.ndarray:
    """(C, H, W) or (H, W) attributions -> (H, W): summed over channels, then kept signed, made
    absolute or clipped at zero. Summing before taking |.| lets channels that disagree cancel,
    which is what the model sees (the next layer adds them up too)."""
    if mode not in MODES:
        raise ValueError(f"unknown display mode {mode!r}: choose one of {', '.join(MODES)}")
    values = np.asarray(values, dtype=float)
    if values.ndim == 3:
        values = values.sum(axis=0)  # (C, H, W) -> (H, W)
    elif values.ndim != 2:
        raise ValueError(f"a picture's attributions must be (C, H, W) or (H, W), not an array of shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("the attributions contain NaN or infinite values; try another method or fewer steps")
    if mode == "absolute":
        return np.abs(values)
    if mode == "positive":
        return np.clip(values, 0.0, None)
    return values


def colour_range(maps: Sequence[np.ndarray], mode: str) -> tuple[float, float]:
    """(zmin, zmax) covering ``maps`` (already through ``attribution_map``): ±max|v| when signed,
    so white is exactly zero; 0..max otherwise. An all-zero map gets a unit range, not an empty one."""
    largest = max((float(np.abs(m).max()) for m in maps if m.size), default=0.0) or 1.0
    return (-largest, largest) if mode == "signed" else (0.0, largest)


def attribution_figure(values: np.ndarray, mode: str = "signed", image: np.ndarray | None = None,
                       blend: float = 0.5, title: str = "", height: int = 300) -> go.Figure:
    """One attribution map as a heatmap, over the picture when ``image`` is given.

    ``image``: (H, W, 3) or (H, W, 1) uint8, or (H, W) values of any range (stretched). ``blend`` is
    the heatmap's opacity over it: 0 shows only the picture, 1 only the heatmap.
    """
    attribution = attribution_map(values, mode)  # (H, W)
    picture = _picture(image, blend)
    _check_covers(picture, attribution.shape)
    low, high = colour_range([attribution], mode)
    title = plain(title)
    traces = _tile_traces(attribution, picture, mode, low, high, blend, title or "attribution", ("x", "y"),
                          colorbar=dict(title=mode, thickness=12))
    layout = dict(xaxis={}, yaxis={}, title=title or None, height=height,
                  margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    _pixel_axes(layout, ("x", "y"), attribution.shape)
    return go.Figure(data=traces, layout=layout)


def attribution_grid(rows: list[list[tuple[str, np.ndarray]]], mode: str = "signed", image: np.ndarray | None = None,
                     blend: float = 0.5, row_titles: list[str] | None = None, tile: int = 220,
                     shared_scale: bool = False, column_scale: bool | None = None) -> go.Figure:
    """Several attribution maps side by side: each row a list of (title, values), one tile each.

    Colour ranges, in order of precedence:
    - ``shared_scale``: one range for every tile.
    - ``column_scale`` (by default: on when there are several rows and every row lists the same
      titles in the same order, as the sanity check does, trained model above, randomised weights
      below): each column shares one range across its rows, so the same method compares fairly.
    - otherwise each tile has its own range, because methods differ by orders of magnitude.
    Every tile has its own colour bar, lying under it, so each map says what its colours mean.
    Titles are wrapped to the width a column has (``wrapped_title``), never cut off.
    """
    if not rows or not any(rows):
        raise ValueError("there are no attributions to show")
    if row_titles is not None and len(row_titles) != len(rows):
        raise ValueError(f"there are {len(row_titles)} row titles for {len(rows)} rows")
    maps = [[attribution_map(values, mode) for _, values in row] for row in rows]  # each (H, W)
    titles = [[plain(title) for title, _ in row] for row in rows]
    if column_scale is None:
        column_scale = len(rows) > 1 and all(row == titles[0] for row in titles)
    cols = max(len(row) for row in rows)
    shown = [[wrapped_title(title, cols) for title in row] for row in titles]
    lines = max((title.count("<br>") + 1 for row in shown for title in row if title), default=1)
    title_px = TITLE_LINE_PX * lines + 6
    plot_height = len(rows) * tile + (len(rows) - 1) * (title_px + COLOUR_BAR_PX)  # the tiles and the gaps between
    # Ragged rows leave empty cells; their titles are "" so subplot_grid writes none.
    flat_titles = [row[col] if col < len(row) else "" for row in shown for col in range(cols)]
    layout, cells = subplot_grid(len(rows), cols, flat_titles, horizontal_spacing=0.03,
                                 vertical_spacing=(title_px + COLOUR_BAR_PX) / plot_height, title_size=12)
    everything = [m for row in maps for m in row]
    picture = _picture(image, blend)
    traces = []
    for row_index, row_maps in enumerate(maps):
        for col, attribution in enumerate(row_maps):
            if shared_scale:
                low, high = colour_range(everything, mode)
            elif column_scale:
                low, high = colour_range([row[col] for row in maps if col < len(row)], mode)
            else:
                low, high = colour_range([attribution], mode)
            _check_covers(picture, attribution.shape)
            cell = cells[row_index * cols + col]
            name = titles[row_index][col]
            name = name if row_titles is None else f"{plain(row_titles[row_index])}: {name}"  # hover: which row
            x_domain, y_domain = (layout[axis]["domain"] for axis in axis_names(cell))
            traces += _tile_traces(attribution, picture, mode, low, high, blend, name, cell,
                                   colorbar=_bar_under(x_domain, y_domain, plot_height, cols))
            _pixel_axes(layout, cell, attribution.shape)
    for cell in cells:  # empty cells of ragged rows: nothing drawn
        for name in axis_names(cell):
            layout[name].setdefault("visible", False)
    left = 10
    if row_titles:  # written sideways left of each row, centred on it
        left = 40
        for row_index, row_title in enumerate(row_titles):
            y_domain = layout[axis_names(cells[row_index * cols])[1]]["domain"]
            layout["annotations"].append(dict(
                text=f"<b>{plain(row_title)}</b>", x=0, y=sum(y_domain) / 2, xref="paper", yref="paper",
                xanchor="right", yanchor="middle", xshift=-8, textangle=-90, showarrow=False, font=dict(size=12)))
    layout.update(height=plot_height + title_px + 10 + COLOUR_BAR_PX,
                  margin=dict(l=left, r=10, t=title_px + 10, b=COLOUR_BAR_PX))
    return go.Figure(data=traces, layout=layout)


def title_width(cols: int) -> int:
    """Characters a title may have on one line in a grid of ``cols`` columns: a column of a figure
    about 700 px wide (a projector's page), at about 7 px a character in 12 px type."""
    return max(MIN_TITLE_CHARACTERS, GRID_TITLE_CHARACTERS // max(cols, 1))


def wrapped_title(title: str, cols: int) -> str:
    """An (already plain) title broken at spaces into lines of at most ``title_width(cols)``
    characters, joined by "<br>": "Guided Grad-CAM (conv.1.act)" in four columns becomes
    "Guided Grad-CAM<br>(conv.1.act)". A single word longer than a line keeps its own line."""
    width = title_width(cols)
    lines: list[str] = []
    for word in title.split(" "):
        if lines and len(_visible(lines[-1])) + 1 + len(_visible(word)) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def format_score(score: float) -> str:
    """A token's score as written on its bar and chip: signed, three significant digits, because
    attributions range from 1e-5 (a saliency) to tens (a logit difference). Zero has no sign."""
    return "0" if score == 0 else f"{score:+.3g}"


def token_attribution_figure(tokens: Sequence[str], scores: np.ndarray, title: str = "") -> go.Figure:
    """One bar per token in sentence order, its score written on it: red above zero (speaks for
    the class), blue below (against). Repeated words get their position appended to stay apart."""
    scores = _token_scores(tokens, scores)
    labels = unique_labels(tokens)
    title = plain(title)
    key = "red: speaks for the class · blue: against"
    return go.Figure(  # dicts: validated once, by go.Figure
        # Text outside the bars, unclipped: a near-zero bar has no room inside, and its score still matters.
        data=[dict(type="bar", x=labels, y=scores, text=[format_score(s) for s in scores], textposition="outside",
                   cliponaxis=False,
                   marker_color=[POSITIVE_COLOUR if s >= 0 else NEGATIVE_COLOUR for s in scores],
                   hovertemplate="%{x}: %{y:.4g}<extra></extra>")],
        layout=dict(title=f"{title}<br><sup>{key}</sup>" if title else key, height=320,
                    margin=dict(l=40, r=10, t=60, b=60), showlegend=False,
                    xaxis=dict(type="category", tickangle=-45), yaxis=dict(title="attribution", zeroline=True)))


def token_attribution_html(tokens: Sequence[str], scores: np.ndarray) -> str:
    """The sentence as coloured chips, one per token, the score in small type under each word.

    The background is red (for the class) or blue (against) with opacity |score| / max|score|, so
    the strongest word is fully coloured. Tokens come from users: every one is escaped. Inline
    styles only, no scripts, so the string can go into ``st.markdown(unsafe_allow_html=True)``.
    """
    scores = _token_scores(tokens, scores)
    largest = float(np.abs(scores).max()) if scores.size else 0.0
    chips = []
    for token, score in zip(tokens, scores):
        strength = abs(float(score)) / largest if largest > 0 else 0.0
        colour = _rgba(POSITIVE_COLOUR if score >= 0 else NEGATIVE_COLOUR, round(strength, 3))
        ink = "#ffffff" if strength > 0.6 else "#111827"  # white text once the background is dark
        text, word = format_score(float(score)), _escape(token)
        chips.append(
            f'<span class="gb-attribution" title="{word}: {text}" style="display:inline-block;'
            f'margin:2px;padding:2px 6px;border-radius:6px;text-align:center;line-height:1.25;'
            f'background-color:{colour};color:{ink}">{word}'
            f'<br><small style="font-size:0.7em;opacity:0.85">{text}</small></span>')
    return '<div style="line-height:2.2">' + " ".join(chips) + "</div>"


# ---- helpers --------------------------------------------------------------------------------

def _tile_traces(attribution: np.ndarray, picture: np.ndarray | None, mode: str, low: float, high: float,
                 blend: float, name: str, cell: tuple[str, str], colorbar: dict | None) -> list[dict]:
    """The picture (if any) and the heatmap over it, both in pixel coordinates: pixel (r, c) is
    centred on (c, r), as go.Image draws it, so each value lies exactly over its pixel."""
    traces = []
    if picture is not None:
        traces.append(dict(type="image", z=picture, x0=FIRST, dx=1, y0=FIRST, dy=1, hoverinfo="skip",
                           xaxis=cell[0], yaxis=cell[1]))
    traces.append(dict(type="heatmap", z=attribution, x0=FIRST, dx=1, y0=FIRST, dy=1, zmin=low, zmax=high,
                       colorscale=OVERLAY_SCALES[mode] if picture is not None else MODE_SCALES[mode],
                       opacity=blend if picture is not None else 1.0,
                       showscale=colorbar is not None, colorbar=colorbar or {}, name=name,
                       hovertemplate=f"{name}<br>row %{{y}}, col %{{x}}: %{{z:.4g}}<extra></extra>",
                       xaxis=cell[0], yaxis=cell[1]))
    return traces


def _bar_under(x_domain: list[float], y_domain: list[float], plot_height: int, cols: int) -> dict:
    """A horizontal colour bar centred under a tile (domains in paper fractions), a few ticks:
    fewer and shorter in a long row, where a bar is too narrow for more."""
    narrow = cols > NARROW_BAR_COLUMNS
    return dict(orientation="h", x=sum(x_domain) / 2, xanchor="center", y=y_domain[0] - 4 / plot_height,
                yanchor="top", len=0.9 * (x_domain[1] - x_domain[0]), lenmode="fraction", thickness=8,
                nticks=2 if narrow else 4, tickformat=".1g" if narrow else ".2g", tickangle=0,
                tickfont=dict(size=9), outlinewidth=0)


def _visible(text: str) -> str:
    """A plain title's text as drawn: each entity ("&lt;") is one character on screen."""
    return re.sub(r"&#?\w+;", "x", text)


def _pixel_axes(layout: dict, cell: tuple[str, str], shape: tuple[int, int]) -> None:
    """Axes hidden, spanning the pixels exactly (centred on FIRST .. side), row 1 at the top, square
    pixels (y follows x)."""
    height, width = shape
    x_name, y_name = axis_names(cell)
    layout[x_name].update(visible=False, range=[FIRST - 0.5, FIRST + width - 0.5], constrain="domain")
    layout[y_name].update(visible=False, range=[FIRST + height - 0.5, FIRST - 0.5], constrain="domain",
                          scaleanchor=cell[0])


def _picture(image: np.ndarray | None, blend: float) -> np.ndarray | None:
    """``image`` as (H, W, 3) uint8 for go.Image (None stays None)."""
    if image is None:
        return None
    if not 0.0 <= blend <= 1.0:
        raise ValueError(f"blend is the heatmap's opacity and must lie between 0 and 1, got {blend}")
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]  # (H, W, 1) -> (H, W)
    if image.ndim == 2 and image.dtype == np.uint8:
        return np.repeat(image[..., None], 3, axis=2)  # (H, W) -> (H, W, 3): grey kept as is, not stretched
    return rgb_of_hwc(image)


def _check_covers(picture: np.ndarray | None, shape: tuple[int, int]) -> None:
    """The picture and the (H, W) map drawn over it must be the same size, pixel for pixel."""
    if picture is not None and picture.shape[:2] != tuple(shape):
        raise ValueError(f"the picture is {picture.shape[0]}×{picture.shape[1]} but the attributions are "
                         f"{shape[0]}×{shape[1]}; they must cover the same pixels")


def _rgba(colour: str, alpha: float) -> str:
    """A "#rrggbb" colour with an opacity: ("#dc2626", 0.5) -> "rgba(220, 38, 38, 0.5)"."""
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def _escape(token: str) -> str:
    """A user's word made inert: HTML escaped (quotes too, as it also goes into an attribute), and
    "$" as an entity so Streamlit's markdown does not read two of them as the edges of a formula."""
    return html.escape(str(token), quote=True).replace("$", "&#36;")


def _token_scores(tokens: Sequence[str], scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1 or len(scores) != len(tokens):
        raise ValueError(f"need one score per token ({len(tokens)}), got an array of shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("the token scores contain NaN or infinite values; try another method or fewer steps")
    return scores
