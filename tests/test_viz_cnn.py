"""viz.cnn: the figures carry exactly the arrays they were given, and every rectangle sits on
the pixels of the box or window it stands for (pixel (r, c) spans c-0.5..c+0.5, r-0.5..r+0.5)."""
import numpy as np
import pytest
import torch

from explain import cnn
from models import build_model, presets
from viz.cnn import conv_arithmetic_figure, feature_maps_figure, pooling_figure, receptive_field_figure


def shapes_named(fig, name):
    return [s for s in fig.layout.shapes if s.name == name]


def test_feature_maps_one_heatmap_per_channel_titled_from_one():
    maps = np.random.default_rng(0).normal(size=(5, 6, 7))
    fig = feature_maps_figure(maps, cols=3)
    assert len(fig.data) == 5 and all(t.type == "heatmap" for t in fig.data)
    for trace, expected in zip(fig.data, maps):
        np.testing.assert_array_equal(np.asarray(trace.z), expected)
    assert [a.text for a in fig.layout.annotations] == [f"channel {i}" for i in range(1, 6)]
    assert fig.data[0].zmin == fig.data[4].zmin  # one shared colour range
    own = feature_maps_figure(maps, shared_scale=False, title="filter")
    assert own.layout.annotations[0].text == "filter 1" and own.data[0].zmax == pytest.approx(np.abs(maps[0]).max())
    with pytest.raises(ValueError, match="N, H, W"):
        feature_maps_figure(np.zeros((4, 4)))


def test_pooling_figure_shows_input_and_output_with_the_highlighted_window():
    before = np.arange(36.0).reshape(6, 6)
    after = before.reshape(3, 2, 3, 2).max(axis=(1, 3))  # (3, 3) max pool 2×2 stride 2 by hand
    fig = pooling_figure(before, after, kernel=2, stride=2, padding=0, kind="max", highlight=(1, 2))
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), before)
    np.testing.assert_array_equal(np.asarray(fig.data[1].z), after)
    assert (fig.data[0].zmin, fig.data[0].zmax) == (fig.data[1].zmin, fig.data[1].zmax) == (0.0, 35.0)
    assert [a.text for a in fig.layout.annotations] == ["input 6×6", "max pool 2×2, stride 2 → 3×3"]
    (window,) = shapes_named(fig, "window")  # rows 2..3, cols 4..5 of the input
    assert (window.x0, window.x1, window.y0, window.y1, window.xref) == (4.5, 6.5, 2.5, 4.5, "x")
    (cell,) = shapes_named(fig, "cell")
    assert (cell.x0, cell.x1, cell.y0, cell.y1, cell.xref, cell.yref) == (2.5, 3.5, 1.5, 2.5, "x2", "y2")
    grid = shapes_named(fig, "grid")  # window edges at 0, 2, 4, 6 across and down
    assert sorted(s.y0 for s in grid if s.y0 == s.y1) == [0.5, 2.5, 4.5, 6.5]
    assert sorted(s.x0 for s in grid if s.x0 == s.x1) == [0.5, 2.5, 4.5, 6.5]
    assert shapes_named(pooling_figure(before, after, 2, 2, 0, "max"), "window") == []
    with pytest.raises(ValueError, match="3×3"):
        pooling_figure(before, after, 2, 2, 0, "max", highlight=(3, 0))


def test_pooling_window_is_clipped_where_it_hangs_over_the_padding():
    before = np.random.default_rng(1).normal(size=(5, 5))
    after = np.zeros((3, 3))  # avg pool 3×3, stride 2, padding 1 on 5×5 -> 3×3
    fig = pooling_figure(before, after, kernel=3, stride=2, padding=1, kind="avg", highlight=(0, 2))
    (window,) = shapes_named(fig, "window")  # rows -1..1 -> 0..1, cols 3..5 -> 3..4
    assert (window.x0, window.x1, window.y0, window.y1) == (3.5, 5.5, 0.5, 2.5)
    assert fig.data[0].zmin == -fig.data[0].zmax  # signed values get a range centred on zero
    assert fig.layout.annotations[1].text == "avg pool 3×3, stride 2, padding 1 → 3×3"


def test_receptive_field_figure_draws_the_box_on_grey_and_colour_images():
    grey = np.random.default_rng(2).random((16, 16))
    fig = receptive_field_figure(grey, (2, 3, 7, 9), title="conv.1, row 2, col 3")
    assert len(fig.data) == 1 and fig.data[0].type == "heatmap"
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), grey)
    (box,) = shapes_named(fig, "receptive field")
    assert (box.x0, box.x1, box.y0, box.y1) == (3.5, 9.5, 2.5, 7.5) and box.type == "rect"
    assert fig.layout.title.text == "conv.1, row 2, col 3"
    colour = np.random.default_rng(3).integers(0, 256, size=(8, 10, 3), dtype=np.uint8)
    fig = receptive_field_figure(colour, (0, 0, 8, 10))
    assert fig.data[0].type == "image"
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), colour)
    with pytest.raises(ValueError, match="inside the 8×10 image"):
        receptive_field_figure(colour, (0, 0, 9, 10))
    with pytest.raises(ValueError, match="H, W"):
        receptive_field_figure(np.zeros((2, 3, 4)), (0, 0, 1, 1))


def arithmetic():
    model = build_model(presets.get("digits-cnn"), seed=0)
    x = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0))
    view = cnn.inspect_cnn(model, x)
    return cnn.conv_arithmetic(model, view, 1, 5, 0, 3)  # conv.1 reads 8 channels; row 0 touches the padding


def written(value, decimals):
    """The reference for a cell's text: the rounded number, with no minus sign on a zero."""
    rounded = round(float(value), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{rounded:.{decimals}f}"


def test_arithmetic_figure_writes_every_number_in_its_cell():
    arith = arithmetic()
    fig = conv_arithmetic_figure(arith, max_channels=3)
    assert len(fig.data) == 9 and all(t.type == "heatmap" for t in fig.data)
    partial = arith.products.sum(axis=(1, 2))
    chosen = list(np.argsort(-np.abs(partial))[:3])  # the three largest contributions
    titles = [a.text for a in fig.layout.annotations]
    for row, channel in enumerate(chosen):
        assert titles[3 * row] == f"input channel {channel + 1}: patch"
        assert titles[3 * row + 2] == f"patch ⊙ kernel: sum {partial[channel]:.2f}"
    # traces go column by column: patches, then kernels, then products
    for column, values in enumerate((arith.patch, arith.kernel, arith.products)):
        for row, channel in enumerate(chosen):
            trace = fig.data[column * 3 + row]
            np.testing.assert_array_equal(np.asarray(trace.z), values[channel])
            assert [list(line) for line in trace.text] == [[written(v, 2) for v in line] for line in values[channel]]
            assert trace.texttemplate == "%{text}"
    assert [list(line) for line in fig.data[0].text][0] == ["0.00"] * 3  # the padded top row of the window
    assert "showing 3 of 8" in fig.layout.title.text


def test_arithmetic_figure_with_chosen_channels():
    arith = arithmetic()
    fig = conv_arithmetic_figure(arith, channels=[7, 0], decimals=3)
    assert len(fig.data) == 6
    np.testing.assert_array_equal(np.asarray(fig.data[1].z), arith.patch[0])
    assert list(fig.data[2].text[1]) == [written(v, 3) for v in arith.kernel[7][1]]
    with pytest.raises(ValueError, match="between 0 and 7"):
        conv_arithmetic_figure(arith, channels=[8])
