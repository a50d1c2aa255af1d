"""viz.presenter.for_projector: on every kind of figure viz/ makes, every label gets an explicit
font of at least 16 px (the template's 12 px sizes must not show through), the figure given is
left exactly as it was (pages share figures between sessions), and margins make room for the
larger titles."""
import functools

import numpy as np
import plotly.graph_objects as go
import pytest

from viz.activations import attention_heatmap, probability_bars
from viz.attention import attention_grid, patch_attention_figure, query_bars, scores_figure
from viz.attributions import attribution_figure, attribution_grid, token_attribution_figure
from viz.cnn import feature_maps_figure, pooling_figure, receptive_field_figure
from viz.presenter import LINE_HEIGHT, TITLE_SCALE, for_projector
from viz.probe import filters_figure, hidden_states_figure, prefix_predictions_figure
from viz.rnn import gates_figure, trajectory_figure, units_heatmap
from viz.training import confusion_figure, curves_figure, image_grid_figure

RNG = np.random.default_rng(0)
WORDS = ["the", "film", "was", "not", "good"]
RECORDS = [{"type": "train", "step": s, "loss": 2 / s, "acc": 1 - 1 / s} for s in range(1, 30)] + \
          [{"type": "val", "step": 29, "val_loss": 0.3, "val_acc": 0.9}]


@functools.cache
def figures() -> dict[str, go.Figure]:
    """One of each kind: heatmaps with colour bars, subplots with titles, bars, lines with a
    legend, annotations (subplot and row titles), text in cells, a 3-D scene, a figure title."""
    image = RNG.random((16, 16))
    return {
        "feature maps (subplot titles, colour bar)": feature_maps_figure(RNG.normal(size=(10, 6, 6)), cols=4),
        "pooling (two subplots)": pooling_figure(RNG.random((8, 8)), RNG.random((4, 4)), 2, 2, 0, "max", (1, 1)),
        "receptive field (title)": receptive_field_figure(image, (2, 3, 6, 7), title="what one value sees"),
        "filters (title above subplot titles)": filters_figure(RNG.normal(size=(4, 2, 3, 3))),
        "curves (lines, legend, subplot titles)": curves_figure({"run 1": RECORDS, "run 2": RECORDS}),
        "confusion (colour bar title, cell text)": confusion_figure(np.array([[5, 1], [2, 7]]), ["cat", "dog"]),
        "image grid (two-line titles)": image_grid_figure([RNG.random((1, 8, 8))] * 3, [("predicted 3", "true 8")] * 3),
        "probability bars": probability_bars(np.array([0.7, 0.2, 0.1]), ["a", "b", "c"]),
        "attention heatmap (axis titles)": attention_heatmap(RNG.dirichlet(np.ones(5), 5), WORDS, title="block 1"),
        "attention grid (colour axis)": attention_grid(RNG.dirichlet(np.ones(5), (2, 2, 5)), WORDS),
        "query bars": query_bars(RNG.dirichlet(np.ones(5)), WORDS, "not"),
        "scores": scores_figure(RNG.normal(size=5), RNG.dirichlet(np.ones(5)), WORDS),
        "patch attention": patch_attention_figure(RNG.random((16, 16, 3)), RNG.random((2, 2, 2)), patch_size=8),
        "attribution": attribution_figure(RNG.normal(size=(8, 8)), title="Saliency"),
        "attribution grid (row titles sideways)": attribution_grid(
            [[("Saliency", RNG.normal(size=(8, 8))), ("Occlusion", RNG.normal(size=(8, 8)))]] * 2,
            row_titles=["trained", "random weights"]),
        "token attribution (bars, two-line title)": token_attribution_figure(WORDS, RNG.normal(size=5), title="IG"),
        "trajectory 2-D": trajectory_figure([{"label": "a", "points": RNG.normal(size=(5, 2)), "tokens": WORDS}]),
        "trajectory 3-D (scene)": trajectory_figure([{"label": "a", "points": RNG.normal(size=(5, 3)), "tokens": WORDS}],
                                                   dims=3),
        "units heatmap": units_heatmap(RNG.normal(size=(5, 8)), WORDS),
        "gates (stacked colour bars)": gates_figure(RNG.random((5, 2, 4)), ["input", "forget"], WORDS),
        "prefix predictions (legend)": prefix_predictions_figure(WORDS, RNG.dirichlet(np.ones(2), 5), ["neg", "pos"]),
        "hidden states": hidden_states_figure(RNG.normal(size=(5, 6)), WORDS),
    }


