"""viz.attention: the figures carry exactly the arrays they were given, tiles are labelled by
block and head and share one colour axis, the lines view's widths are the model's own attention
weights, head colours differ, and a patch overlay covers exactly its patch of the picture."""
import numpy as np
import pytest
import torch

from explain.attention import cls_patch_attention, inspect_attention, query_arithmetic
from models import build_model, presets
from viz.attention import (DISTINCT_COLOURS, LEAST_LINE_WEIGHT, LINE_WIDTH_PER_WEIGHT, attention_grid, attention_lines,
                           distinct_colours, patch_attention_figure, query_bars, scores_figure)

RNG = np.random.default_rng(0)


def random_patterns(layers: int, heads: int, length: int) -> np.ndarray:
    raw = RNG.random((layers, heads, length, length))
    return raw / raw.sum(-1, keepdims=True)  # (L, heads, T, T) rows sum to 1


def test_attention_grid_labels_blocks_and_heads_from_1_and_keeps_every_tile():
    patterns = random_patterns(2, 3, 4)
    fig = attention_grid(patterns, ["[CLS]", "a", "b", "c"])
    assert len(fig.data) == 6 and all(t.type == "heatmap" for t in fig.data)
    for index, trace in enumerate(fig.data):  # row by row: block 1's heads, then block 2's
        np.testing.assert_array_equal(np.asarray(trace.z), patterns[index // 3, index % 3])
        assert list(trace.x) == list(trace.y) == ["[CLS]", "a", "b", "c"]  # hovering a cell names its tokens
        assert trace.coloraxis == "coloraxis" and "→" in trace.hovertemplate
        assert trace.name == f"block {index // 3 + 1} · head {index % 3 + 1}"
    assert fig.data[4].xaxis == "x5" and fig.data[4].yaxis == "y5"
    labels = {a.text: a for a in fig.layout.annotations}
    assert list(labels) == ["head 1", "head 2", "head 3", "block 1", "block 2"]
    for head in range(3):  # each head's label stands over its column, each block's left of its row
        assert labels[f"head {head + 1}"].x == pytest.approx(sum(fig.layout[f"xaxis{head + 1 if head else ''}"].domain) / 2)
    for block in range(2):
        axis = fig.layout[f"yaxis{block * 3 + 1 if block else ''}"]
        assert labels[f"block {block + 1}"].y == pytest.approx(sum(axis.domain) / 2)
        assert labels[f"block {block + 1}"].xanchor == "right"
    assert fig.layout.yaxis.domain[0] > fig.layout.yaxis4.domain[1]  # block 1 on top
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0, 1)
    assert not fig.layout.shapes


def test_a_clickable_grid_has_one_target_per_tile_naming_its_block_and_head():
    patterns = random_patterns(2, 3, 4)
    patterns[1, 2] = np.eye(4)[[0, 0, 1, 2]]  # block 2, head 3: each token looks at the one before
    fig = attention_grid(patterns, ["[CLS]", "a", "b", "c"], chosen=(1, 2), clickable=True)
    tiles = [t for t in fig.data if t.type == "heatmap"]
    targets = [t for t in fig.data if t.type == "scatter"]
    assert len(tiles) == len(targets) == 6
    for index, (tile, target) in enumerate(zip(tiles, targets)):
        assert (target.xaxis, target.yaxis) == (tile.xaxis, tile.yaxis)  # on its own tile
        assert [list(d) for d in target.customdata] == [[index // 3, index % 3]]  # 0-based, for the page
        assert target.hovertemplate.startswith(f"<b>block {index // 3 + 1} · head {index % 3 + 1}</b>")
    assert "strongest: [CLS] → [CLS] (1.00)" in targets[-1].hovertemplate
    assert fig.layout.hoverdistance == -1  # anywhere on a tile reaches its target
    assert all(fig.layout[name].fixedrange for name in fig.layout if name.startswith(("xaxis", "yaxis")))
    frame, = fig.layout.shapes  # the open head is framed
    assert (frame.x0, frame.x1) == tuple(fig.layout.xaxis6.domain) and (frame.y0, frame.y1) == tuple(fig.layout.yaxis6.domain)


def test_attention_grid_stays_light_for_twelve_by_twelve_heads():
    fig = attention_grid(random_patterns(12, 12, 5), list("abcde"), tile=100)
    assert len(fig.data) == 144
    assert {t.coloraxis for t in fig.data} == {"coloraxis"}  # one colour bar, not 144
    assert all(t.showscale is None and t.colorbar.title.text is None for t in fig.data)
    assert [a.text for a in fig.layout.annotations][11:] == ["head 12"] + [f"block {b}" for b in range(1, 13)]
    assert fig.data[-1].name == "block 12 · head 12"
    assert fig.layout.height == 12 * 100 + 40


def test_attention_grid_refuses_wrong_shapes():
    with pytest.raises(ValueError, match="blocks, heads, T, T"):
        attention_grid(np.zeros((2, 4, 4)), list("abcd"))
    with pytest.raises(ValueError, match="3 labels for 4 positions"):
        attention_grid(np.zeros((1, 1, 4, 4)), list("abc"))


def test_query_bars_and_scores_figure_carry_the_values():
    labels = ["[CLS]", "not", "bad", "not"]
    weights = np.array([0.1, 0.2, 0.6, 0.1])
    scores = np.array([-1.5, 0.25, 1.4, -0.3])
    bars = query_bars(weights, labels, "bad")
    assert len(bars.data) == 1 and bars.data[0].orientation == "h"
    np.testing.assert_array_equal(bars.data[0].x, weights)
    assert list(bars.data[0].y) == ["[CLS]", "not", "bad", "not (4)"]  # the repeated word stays apart (position from 1)
    assert "bad" in bars.layout.title.text
    fig = scores_figure(scores, weights, labels)
    assert [a.text for a in fig.layout.annotations] == ["score qk/√d (before softmax)", "weight (after softmax)"]
    np.testing.assert_array_equal(fig.data[0].x, scores)
    np.testing.assert_array_equal(fig.data[1].x, weights)
    assert list(fig.data[0].text) == ["-1.50", "0.25", "1.40", "-0.30"]
    assert list(fig.data[1].text) == ["0.10", "0.20", "0.60", "0.10"]
    assert fig.data[0].xaxis == "x" and fig.data[1].xaxis == "x2"  # side by side
    with pytest.raises(ValueError, match="one value per label"):
        scores_figure(scores[:3], weights, labels)


def test_patch_overlays_cover_the_picture_patch_by_patch():
    image = RNG.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    maps = RNG.random((4, 4, 4))  # (heads, rows, cols)
    fig = patch_attention_figure(image, maps, patch_size=8)
    pictures = [t for t in fig.data if t.type == "image"]
    overlays = [t for t in fig.data if t.type == "heatmap"]
    assert len(pictures) == len(overlays) == 5  # one per head and the mean of the heads
    for picture in pictures:
        np.testing.assert_array_equal(np.asarray(picture.z), image)
    for index, (picture, overlay) in enumerate(zip(pictures, overlays)):
        expected = maps[index] if index < 4 else maps.mean(axis=0)
        np.testing.assert_allclose(np.asarray(overlay.z), expected)
        assert np.asarray(overlay.z).shape == (4, 4)
        assert (overlay.xaxis, overlay.yaxis) == (picture.xaxis, picture.yaxis)  # drawn on the same panel
        assert overlay.coloraxis == "coloraxis"
        # go.Image pixel i spans [i - 0.5, i + 0.5]; cell c must span pixels 8c .. 8c + 7.
        for axis in ("x", "y"):
            start, step = overlay[f"{axis}0"], overlay[f"d{axis}"]
            for cell in range(4):
                left, right = start + cell * step - step / 2, start + cell * step + step / 2
                assert (left, right) == (8 * cell - 0.5, 8 * cell + 7.5)
    assert [a.text for a in fig.layout.annotations] == ["head 1", "head 2", "head 3", "head 4", "mean of heads"]
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == pytest.approx((maps.min(), maps.max()))


def test_patch_figure_takes_grey_pictures_and_refuses_mismatched_grids():
    grey = np.linspace(-1, 1, 16 * 16).reshape(16, 16)
    fig = patch_attention_figure(grey, np.ones((2, 4, 4)), patch_size=4, titles=["a", "b"], show_average=False)
    picture = np.asarray(fig.data[0].z)
    assert picture.shape == (16, 16, 3) and picture.dtype == np.uint8
    assert picture[0, 0].tolist() == [0, 0, 0] and picture[-1, -1].tolist() == [255, 255, 255]
    assert len([t for t in fig.data if t.type == "heatmap"]) == 2
    with pytest.raises(ValueError, match="do not cover"):
        patch_attention_figure(grey, np.ones((2, 3, 3)), patch_size=4)
    with pytest.raises(ValueError, match="titles for 2 heads"):
        patch_attention_figure(grey, np.ones((2, 4, 4)), patch_size=4, titles=["a"])
    with pytest.raises(ValueError, match="picture must be"):
        patch_attention_figure(np.zeros((3, 16, 16)), np.ones((2, 4, 4)), patch_size=4)


def test_a_real_inspection_flows_into_every_figure_with_distinct_labels_for_repeated_words():
    vocab = ["<pad>", "<unk>", "the", "film", "is", "good", "and", "plot"]
    spec = presets.get("sentiment-transformer")
    spec.input.vocab_size, spec.input.max_len = len(vocab), 12
    view = inspect_attention(build_model(spec, seed=0), torch.tensor([2, 3, 4, 5, 6, 2, 7, 4, 5, 0]), vocab=vocab)
    fig = attention_grid(view.patterns, view.labels, clickable=True)
    assert view.labels.count("the") == 2
    assert list(fig.data[0].x) == ["[CLS]", "the", "film", "is", "good", "and", "the (7)", "plot", "is (9)", "good (10)"]
    np.testing.assert_array_equal(np.asarray(fig.data[-2].z), view.patterns[-1, -1])  # the last tile, then its target
    step = query_arithmetic(view, 0, 1, 6)
    np.testing.assert_array_equal(scores_figure(step.scores, step.weights, view.labels).data[1].x, step.weights)
    vit = build_model(presets.get("shapes-vit"), seed=0)
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    seen = inspect_attention(vit, image)
    maps = cls_patch_attention(seen, 1)
    picture = (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)  # (H, W, 3)
    overlay = patch_attention_figure(picture, maps, seen.patch_size).data[1]
    np.testing.assert_array_equal(np.asarray(overlay.z), seen.patterns[1, 0, 0, 1:].reshape(4, 4))


def cielab(colour: str) -> np.ndarray:
    """sRGB "#RRGGBB" to CIELAB (D65), by the textbook formulas."""
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    f = np.cbrt(np.maximum(xyz / np.array([0.95047, 1.0, 1.08883]), 0.008856))
    f = np.where(xyz / np.array([0.95047, 1.0, 1.08883]) > 0.008856, f, 7.787 * xyz / np.array([0.95047, 1.0, 1.08883]) + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_twenty_colours_are_far_apart_and_dark_enough_to_read_on_white():
    colours = distinct_colours(20)
    assert colours == DISTINCT_COLOURS and len(set(colours)) == 20
    lab = [cielab(c) for c in colours]
    nearest = min(np.linalg.norm(lab[a] - lab[b]) for a in range(20) for b in range(a + 1, 20))
    assert nearest > 30  # a CIELAB distance of about 2 is just noticeable; 30 is plainly another colour
    assert max(point[0] for point in lab) < 70  # lightness: no pale yellow on a white page
    assert distinct_colours(21)[20] == colours[0]


def bands(x, y, legendgroup: str, layout: dict) -> dict[tuple[int, int, int], float]:
    """{(head, query, key): thickness in pixels} of one head's filled bands, read back from the
    drawing: each band is 4 corners and a gap, its left side on the query's row, its right side on
    the key's, and a row is as many pixels as the plot's height over the y axis' span."""
    margin = layout["margin"]
    pixels_per_row = (layout["height"] - margin["t"] - margin["b"]) / np.diff(layout["yaxis"]["range"])[0]
    head = int(legendgroup.removeprefix("head")) - 1
    found = {}
    for corners in np.asarray(y, dtype=float).reshape(-1, 5):
        assert np.isnan(corners[4]) and list(np.asarray(x, dtype=float).reshape(-1, 5)[0, :4]) == [0, 0, 1, 1]
        query, key = -(corners[0] + corners[1]) / 2, -(corners[2] + corners[3]) / 2
        assert query == pytest.approx(round(query)) and key == pytest.approx(round(key))
        assert corners[1] - corners[0] == pytest.approx(corners[2] - corners[3])  # as thick at both ends
        found[head, round(query), round(key)] = (corners[1] - corners[0]) * pixels_per_row
    return found


def lines_of(fig) -> dict[tuple[int, int, int], float]:
    """{(head, query, key): line width in pixels} of a lines view (0-based)."""
    layout = fig.layout.to_plotly_json()
    found = {}
    for trace in fig.data:
        if trace.fill == "toself":
            found.update(bands(trace.x, trace.y, trace.legendgroup, layout))
    return found


def test_the_lines_view_draws_the_models_own_weights_as_widths():
    spec = presets.get("sentiment-transformer")
    model = build_model(spec, seed=0).eval()
    ids = torch.tensor([[2, 3, 4, 5, 6, 7]])
    _, cache = model.run_with_cache(ids, names=["blocks.1.attn.pattern"])
    pattern = cache["blocks.1.attn.pattern"][0].numpy()  # (heads, T, T)
    labels = ["[CLS]"] + [f"w{i}" for i in range(1, pattern.shape[-1])]
    fig = attention_lines(pattern, labels)
    drawn = lines_of(fig)
    wanted = {(h, q, k): float(pattern[h, q, k]) for h, q, k in zip(*np.nonzero(pattern >= LEAST_LINE_WEIGHT))}
    assert set(drawn) == set(wanted)  # every weight above the threshold, and no other
    for line, weight in wanted.items():
        assert drawn[line] == pytest.approx(weight * LINE_WIDTH_PER_WEIGHT)
    heads = pattern.shape[0]
    legend = [t for t in fig.data if t.showlegend is not False and t.mode != "text"]
    assert [t.name for t in legend] == [f"head {h}" for h in range(1, heads + 1)]  # one legend item per head
    assert len({t.fillcolor for t in legend}) == heads  # one colour per head
    hover = [t for t in fig.data if t.mode == "markers"]  # each band's weight, on hover
    assert [t.legendgroup for t in hover] == [t.legendgroup for t in legend]
    first = hover[0]
    assert list(first.customdata) == [pattern[0, q, k] for q, k in zip(*np.nonzero(pattern[0] >= LEAST_LINE_WEIGHT))]
    sides = [t for t in fig.data if t.mode == "text"]
    assert [list(t.text) for t in sides] == [labels, labels]
    assert sides[0].x[0] < 0 and sides[1].x[0] > 1 and sides[0].textposition == "middle left"  # either side of the bands


def test_the_lines_view_draws_only_the_heads_asked_for():
    pattern = random_patterns(1, 4, 5)[0]
    fig = attention_lines(pattern, list("abcde"), heads=[2])
    assert {head for head, _, _ in lines_of(fig)} == {2}
    assert [t.name for t in fig.data if t.showlegend is not False and t.mode != "text"] == ["head 3"]
    with pytest.raises(ValueError, match="heads, T, T"):
        attention_lines(pattern[0], list("abcde"))
    with pytest.raises(ValueError, match="4 labels for 5"):
        attention_lines(pattern, list("abcd"))
