"""Counting from 1 in every figure a student reads (issue 12, item 5).

A page's number inputs say "Row 9" for index 8; a figure must say the same: its titles, its axis
values and the coordinates its hover text shows (``%{x}``, ``%{y}``) count rows, columns, units,
words, blocks and heads from 1. The highlight boxes drawn on a pixel grid must still cover the
pixels they name in those coordinates. The reference here is the 0-based index plus one.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explain import cnn
from explain.rnn import StepArithmetic
from models import build_model, presets
from viz.activations import heatmap_grid
from viz.attention import attention_grid
from viz.attributions import attribution_figure
from viz.cnn import conv_arithmetic_figure, feature_maps_figure, pooling_figure, receptive_field_figure
from viz.labels import counted, numbered, unique_labels
from viz.probe import hidden_states_figure
from viz.rnn import gates_figure, step_figure, units_heatmap


def coordinates(trace, axis: str, count: int) -> list[float]:
    """The axis values Plotly gives a heatmap's (or image's) cells 0..count-1: what %{x} or %{y}
    shows when the cell is hovered."""
    spec = trace.to_plotly_json()  # an image trace has x0/dx but no x
    if spec.get(axis) is not None:
        return [float(v) for v in list(spec[axis])[:count]]
    start, step = spec.get(f"{axis}0", 0), spec.get(f"d{axis}", 1)
    return [float(start + step * i) for i in range(count)]


def assert_counts_from_one(trace, height: int, width: int):
    assert coordinates(trace, "y", height) == [float(r + 1) for r in range(height)]
    assert coordinates(trace, "x", width) == [float(c + 1) for c in range(width)]


def covers(shape, trace, box):
    """``shape`` spans exactly the cells top..bottom-1, left..right-1 of ``trace`` (half a cell
    beyond each centre), in the coordinates the trace's cells have."""
    top, left, bottom, right = box
    ys, xs = coordinates(trace, "y", bottom), coordinates(trace, "x", right)
    return (shape.x0, shape.x1, shape.y0, shape.y1) == (xs[left] - 0.5, xs[right - 1] + 0.5,
                                                       ys[top] - 0.5, ys[bottom - 1] + 0.5)


def shapes_named(fig, name):
    return [shape for shape in fig.layout.shapes if shape.name == name]


def test_the_helpers_count_from_one():
    assert counted(0) == 1 and counted(np.int64(8)) == 9
    assert numbered("row", 8) == "row 9"
    assert unique_labels(["the", "cat", "the"]) == ["the", "cat", "the (3)"]  # the third word


def test_map_grids_hover_rows_and_columns_from_one():
    maps = np.random.default_rng(0).normal(size=(3, 4, 5))
    for fig in (heatmap_grid(maps, ["a", "b", "c"]), feature_maps_figure(maps)):
        for trace in fig.data:
            assert_counts_from_one(trace, 4, 5)
            assert "row %{y}, col %{x}" in trace.hovertemplate


def test_pooling_counts_from_one_and_its_boxes_still_cover_the_window():
    before = np.arange(36.0).reshape(6, 6)
    after = before.reshape(3, 2, 3, 2).max(axis=(1, 3))
    fig = pooling_figure(before, after, kernel=2, stride=2, padding=0, kind="max", highlight=(1, 2))
    assert_counts_from_one(fig.data[0], 6, 6)
    assert_counts_from_one(fig.data[1], 3, 3)
    (window,) = shapes_named(fig, "window")
    assert covers(window, fig.data[0], (2, 4, 4, 6))  # input rows 3-4, columns 5-6 as a student counts
    (cell,) = shapes_named(fig, "cell")
    assert covers(cell, fig.data[1], (1, 2, 2, 3))
    edges = sorted(s.x0 for s in shapes_named(fig, "grid") if s.x0 == s.x1)
    assert edges == [0.5, 2.5, 4.5, 6.5]  # left of column 1, 3, 5 and right of column 6


@pytest.mark.parametrize("image", [np.random.default_rng(2).random((16, 16)),
                                   np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)])
def test_receptive_field_counts_from_one_and_its_box_covers_the_field(image):
    fig = receptive_field_figure(image, (2, 3, 7, 9))
    assert_counts_from_one(fig.data[0], 16, 16)
    (box,) = shapes_named(fig, "receptive field")
    assert covers(box, fig.data[0], (2, 3, 7, 9))


def test_attribution_tiles_count_from_one_and_the_picture_stays_under_them():
    fig = attribution_figure(np.ones((6, 5)), "absolute", image=np.zeros((6, 5, 3), dtype=np.uint8))
    picture, heat = fig.data
    assert_counts_from_one(heat, 6, 5)
    assert coordinates(picture, "x", 5) == coordinates(heat, "x", 5)
    assert coordinates(picture, "y", 6) == coordinates(heat, "y", 6)
    assert fig.layout.xaxis.range == (0.5, 5.5) and fig.layout.yaxis.range == (6.5, 0.5)  # every pixel, whole


def test_the_arithmetic_names_the_position_as_the_inputs_do():
    model = build_model(presets.get("digits-cnn"), seed=0)
    view = cnn.inspect_cnn(model, torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0)))
    arith = cnn.conv_arithmetic(model, view, 1, 5, 7, 3)  # channel index 5, row index 7, column index 3
    fig = conv_arithmetic_figure(arith)
    assert "Conv 2" in fig.layout.title.text and "channel 6, row 8, col 4" in fig.layout.title.text
    for trace in fig.data:  # u, v: the filter's row and column, from 1 as in the formula
        assert_counts_from_one(trace, arith.kernel.shape[1], arith.kernel.shape[2])


def test_units_count_from_one():
    tokens = ["a", "b", "c"]
    values = np.random.default_rng(0).normal(size=(3, 4))
    for fig in (units_heatmap(values, tokens), hidden_states_figure(values, tokens),
                gates_figure(np.abs(values)[:, None, :] / 4, ["forget"], tokens)):
        assert list(fig.data[0].y) == [1, 2, 3, 4]
        assert "unit %{y}" in fig.data[0].hovertemplate
    units = np.linspace(-0.5, 0.5, 4)
    parts = {name: units for name in ("Wx", "Uh", "b", "pre", "value")}
    step = StepArithmetic("rnn", 2, "c", x=units, h_prev=units, c_prev=None, terms={"h": parts}, h=units, c=None,
                          equations=[])
    fig = step_figure(step)
    assert list(fig.data[0].y) == [1, 2, 3, 4] and fig.layout.title.text.startswith("step 3")


def test_the_attention_grid_says_block_as_the_pages_do():
    fig = attention_grid(np.full((2, 3, 2, 2), 0.5), ["a", "b"])
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["head 1", "head 2", "head 3", "block 1", "block 2"]
    assert [t.name for t in fig.data] == [f"block {b} · head {h}" for b in (1, 2) for h in (1, 2, 3)]
    assert all("layer" not in trace.hovertemplate for trace in fig.data)
