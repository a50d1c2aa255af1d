"""The live views of lessons 1 and 2 (convolution; pooling and the receptive field), and the
registry of lessons 1-3's views (``VIEWS``; lesson 3's are in ``lesson_views_training``).

A view is ``view(options, key)``: it draws into the current container with Streamlit, on a
validation digit given to the ready-trained demo CNN (``lesson_models``), from the app's own
``explain.cnn`` arithmetic and ``viz`` figures. ``key`` prefixes its widget keys (it starts with
"lesson_"); the sliders keep their values for the session (``persist_state``), so a student who
visits the full page and comes back finds the lesson where they left it.
"""
from __future__ import annotations

import numpy as np
import streamlit as st
from scipy.signal import convolve2d

from app_pages import common
from app_pages.inspect_ui import computed, show_figure, shown_picture
from app_pages.lesson_models import example_of, lesson_model, untrained_note
from app_pages.lesson_views_training import VIEWS as TRAINING_VIEWS
from app_pages.shared_views import figure_once
from explain.cnn import conv_arithmetic, inspect_cnn, jump, pool_argmax, pool_windows, receptive_field, \
    receptive_field_size
from viz.activations import heatmap_grid
from viz.cnn import conv_arithmetic_figure, feature_maps_figure, pooling_figure, receptive_field_figure
from viz.labels import stage_label
from viz.probe import filters_figure

DEFAULT_DIGIT = "3"  # a digit with curves and straight strokes: its maps are easy to tell apart


def whole_number(options: dict, name: str, default: int) -> int:
    """A lesson file's option ``name`` (a row, a layer, ... counted from 1), or ``default``."""
    if name not in options:
        return int(default)
    value = options[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"the option '{name}' should be a whole number counted from 1, not {value!r}")
    return value


def _slider(label: str, count: int, default: int, key: str, place=st) -> int:
    """A 1-based slider over ``count`` things, kept for the session; returns the 0-based index."""
    state = st.session_state
    if key in state and not (isinstance(state[key], int) and 1 <= state[key] <= count):
        state[key] = min(max(int(state[key] or 1), 1), count)  # a value left from a bigger model
    if count < 2:
        place.caption(f"{label}: 1 (the only one)")
        return 0
    value = place.slider(label, min_value=1, max_value=count, value=min(max(default, 1), count), step=1, key=key,
                         persist_state="session")
    return int(value) - 1


def _digit(options: dict):
    """(model, picture, inspection) for the lesson's digit; None (after a plain message) when the
    model's data cannot be had."""
    model = lesson_model(options.get("model"))
    picture = example_of(model, str(options.get("digit", DEFAULT_DIGIT)))
    if picture is None:
        st.warning(f"The examples {common.as_markdown_text(model.spec.name)} was trained on cannot be read "
                   "on this server, so this view has no digit to show.")
        return None
    inspection = computed(inspect_cnn, model, picture.x)
    untrained_note(model)
    return model, picture, inspection


def _grey(picture) -> np.ndarray:
    return picture.seen[:, :, 0].astype(float) if picture.seen.shape[2] == 1 else picture.seen


def _conv_layer(options: dict, inspection) -> int:
    return min(max(whole_number(options, "layer", 1), 1), len(inspection.convs)) - 1