def fonts(node, path="figure"):
    """Every font dict in a figure's JSON (the template aside: it only holds defaults), with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "template":
                continue
            if key.endswith("font") and isinstance(value, dict):
                yield f"{path}.{key}", value
            yield from fonts(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from fonts(item, f"{path}[{index}]")


def labels_needing_a_size(spec: dict):
    """Where a label is drawn and its size must be explicit: each axis' ticks and title, each
    colour bar's ticks and title, the legend, every annotation, the figure's title."""
    layout = spec["layout"]
    for key, value in layout.items():
        if key.startswith(("xaxis", "yaxis")):
            yield key + ".tickfont", value.get("tickfont")
            yield key + ".title.font", value.get("title", {}).get("font")
        if key.startswith("scene"):
            for axis in ("xaxis", "yaxis", "zaxis"):
                yield f"{key}.{axis}.tickfont", value.get(axis, {}).get("tickfont")
        if key.startswith("coloraxis"):
            yield key + ".colorbar.tickfont", value.get("colorbar", {}).get("tickfont")
    for index, trace in enumerate(spec["data"]):
        if trace["type"] in ("heatmap", "contour") and trace.get("showscale", True) and "coloraxis" not in trace:
            yield f"data[{index}].colorbar.tickfont", trace.get("colorbar", {}).get("tickfont")
            yield f"data[{index}].colorbar.title.font", trace.get("colorbar", {}).get("title", {}).get("font")
        for letter in ("x", "y"):
            if trace["type"] not in ("scatter3d",):
                axis = trace.get(f"{letter}axis", letter)
                assert f"{letter}axis{axis[1:]}" in layout, f"data[{index}] is drawn on {axis}, which the layout lacks"
    yield "legend.font", layout.get("legend", {}).get("font")
    for index, annotation in enumerate(layout.get("annotations", [])):
        yield f"annotations[{index}].font", annotation.get("font")


@pytest.mark.parametrize("name", list(figures()))
def test_every_label_is_at_least_16_px_and_the_figure_given_is_unchanged(name):
    fig = figures()[name]
    before = fig.to_json()
    shown = for_projector(fig)
    assert fig.to_json() == before, "for_projector changed the figure it was given"
    assert shown is not fig
    spec = shown.to_dict()
    go.Figure(spec)  # still a valid figure (for_projector builds it without validating)
    for where, font in labels_needing_a_size(spec):
        assert font is not None and font.get("size") is not None, f"{where} has no explicit size"
    found = list(fonts(spec))
    assert found
    for where, font in found:
        sizes = np.atleast_1d(font["size"])
        assert (sizes >= 16).all(), f"{where} is {font['size']} px"
    title = spec["layout"].get("title", {})
    if title.get("text"):
        assert title["font"]["size"] >= 16 * TITLE_SCALE
        assert (title["yref"], title["y"], title["yanchor"]) == ("container", 1, "top")  # in the room kept above
    for key, axis in spec["layout"].items():
        if key.startswith(("xaxis", "yaxis")):
            assert axis["automargin"] is True, key  # larger tick labels push the margin instead of being cut


def test_a_larger_minimum_and_larger_fonts_already_set_are_kept():
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2], text=["1", "2"], textfont=dict(size=30)),
                    layout=dict(title=dict(text="big", font=dict(size=40)), xaxis=dict(tickfont=dict(size=22))))
    shown = for_projector(fig, min_font=20).to_dict()
    assert shown["data"][0]["textfont"]["size"] == 30
    assert shown["layout"]["title"]["font"]["size"] == 40
    assert shown["layout"]["xaxis"]["tickfont"]["size"] == 22
    assert shown["layout"]["yaxis"]["tickfont"]["size"] == 20  # an axis the layout never named gets a size too


def test_room_above_for_the_title_and_the_subplot_titles_and_the_figure_grows_by_it():
    fig = filters_figure(RNG.normal(size=(4, 2, 3, 3)))  # a title over a row of subplot titles
    shown = for_projector(fig).to_dict()["layout"]
    title_height = shown["title"]["font"]["size"] * LINE_HEIGHT
    subplot_title_height = 16 * LINE_HEIGHT
    assert shown["margin"]["t"] >= title_height + subplot_title_height
    assert shown["height"] - fig.layout.height == shown["margin"]["t"] - fig.layout.margin.t
    assert "width" not in shown  # the figure takes its container's width


def test_room_beside_for_row_titles_written_sideways():
    fig = attribution_grid([[("a", RNG.normal(size=(4, 4)))]] * 2, row_titles=["trained", "random weights"])
    shown = for_projector(fig).to_dict()["layout"]
    sideways = [a for a in shown["annotations"] if a.get("textangle") == -90]
    assert sideways and shown["margin"]["l"] >= 16 * LINE_HEIGHT + abs(sideways[0]["xshift"])


def test_a_figure_without_margins_keeps_plotlys_default_top_margin():
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]), layout=dict(title="t", height=300))
    shown = for_projector(fig).to_dict()["layout"]
    assert shown["margin"].get("t", 100) == 100 and shown["height"] == 300  # 100 px is room enough already


def test_a_short_colour_bar_gets_fewer_ticks_so_its_larger_numbers_do_not_overlap():
    fig = filters_figure(RNG.normal(size=(8, 1, 3, 3)), tile=70)  # one row of tiles: a bar ~70 px tall
    shown = for_projector(fig).to_dict()
    layout = shown["layout"]
    bar_px = layout["height"] - layout["margin"]["t"] - layout["margin"]["b"]
    ticks = [trace["colorbar"]["nticks"] for trace in shown["data"] if trace.get("showscale", True)]
    assert ticks and all(n == max(2, int(bar_px // (2.2 * 16))) for n in ticks)
    tall = for_projector(go.Figure(go.Heatmap(z=[[1, 2], [3, 4]]), layout=dict(height=600, margin=dict(t=50, b=50))))
    assert tall.data[0].colorbar.nticks == int(500 // (2.2 * 16))


@pytest.mark.parametrize("fig", [filters_figure(RNG.normal(size=(8, 1, 3, 3)), cols=4, tile=70),
                                 image_grid_figure([RNG.random((1, 8, 8))] * 11, [("said 1", "is 8")] * 11, tile=130)],
                         ids=["filters in two rows", "mistakes with two-line titles"])
def test_subplot_titles_below_the_first_row_fit_in_the_gap_above_their_subplot(fig):
    shown = for_projector(fig).to_dict()["layout"]
    plot_px = shown["height"] - shown["margin"]["t"] - shown["margin"]["b"]
    bottoms = sorted(axis["domain"][0] for key, axis in shown.items() if key.startswith("yaxis"))
    lower = [a for a in shown["annotations"] if a["y"] < 1]
    assert lower
    for annotation in lower:
        gap_px = (min(b for b in bottoms if b > annotation["y"]) - annotation["y"]) * plot_px
        assert gap_px >= annotation["text"].count("<br>") * 16 * LINE_HEIGHT + 16 * LINE_HEIGHT, annotation["text"]
    assert shown["height"] > fig.layout.height  # grown for it (the tiles, kept square, grow with it)
