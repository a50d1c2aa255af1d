"""viz.ablation and viz.lens: the arrays reach the figures unchanged, blocks, heads, channels and
units count from 1, colour carries a number only with a colour bar, and marked parts are outlined."""
from __future__ import annotations

import numpy as np

from viz.ablation import before_after_bars, head_importance_grid, part_importance_bars
from viz.lens import block_answers_figure, logit_lens_figure


def test_the_head_grid_counts_from_one_and_outlines_the_heads_switched_off():
    drops = np.arange(6, dtype=float).reshape(2, 3) - 2
    fig = head_importance_grid(drops, "probability of 'good'", marked=[(1, 2)])
    heat = fig.data[0]
    np.testing.assert_array_equal(heat.z, drops)
    assert heat.colorbar.title.text == "drop" and heat.zmin == -3 and heat.zmax == 3  # white stays at zero
    assert list(fig.layout.xaxis.ticktext) == ["1", "2", "3"]
    assert list(fig.layout.yaxis.ticktext) == ["block 1", "block 2"]
    (box,) = fig.layout.shapes
    assert (box.x0, box.x1, box.y0, box.y1) == (1.5, 2.5, 0.5, 1.5)  # block 2, head 3
    assert heat.customdata[1][2] == "block 2, head 3"


def test_part_bars_are_numbered_from_one_and_mark_the_chosen_in_black():
    fig = part_importance_bars(np.array([0.2, -0.1, 0.0]), "probability of '7'", "channel", marked=[1])
    bar = fig.data[0]
    assert list(bar.x) == [1, 2, 3]
    assert list(bar.marker.color) == ["#dc2626", "#111827", "#dc2626"]
    assert "channel" in fig.layout.title.text


def test_before_and_after_keep_each_class_with_its_numbers():
    before, after = np.array([0.1, 0.7, 0.2]), np.array([0.5, 0.3, 0.2])
    fig = before_after_bars(before, after, ["cat", "dog", "eel"], top_k=2)
    assert list(fig.data[0].y) == ["dog", "cat"]
    np.testing.assert_allclose(fig.data[0].x, [0.7, 0.1])
    np.testing.assert_allclose(fig.data[1].x, [0.3, 0.5])


def test_block_answers_draw_a_line_per_class_and_dashes_when_switched_off():
    probabilities = np.array([[0.6, 0.4], [0.2, 0.8]])
    fig = block_answers_figure(probabilities, ["neg", "pos"], switched_off=np.array([[0.6, 0.4], [0.7, 0.3]]))
    assert [trace.name for trace in fig.data] == ["pos", "neg", "pos (switched off)", "neg (switched off)"]
    assert list(fig.data[0].x) == ["block 1", "block 2"]
    np.testing.assert_allclose(fig.data[0].y, [0.4, 0.8])
    assert fig.data[2].line.dash == "dash" and fig.data[2].line.color == fig.data[0].line.color


def test_the_logit_lens_writes_the_likeliest_token_and_colours_its_probability():
    tops = [[["a", "b"], ["c", "d"]], [["e", "f"], ["g", "h"]]]
    probabilities = np.array([[[0.5, 0.2], [0.4, 0.1]], [[0.9, 0.05], [0.3, 0.2]]])
    fig = logit_lens_figure(["the", "the"], tops, probabilities)
    heat = fig.data[0]
    np.testing.assert_allclose(heat.z, [[0.5, 0.4], [0.9, 0.3]])
    assert [list(row) for row in heat.text] == [["a", "c"], ["e", "g"]]
    assert list(heat.x) == ["the", "the (2)"] and list(heat.y) == ["block 1", "block 2"]
    assert heat.colorbar.title.text == "probability"
    assert "f: 5.0%" in heat.customdata[1][0]
