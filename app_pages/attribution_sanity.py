"""The Attributions page's sanity check (Adebayo et al., 2018), a visible section of the page:
each method's map on the trained model beside its map on a copy with random weights, with how
alike the two are (Spearman rank correlation of |map|, and SSIM for pictures), and the cascading
randomisation: the maps after each layer is re-drawn, from the output back to the input, in a
row per method, with the similarity curve.

The randomised copy is made once per model, the cascade computed once per server for the same
model, input, class, methods and settings (as the page's own attributions are): shared, read only.
"""
from __future__ import annotations

import math
from dataclasses import astuple

import streamlit as st

from app_pages import common
from app_pages import inspect_ui as ui
from app_pages import shared_views
from app_pages.shared_views import figure_once
from explain.attributions import (Cascade, cascade_layers, cascading_randomisation, map_similarity, map_ssim,
                                  randomized_copy)
from viz.attributions import attribution_grid, token_attribution_html
from viz.sanity import similarity_curve_figure, word_cascade_figure

KEPT = 8  # cascades kept for the whole server (each holds a map per method and layer)
KEPT_S = 30 * 60  # a cascade nobody asked for this long is dropped
MODE = "absolute"  # the paper compares |map|: how much each pixel mattered, either way
ALIKE = 0.5  # Spearman at or above: the map hardly changed when the weights went random
CHANGED = 0.2  # Spearman below: the map changed, as one that shows the model should
PAIR_TILE = 200  # px: the trained and random maps side by side
CASCADE_TILE = 150  # px: a row of maps, one per step
CASCADE_ROW = 1000  # px: about the width of the page's figures, which a row of maps shares
MIN_CASCADE_TILE = 80  # px: smaller tiles would hide the maps
NO_BREAK = "\u00a0"  # "+ conv.1" is wrapped as one word in a narrow column, never "+" alone on a line


@st.cache_resource(show_spinner=False, max_entries=2)
def randomized_model_of(model_key: str, _model):
    """The sanity check's copy of the model with random weights (seed 0), made once per model."""
    return randomized_copy(_model, seed=0)


def randomized_model(model):
    return randomized_model_of(shared_views.model_key(model), model)


@st.cache_resource(show_spinner=False, max_entries=KEPT, ttl=KEPT_S)
def shared_cascade(model_key: str, input_digest: str, target_class: int, methods: tuple, settings_key: tuple,
                   _model, _x, _settings, _baselines, _trained) -> Cascade:
    """The cascade for one model (by content), input, class, methods and settings, once per server
    (the progress bar is part of the result: on a repeat it is replayed, already emptied)."""
    bar = st.progress(0.0, text="Layer by layer: starting…")

    def progress(done: int, total: int, layer: str) -> None:
        bar.progress(done / max(total, 1), text=f"Layer by layer: {layer} re-drawn ({done + 1} of {total})…")

    found = ui.computed(cascading_randomisation, _model, _x, target_class, list(methods), _settings,
                        baselines=_baselines, trained=_trained, progress=progress)
    bar.empty()
    return found


def alike_text(spearman: float) -> str:
    """A pair's Spearman in plain words."""
    if math.isnan(spearman):
        return "One of the maps is flat (every pixel scores the same), so there is no order to compare."
    if spearman >= ALIKE:
        return ("Much alike: this map hardly depends on what the model learned. It may show the input "
                "(its edges, its bright parts) more than the model.")
    if spearman >= CHANGED:
        return "Partly alike: the map changed, but some of its order survived random weights."
    return "Changed: with random weights the map is another one, as a map that shows the model should be."


def number(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}"