def _conv_position(options: dict, key: str, view) -> tuple[int, int, int]:
    channels, height, width = view.pre.shape
    pick = st.columns(3)
    channel = _slider("Filter (feature map)", channels, whole_number(options, "filter", 1), f"{key}_filter", pick[0])
    row = _slider("Row", height, whole_number(options, "row", 3), f"{key}_row", pick[1])
    col = _slider("Column", width, whole_number(options, "column", width // 2), f"{key}_col", pick[2])
    return channel, row, col


def _chosen_value(options: dict, key: str):
    """(model, picture, the conv layer's view, (channel, row, col), its ConvArithmetic) for the
    output value chosen with the sliders; None (after a plain message) without a digit."""
    found = _digit(options)
    if found is None:
        return None
    model, picture, inspection = found
    layer = _conv_layer(options, inspection)
    view = inspection.convs[layer]
    position = _conv_position(options, key, view)
    return model, picture, view, position, conv_arithmetic(model, inspection, layer, *position)


# ---- lesson 1: what a convolution computes ----------------------------------------------
def conv_sum(options: dict, key: str) -> None:
    """One output value: the patch under the filter, times the filter, summed, plus the bias."""
    chosen = _chosen_value(options, key)
    if chosen is None:
        return
    model, picture, view, (channel, row, col), arithmetic = chosen
    box = receptive_field(model, view.name, row, col)
    left, right = st.columns([1, 2])
    with left:
        show_figure(figure_once(receptive_field_figure, _grey(picture), box, title="The patch on the digit"),
                    f"{key}_patch", "patch", downloads=False,
                    caption=f"{picture.label}: the outlined pixels are the patch under the filter.")
    with right:
        show_figure(figure_once(conv_arithmetic_figure, arithmetic), f"{key}_sum", "conv-sum", downloads=False,
                    caption="The patch, the filter and their product, cell by cell: add up the right-hand grid.")
    cells = arithmetic.products.size
    st.markdown(f"The {cells} products add up to **{arithmetic.weighted_sum:.4f}**; plus the bias "
                f"{arithmetic.bias:+.4f} that is **{arithmetic.pre:.4f}**, the value at row {row + 1}, column {col + 1} "
                f"of feature map {channel + 1} (PyTorch's `Conv2d` gave {float(view.pre[channel, row, col]):.4f}).")
    st.latex(arithmetic.formula)
    st.latex(arithmetic.numbers)


def conv_formula(options: dict, key: str) -> None:
    """The articles' convolution (the kernel flipped) and PyTorch's cross-correlation: one number."""
    chosen = _chosen_value(options, key)
    if chosen is None:
        return
    _model, _picture, view, (channel, row, col), arithmetic = chosen
    st.markdown("**As the articles write it** (a convolution: the kernel $k$ is turned round as it slides):")
    st.latex(r"y(i,j) = \sum_p \sum_q x(i-p+1,\, j-q+1)\, k(p,q) + b")
    st.markdown("**As PyTorch's `Conv2d` computes it** (a cross-correlation: the filter $w$ is laid on as it is):")
    st.latex(r"y(i,j) = \sum_p \sum_q x(i+p-1,\, j+q-1)\, w(p,q) + b")
    learned = view.weight[channel].mean(axis=0)  # (k, k); a first-layer filter reads one grey channel
    flipped = learned[::-1, ::-1]  # (k, k) turned round: the k of the articles' formula
    show_figure(figure_once(heatmap_grid, np.stack([learned, flipped]),
                            ["w: the learned filter", "k: the same, flipped"], cols=2, signed=True, tile=150),
                f"{key}_flip", "filter-flipped", downloads=False,
                caption="The filter the network learned (left) and the kernel the articles' formula needs to give "
                        "the same numbers (right): the same grid turned by half a turn.")
    # The articles' sum, computed by a library's true convolution (scipy flips the kernel itself).
    flipped_kernels = arithmetic.kernel[:, ::-1, ::-1]  # (I, k, k)
    true_convolution = sum(float(convolve2d(patch, kernel, mode="valid")[0, 0])
                           for patch, kernel in zip(arithmetic.patch, flipped_kernels))
    st.markdown(f"At row {row + 1}, column {col + 1} of feature map {channel + 1}: a true convolution of the patch "
                f"with the flipped kernel (`scipy.signal.convolve2d`) gives **{true_convolution:.4f}**; the "
                f"cross-correlation with the learned filter gives **{arithmetic.weighted_sum:.4f}**. The same sum: "
                "a learned filter is simply the articles' kernel, flipped.")


def first_layer_maps(options: dict, key: str) -> None:
    """The first layer's filters and the feature map each makes of the digit."""
    found = _digit(options)
    if found is None:
        return
    _model, picture, inspection = found
    view = inspection.convs[0]
    maps = view.post if view.post is not None else view.pre
    left, right = st.columns([1, 3])
    with left:
        st.image(shown_picture(picture.seen, side=160), caption=common.as_markdown_text(picture.label))
    with right:
        show_figure(figure_once(filters_figure, view.weight, cols=8, tile=80), f"{key}_filters", "filters",
                    downloads=False, caption="The filters of the first layer: red where a filter wants brightness, "
                                             "blue where it wants darkness.")
    show_figure(figure_once(feature_maps_figure, maps, shared_scale=True, title="map"), f"{key}_maps", "feature-maps",
                downloads=False, caption="The feature map each filter makes of the digit (map 1 is filter 1's; after "
                                         f"{view.activation or 'the activation'}): bright where its pattern is found.")


# ---- lesson 2: pooling and the receptive field ------------------------------------------
def max_pool(options: dict, key: str) -> None:
    """One pooled value: the largest in its window, and where it was."""
    found = _digit(options)
    if found is None:
        return
    _model, _picture, inspection = found
    if not inspection.pools:
        st.info("This model has no pooling layer.")
        return
    pool = inspection.pools[min(max(whole_number(options, "pool", 1), 1), len(inspection.pools)) - 1]
    channels, out_h, out_w = pool.after.shape
    # Unless the lesson says where, start on the strongest pooled value: a window of zeros teaches nothing.
    strongest = np.unravel_index(int(np.argmax(pool.after)), pool.after.shape)  # (channel, row, col)
    pick = st.columns(3)
    channel = _slider("Feature map", channels, whole_number(options, "filter", strongest[0] + 1), f"{key}_channel", pick[0])
    row = _slider("Output row", out_h, whole_number(options, "row", strongest[1] + 1), f"{key}_row", pick[1])
    col = _slider("Output column", out_w, whole_number(options, "column", strongest[2] + 1), f"{key}_col", pick[2])
    show_figure(figure_once(pooling_figure, pool.before[channel], pool.after[channel], pool.kernel, pool.stride,
                            pool.padding, pool.kind, highlight=(row, col)),
                f"{key}_pool", "pooling", downloads=False,
                caption="The feature map (left) and its pooled map (right): the outlined window on the left becomes "
                        "the outlined cell on the right.")
    top, left, bottom, right = pool_windows(pool, row, col)
    window = pool.before[channel, top:bottom, left:right]
    values = ", ".join(f"{v:.2f}" for v in window.flatten())
    if pool.kind == "max":
        kept_row, kept_col = pool_argmax(pool, channel, row, col)
        st.markdown(f"The window holds {values}: max pooling keeps the largest, **{pool.after[channel, row, col]:.2f}**, "
                    f"found at row {kept_row + 1}, column {kept_col + 1} of the feature map; the other "
                    f"{window.size - 1} values are dropped.")
    else:
        st.markdown(f"The window holds {values}: average pooling keeps their mean, "
                    f"**{pool.after[channel, row, col]:.2f}**.")


def receptive_field_view(options: dict, key: str) -> None:
    """How many input pixels one value of a deeper layer depends on, with the numbers."""
    found = _digit(options)
    if found is None:
        return
    model, picture, inspection = found
    views = {view.name: view for view in [*inspection.convs, *inspection.pools]}
    stages = [stage for stage in inspection.stages if stage in views]
    default = str(options.get("stage", stages[-1]))
    key_stage = f"{key}_stage"
    if st.session_state.get(key_stage) not in stages:
        st.session_state.pop(key_stage, None)
    stage = st.segmented_control("Layer", stages, format_func=stage_label, required=True, key=key_stage,
                                 default=default if default in stages else stages[-1], persist_state="session")
    view = views[stage]
    maps = view.pre if stage in {c.name for c in inspection.convs} else view.after
    _, height, width = maps.shape
    pick = st.columns(2)
    row = _slider("Row", height, whole_number(options, "row", height // 2), f"{key}_row", pick[0])
    col = _slider("Column", width, whole_number(options, "column", width // 2), f"{key}_col", pick[1])
    box = receptive_field(model, stage, row, col)
    left, right = st.columns([1, 1])
    with left:
        show_figure(figure_once(receptive_field_figure, _grey(picture), box, title="What this value sees"),
                    f"{key}_field", "receptive-field", downloads=False,
                    caption=f"Row {row + 1}, column {col + 1} of {stage_label(stage)} ({height}×{width}) depends on "
                            f"the outlined {box[2] - box[0]}×{box[3] - box[1]} pixels of the "
                            f"{model.spec.input.height}×{model.spec.input.width} digit.")
    with right:
        rows = []
        for name in stages[:stages.index(stage) + 1]:
            step = views[name]
            rows.append({"layer": stage_label(name), "window": f"{step.kernel}×{step.kernel}", "stride": step.stride,
                         "sees (pixels)": f"{receptive_field_size(model, name)}×{receptive_field_size(model, name)}",
                         "its values are": f"{jump(model, name)} px apart"})
        st.dataframe(rows, hide_index=True, key=f"{key}_table")
        st.markdown("Each layer widens the view by its window minus one, times the distance between the values "
                    "it reads:")
        st.latex(r"r_\ell = r_{\ell-1} + (k_\ell - 1)\, j_{\ell-1}, \qquad j_\ell = j_{\ell-1}\, s_\ell")


VIEWS = {
    "conv_sum": conv_sum,
    "conv_formula": conv_formula,
    "first_layer_maps": first_layer_maps,
    "max_pool": max_pool,
    "receptive_field": receptive_field_view,
    **TRAINING_VIEWS,
}
