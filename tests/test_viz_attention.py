"""viz.attention: the figures carry exactly the arrays they were given, tiles are titled and
share one colour axis, and a patch overlay covers exactly its patch of the picture."""
import numpy as np
import pytest
import torch

from explain.attention import cls_patch_attention, inspect_attention, query_arithmetic
from models import build_model, presets
from viz.attention import attention_grid, patch_attention_figure, query_bars, scores_figure

RNG = np.random.default_rng(0)


def random_patterns(layers: int, heads: int, length: int) -> np.ndarray:
    raw = RNG.random((layers, heads, length, length))
    return raw / raw.sum(-1, keepdims=True)  # (L, heads, T, T) rows sum to 1


def test_attention_grid_has_one_titled_tile_per_layer_and_head():
    patterns = random_patterns(2, 3, 4)
    fig = attention_grid(patterns, ["[CLS]", "a", "b", "c"])
    assert len(fig.data) == 6 and all(t.type == "heatmap" for t in fig.data)
    for index, trace in enumerate(fig.data):  # row by row: layer 1's heads, then layer 2's
        np.testing.assert_array_equal(np.asarray(trace.z), patterns[index // 3, index % 3])
        assert list(trace.x) == list(trace.y) == ["[CLS]", "a", "b", "c"]
        assert trace.coloraxis == "coloraxis" and "→" in trace.hovertemplate
    assert fig.data[4].xaxis == "x5" and fig.data[4].yaxis == "y5"
    titles = [a.text for a in fig.layout.annotations]
    assert titles == [f"block {b} · head {h}" for b in (1, 2) for h in (1, 2, 3)]
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0, 1)


def test_attention_grid_stays_light_for_twelve_by_twelve_heads():
    fig = attention_grid(random_patterns(12, 12, 5), list("abcde"), tile=100)
    assert len(fig.data) == 144
    assert {t.coloraxis for t in fig.data} == {"coloraxis"}  # one colour bar, not 144
    assert all(t.showscale is None and t.colorbar.title.text is None for t in fig.data)
    assert fig.layout.annotations[-1].text == "block 12<br>head 12"  # two lines: 12 narrow tiles a row
    assert fig.data[-1].name == "block 12 · head 12"
    assert fig.layout.height == 12 * 100 + 60


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
    fig = attention_grid(view.patterns, view.labels)
    assert view.labels.count("the") == 2
    assert list(fig.data[0].x) == ["[CLS]", "the", "film", "is", "good", "and", "the (7)", "plot", "is (9)", "good (10)"]
    np.testing.assert_array_equal(np.asarray(fig.data[-1].z), view.patterns[-1, -1])
    step = query_arithmetic(view, 0, 1, 6)
    np.testing.assert_array_equal(scores_figure(step.scores, step.weights, view.labels).data[1].x, step.weights)
    vit = build_model(presets.get("shapes-vit"), seed=0)
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    seen = inspect_attention(vit, image)
    maps = cls_patch_attention(seen, 1)
    picture = (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)  # (H, W, 3)
    overlay = patch_attention_figure(picture, maps, seen.patch_size).data[1]
    np.testing.assert_array_equal(np.asarray(overlay.z), seen.patterns[1, 0, 0, 1:].reshape(4, 4))