def show(model, x, target_class: int, settings, baselines, trained: list, randomised: list,
         tokens: list[str] | None) -> None:
    """The section: ``trained`` and ``randomised`` are the same methods' attributions on the model
    and on ``randomized_model(model)``; ``tokens``: the sentence's words, None for a picture."""
    picture = tokens is None
    st.markdown("**Trained weights against random weights.** Each pair: the map on this model, and on a copy "
                "with every weight drawn afresh. Under each pair, how alike they are: the rank correlation "
                "(Spearman) of how much each " + ("pixel" if picture else "word") + " mattered"
                + (", and SSIM, the structural similarity of the two maps (1: the same; 0: nothing in common)"
                   if picture else "") + ".")
    for index, (mine, other) in enumerate(zip(trained, randomised)):
        spearman = map_similarity(mine.values, other.values)
        left, right = st.columns([3, 1], vertical_alignment="center")
        with left:
            st.markdown(f"**{common.as_markdown_text(mine.label)}**")
            if picture:
                ui.show_figure(figure_once(attribution_grid, [[("this model", mine.values),
                                                               ("random weights", other.values)]],
                                           mode=MODE, tile=PAIR_TILE, column_scale=False),
                               f"attr_sanity_pair_{index}", f"sanity-{mine.method}", downloads=False)
            else:
                st.markdown(token_attribution_html(tokens, mine.values), unsafe_allow_html=True)
                st.caption("With random weights:")
                st.markdown(token_attribution_html(tokens, other.values), unsafe_allow_html=True)
        with right:
            st.metric("Spearman of |map|" if picture else "Spearman of |scores|", number(spearman))
            if picture:
                st.metric("SSIM", number(map_ssim(mine.values, other.values)))
            st.caption(alike_text(spearman))
    _cascade(model, x, target_class, settings, baselines, trained, tokens)


def _cascade(model, x, target_class: int, settings, baselines, trained: list, tokens: list[str] | None) -> None:
    st.markdown("**Layer by layer (cascading randomisation).** The weights are re-drawn one layer at a time, "
                "from the output back to the input, and each map is computed again after each step. A map that "
                "shows what the model learned falls apart from the first steps; one that still looks the same "
                "with most layers random was showing the input, not the model.")
    if model.is_pretrained and not st.toggle(
            f"Re-draw layer by layer ({len(cascade_layers(model))} layers)", key="attr_cascade",
            persist_state="session", help="Every map is computed again after each layer: for a large pretrained "
                                          "model that takes minutes on a CPU, so it waits for you to ask."):
        return
    methods = tuple(a.method for a in trained)
    cascade = shared_cascade(shared_views.model_key(model), shared_views.content_key(x, baselines), target_class,
                             methods, astuple(settings), model, x, settings, baselines, trained)
    steps = ["trained"] + [f"+{NO_BREAK}{name}" for name in cascade.step_names]
    for index, attribution in enumerate(trained):
        rows = [attribution.values] + cascade.maps[attribution.method]
        st.markdown(f"**{common.as_markdown_text(attribution.label)}**")
        if tokens is None:
            tile = max(MIN_CASCADE_TILE, min(CASCADE_TILE, CASCADE_ROW // len(steps)))  # long rows: smaller tiles
            figure = figure_once(attribution_grid, [list(zip(steps, rows))], mode=MODE, tile=tile, column_scale=False)
        else:
            figure = figure_once(word_cascade_figure, tokens, steps, rows)
        ui.show_figure(figure, f"attr_cascade_{index}", f"cascade-{attribution.method}", downloads=False)
    same = {a.label: map_similarity(a.values, a.values) for a in trained}  # 1, or NaN for a flat map
    spearman = {a.label: [same[a.label]] + cascade.spearman[a.method] for a in trained}
    ssim = None if cascade.ssim is None else {
        a.label: [map_ssim(a.values, a.values)] + cascade.ssim[a.method] for a in trained}
    ui.show_figure(figure_once(similarity_curve_figure, steps, spearman, ssim), "attr_cascade_curve",
                   "cascade-similarity", downloads=False,
                   caption="How alike each method's map stays to the trained model's as more layers are re-drawn "
                           "(left: none; right: all)" + (": solid, Spearman of |map|; dashed, SSIM." if ssim else
                                                        ": Spearman of |scores|."))
