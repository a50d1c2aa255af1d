"""The live views of lesson 6, "Can an explanation lie?": attribution maps of a few methods on a
digit, and the sanity check of Adebayo et al. (2018), the same methods on the model with its
weights drawn afresh, side by side, with how much each map changed.

Views are ``view(options, key)`` as in ``lesson_views_text``; options: ``model`` (default
digits-cnn), ``example`` (1-based), ``methods`` (keys of ``explain.attributions.IMAGE_METHODS``).
Attributions are computed once per server for the same model, picture and methods
(``shared_views``), the randomised copy once per model.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import streamlit as st

from app_pages import common
from app_pages import inspect_ui as ui
from app_pages.inspect_target import examples_dataset
from app_pages.lesson_models import lesson_model
from app_pages.lesson_text_setup import computed, lesson_context, lesson_digit, model_note
from app_pages.shared_views import figure_once, model_key
from explain.attributions import (Settings, attribute_many, available_methods, image_baseline, map_similarity,
                                  randomized_copy)
from explain.predictions import class_names_of
from viz.attributions import attribution_grid

CNN_DEMO = "digits-cnn"
METHODS = ("saliency", "integrated_gradients", "guided_grad_cam", "grad_cam")
MODE = "absolute"  # how much each pixel mattered, either way: the maps the paper compares
# The maps are drawn on their own, not over the digit (shown beside them): whether a map merely
# copies the picture is the very thing the sanity check asks, and an overlay would hide it.


@st.cache_resource(show_spinner=False, max_entries=2)
def randomized_model_of(key: str, _model):
    """The lesson model with random weights (seed 0), made once per model (``key``: its content)."""
    return randomized_copy(_model, seed=0)


def _digit_and_methods(options: dict, key: str):
    """(model, picture, methods, baselines) of the step, or None with the reason shown."""
    model = lesson_model(options.get("model", CNN_DEMO))
    offered = available_methods(model)
    if model.spec.input.kind != "image" or not offered:
        st.warning(f"This view needs a model that classifies pictures; {common.as_markdown_text(model.spec.name)} "
                   "does not.")
        return None
    model_note(model)
    context = lesson_context(model)
    if context is None:
        return None
    picture = lesson_digit(context, examples_dataset(model), f"{key}_example", options.get("example", 1))
    if picture is None:
        return None
    methods = [method for method in options.get("methods", METHODS) if method in offered] or list(offered)[:3]
    return model, picture, methods, image_baseline(picture.x, context.normalization)


def _digit_beside(picture, model, target: int) -> None:
    """The digit as the model receives it, and the class the maps explain."""
    st.image(ui.shown_picture(picture.seen), caption=picture.label)
    st.markdown(f"The model says **{common.as_markdown_text(class_names_of(model)[target])}**; the maps show what "
                "speaks for that class.")


def attribution_methods(options: dict, key: str) -> None:
    """A few methods' maps of the same digit, side by side."""
    found = _digit_and_methods(options, key)
    if found is None:
        return
    model, picture, methods, baselines = found
    trained = computed(attribute_many, model, picture.x, None, methods, Settings(), baselines=baselines)
    if trained is None:
        return
    left, right = st.columns([1, 3])
    with left:
        _digit_beside(picture, model, trained[0].target)
    with right:
        ui.show_figure(figure_once(attribution_grid, [[(a.label, a.values) for a in trained]], mode=MODE,
                                   column_scale=False),
                       f"{key}_maps", "attribution-maps", downloads=False,
                       caption="Bright: the pixel mattered much (either way); dark: not at all. Each map has its own colour "
                               "scale.")
    for attribution in trained:
        st.caption(f"{attribution.label}: {attribution.note}")


def attribution_sanity(options: dict, key: str) -> None:
    """The same methods on the trained model and on a copy with random weights, and how alike
    each pair of maps is (Spearman rank correlation of |map|, as the paper measures it)."""
    found = _digit_and_methods(options, key)
    if found is None:
        return
    model, picture, methods, baselines = found
    settings = Settings()
    trained = computed(attribute_many, model, picture.x, None, methods, settings, baselines=baselines)
    if trained is None:
        return
    target = trained[0].target  # the randomised model is asked about the same class, as in the paper
    randomised = computed(attribute_many, randomized_model_of(model_key(model), model), picture.x, target, methods,
                          settings, baselines=baselines)
    if randomised is None:
        return
    left, right = st.columns([1, 3])
    with left:
        _digit_beside(picture, model, target)
    with right:
        rows = [[(a.label, a.values) for a in trained], [(a.label, a.values) for a in randomised]]
        ui.show_figure(figure_once(attribution_grid, rows, mode=MODE, row_titles=["trained", "weights randomised"], column_scale=False),
                       f"{key}_sanity", "sanity-check", downloads=False,
                       caption="Each map has its own colour scale: compare the patterns of the two rows, "
                               "not their strength.")
    st.dataframe([{"method": a.label, "alike (rank correlation)": _alike(a.values, b.values)}
                  for a, b in zip(trained, randomised)], hide_index=True, key=f"{key}_alike")
    st.caption("How alike the two maps of each method are: 1 means the same pixels matter in the same order, "
               "0 that the map changed completely. A method whose map stays alike when the model has forgotten "
               "everything was not showing what the model learned.")


def _alike(trained, randomised) -> str:
    similarity = map_similarity(trained, randomised)
    return "— (a flat map ranks nothing)" if math.isnan(similarity) else f"{similarity:.2f}"


VIEWS: dict[str, Callable[[dict, str], None]] = {
    "attribution_methods": attribution_methods,
    "attribution_sanity": attribution_sanity,
}
