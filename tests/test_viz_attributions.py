"""viz.attributions: maps equal the numpy computation of each mode, figures carry exactly those
maps on the right colour ranges and over the picture's own pixels, and the sentence views colour
and label each token by the sign of its score."""
import re

import numpy as np
import pytest

from viz.attributions import (MODES, attribution_figure, attribution_grid, attribution_map, format_score,
                              token_attribution_figure, token_attribution_html)

RED, BLUE = "#dc2626", "#2563eb"


@pytest.fixture
def values():
    return np.random.default_rng(0).normal(size=(3, 6, 5))  # (C, H, W) signed attributions


def heatmaps(fig):
    return [t for t in fig.data if t.type == "heatmap"]


@pytest.mark.parametrize("mode, reference", [
    ("signed", lambda v: v[0] + v[1] + v[2]),
    ("absolute", lambda v: np.abs(v[0] + v[1] + v[2])),
    ("positive", lambda v: np.maximum(v[0] + v[1] + v[2], 0.0)),
])
def test_attribution_map_sums_channels_then_applies_the_mode(values, mode, reference):
    np.testing.assert_allclose(attribution_map(values, mode), reference(values))
    one_channel = np.stack([values[1], np.zeros_like(values[1]), np.zeros_like(values[1])])  # (3, H, W)
    np.testing.assert_allclose(attribution_map(values[1], mode), reference(one_channel))  # (H, W) taken as is


def test_attribution_map_refuses_unknown_modes_and_shapes(values):
    assert set(MODES) == {"signed", "absolute", "positive"}
    with pytest.raises(ValueError, match="signed, absolute, positive"):
        attribution_map(values, "squared")
    with pytest.raises(ValueError, match=r"\(C, H, W\) or \(H, W\)"):
        attribution_map(np.zeros(7))
    with pytest.raises(ValueError, match="NaN"):
        attribution_map(np.full((2, 2), np.nan))


def test_signed_figure_is_centred_on_zero_and_others_start_at_zero(values):
    signed = attribution_figure(values, "signed")
    (heat,) = heatmaps(signed)
    expected = values.sum(axis=0)
    np.testing.assert_allclose(np.asarray(heat.z), expected)
    bound = np.abs(expected).max()
    assert heat.zmin == pytest.approx(-bound) and heat.zmax == pytest.approx(bound)
    assert heat.opacity == 1.0 and signed.layout.yaxis.range == (6.5, 0.5)  # row 1 at the top
    for mode in ("absolute", "positive"):
        (heat,) = heatmaps(attribution_figure(values, mode))
        np.testing.assert_allclose(np.asarray(heat.z), attribution_map(values, mode))
        assert heat.zmin == 0 and heat.zmax == pytest.approx(np.asarray(heat.z).max())
    (flat,) = heatmaps(attribution_figure(np.zeros((4, 4)), "signed"))  # nothing to show: still a valid range
    assert (flat.zmin, flat.zmax) == (-1.0, 1.0)


@pytest.mark.parametrize("image", [
    np.random.default_rng(1).integers(0, 256, size=(6, 5, 3), dtype=np.uint8),
    np.random.default_rng(2).integers(0, 256, size=(6, 5, 1), dtype=np.uint8),
    np.random.default_rng(3).random(size=(6, 5)),
])
def test_the_picture_lies_under_the_heatmap_pixel_for_pixel(values, image):
    fig = attribution_figure(values, "absolute", image=image, blend=0.3)
    assert [t.type for t in fig.data] == ["image", "heatmap"]  # picture first, heatmap over it
    picture, heat = fig.data
    pixels = np.asarray(picture.z)
    assert pixels.shape == (6, 5, 3) and pixels.dtype == np.uint8
    if image.dtype == np.uint8:  # uint8 pictures are drawn as they are, grey repeated into three channels
        np.testing.assert_array_equal(pixels, np.broadcast_to(image, (6, 5, 3)))
    # pixel (0, 0) is drawn at (1, 1): hovering counts rows and columns from 1
    assert (picture.x0, picture.dx, picture.y0, picture.dy) == (heat.x0, heat.dx, heat.y0, heat.dy) == (1, 1, 1, 1)
    assert np.asarray(heat.z).shape == pixels.shape[:2]
    assert heat.opacity == 0.3
    assert fig.layout.xaxis.range == (0.5, 5.5) and fig.layout.yaxis.range == (6.5, 0.5)
    assert fig.layout.yaxis.scaleanchor == "x"  # square pixels


def test_a_picture_of_another_size_or_a_bad_blend_is_refused(values):
    with pytest.raises(ValueError, match="same pixels"):
        attribution_figure(values, image=np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="between 0 and 1"):
        attribution_figure(values, image=np.zeros((6, 5, 3), dtype=np.uint8), blend=1.5)


def test_grid_gives_each_method_its_own_range_by_default():
    rng = np.random.default_rng(4)
    entries = [("Saliency", rng.normal(size=(1, 4, 4))), ("Occlusion", 100 * rng.normal(size=(1, 4, 4))),
               ("Grad-CAM", rng.normal(size=(4, 4)))]
    fig = attribution_grid([entries], mode="signed")
    tiles = heatmaps(fig)
    assert len(tiles) == 3 and all(t.type == "heatmap" for t in fig.data)
    for tile, (_, v) in zip(tiles, entries):
        expected = attribution_map(v, "signed")
        np.testing.assert_allclose(np.asarray(tile.z), expected)
        assert tile.zmax == pytest.approx(np.abs(expected).max()) and tile.zmin == -tile.zmax
    assert [a.text for a in fig.layout.annotations] == ["Saliency", "Occlusion", "Grad-CAM"]
    shared = heatmaps(attribution_grid([entries], mode="positive", shared_scale=True))
    top = max(attribution_map(v, "positive").max() for _, v in entries)
    assert all((t.zmin, t.zmax) == (0.0, pytest.approx(top)) for t in shared)
    assert all(t.showscale for t in shared)  # every map has its colour bar (here all the same)


def test_sanity_grid_shares_one_range_per_column_across_the_two_rows():
    rng = np.random.default_rng(5)
    methods = ["Saliency", "Integrated Gradients"]
    trained = [(name, scale * rng.normal(size=(3, 4, 4))) for name, scale in zip(methods, (1.0, 50.0))]
    randomised = [(name, scale * rng.normal(size=(3, 4, 4))) for name, scale in zip(methods, (0.01, 3.0))]
    image = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    fig = attribution_grid([trained, randomised], mode="signed", image=image, blend=0.6,
                           row_titles=["trained model", "weights randomised"])
    assert [t.type for t in fig.data] == ["image", "heatmap"] * 4
    tiles = heatmaps(fig)
    for tile, (_, v) in zip(tiles, trained + randomised):
        np.testing.assert_allclose(np.asarray(tile.z), attribution_map(v, "signed"))
        assert tile.opacity == 0.6
    for col in range(2):  # tiles are row-major: column col is tiles[col] above tiles[2 + col]
        above, below = tiles[col], tiles[2 + col]
        bound = max(np.abs(attribution_map(trained[col][1])).max(), np.abs(attribution_map(randomised[col][1])).max())
        assert (above.zmin, above.zmax) == (below.zmin, below.zmax) == (pytest.approx(-bound), pytest.approx(bound))
    assert tiles[0].zmax != pytest.approx(tiles[1].zmax)  # columns (methods) keep their own ranges
    texts = [a.text for a in fig.layout.annotations]
    assert "<b>trained model</b>" in texts and "<b>weights randomised</b>" in texts
    assert tiles[2].name == "weights randomised: Saliency"
    # Rows listing different methods are not a comparison: every tile keeps its own range.
    other = heatmaps(attribution_grid([trained, list(reversed(randomised))], mode="signed"))
    assert other[0].zmax == pytest.approx(np.abs(attribution_map(trained[0][1])).max())


def test_grid_refuses_nothing_and_mismatched_row_titles(values):
    with pytest.raises(ValueError, match="no attributions"):
        attribution_grid([])
    with pytest.raises(ValueError, match="row titles"):
        attribution_grid([[("a", values)]], row_titles=["one", "two"])


def test_token_figure_one_bar_per_token_coloured_by_sign():
    tokens = ["the", "film", "was", "not", "the", "worst"]
    scores = np.array([0.01, 0.5, -0.02, -1.25, 0.0, 2e-5])
    fig = token_attribution_figure(tokens, scores, title="Integrated Gradients")
    (bars,) = fig.data
    assert bars.type == "bar"
    np.testing.assert_array_equal(np.asarray(bars.y), scores)
    assert list(bars.x) == ["the", "film", "was", "not", "the (5)", "worst"]  # the repeated word stays apart
    assert list(bars.marker.color) == [RED, RED, BLUE, BLUE, RED, RED]
    assert list(bars.text) == ["+0.01", "+0.5", "-0.02", "-1.25", "0", "+2e-05"]
    assert "red" in fig.layout.title.text and "blue" in fig.layout.title.text
    with pytest.raises(ValueError, match="one score per token"):
        token_attribution_figure(tokens, scores[:3])


def test_token_html_escapes_words_and_colours_by_sign_and_size():
    tokens = ["<b>", "great", "bad", '"quoted"', "$5"]
    scores = np.array([0.25, 1.0, -0.5, 0.0, -1.0])
    page = token_attribution_html(tokens, scores)
    chips = re.findall(r'<span class="gb-attribution".*?</span>', page)
    assert len(chips) == 5
    assert "<b>" not in page and "&lt;b&gt;" in chips[0] and "&quot;quoted&quot;" in chips[3]
    assert "<script" not in page and "$" not in page  # "$5" must not start a formula in Streamlit's markdown
    for chip, score in zip(chips, scores):
        assert format_score(score) in chip
        red, green, blue, alpha = re.search(r"background-color:rgba\((\d+), (\d+), (\d+), ([\d.]+)\)", chip).groups()
        expected = (220, 38, 38) if score >= 0 else (37, 99, 235)  # RED / BLUE as rgb
        assert (int(red), int(green), int(blue)) == expected
        assert float(alpha) == pytest.approx(abs(score) / 1.0, abs=1e-3)  # |score| / max|score|
    assert token_attribution_html([], np.array([])) == '<div style="line-height:2.2"></div>'
    with pytest.raises(ValueError, match="one score per token"):
        token_attribution_html(["a"], np.array([1.0, 2.0]))


# ---- page details: colour bars and titles (issue 16) -------------------------------------------

def test_every_tile_has_its_own_colour_bar_under_it():
    rng = np.random.default_rng(6)
    rows = [[(name, rng.normal(size=(1, 5, 5))) for name in ("Saliency", "Occlusion", "Grad-CAM")]] * 2
    fig = attribution_grid(rows, mode="signed", row_titles=["a", "b"])
    tiles = heatmaps(fig)
    assert len(tiles) == 6 and all(t.showscale for t in tiles)
    for index, tile in enumerate(tiles):
        suffix = "" if index == 0 else str(index + 1)
        x_domain = fig.layout[f"xaxis{suffix}"].domain
        y_domain = fig.layout[f"yaxis{suffix}"].domain
        bar = tile.colorbar
        assert bar.orientation == "h" and bar.x == pytest.approx(sum(x_domain) / 2)  # centred under its tile
        assert bar.y < y_domain[0] and bar.len <= x_domain[1] - x_domain[0]
        below = [fig.layout[f"yaxis{index + 4}"].domain] if index < 3 else []  # the tile under it, if any
        assert all(bar.y > domain[1] for domain in below)  # in the gap, not over the next row


@pytest.mark.parametrize("cols", [1, 3, 4, 7])
def test_titles_are_wrapped_to_their_column_and_never_lose_a_word(cols):
    from viz.attributions import title_width, wrapped_title

    title = "SmoothGrad · Guided Grad-CAM (conv.1.act)"
    wrapped = wrapped_title(title, cols)
    lines = wrapped.split("<br>")
    assert " ".join(lines) == title
    assert all(len(line) <= title_width(cols) for line in lines)
    assert title_width(cols) == max(12, 100 // cols)
    entries = [(name, np.ones((4, 4))) for name in ["Saliency", "Guided Grad-CAM (conv.1.act)", "x"][:cols]]
    entries += [(f"method {n}", np.ones((4, 4))) for n in range(cols - len(entries))]
    fig = attribution_grid([entries])
    texts = [a.text for a in fig.layout.annotations]
    assert texts == [wrapped_title(name, cols) for name, _ in entries]
    most_lines = max(text.count("<br>") + 1 for text in texts)
    assert fig.layout.margin.t >= 16 * most_lines  # room above the tiles for every line


def test_a_long_word_keeps_its_own_line_and_entities_count_as_one_character():
    from viz.attributions import wrapped_title

    assert wrapped_title("Grad-CAM (embed.stem.0.conv.very.long)", 7) == "Grad-CAM<br>(embed.stem.0.conv.very.long)"
    assert wrapped_title("a &lt;b&gt; c", 7) == "a &lt;b&gt; c"  # "a <b> c": 7 characters on screen


def test_word_cascade_rows_are_each_on_their_own_scale_and_hover_the_scores():
    from viz.sanity import similarity_curve_figure, word_cascade_figure

    trained, random = np.array([2.0, -4.0, 1.0]), np.array([0.001, 0.002, -0.0005])
    fig = word_cascade_figure(["the", "film", "the"], ["trained", "+ head"], [trained, random])
    (heat,) = fig.data
    np.testing.assert_allclose(np.asarray(heat.z), [trained / 4.0, random / 0.002])
    np.testing.assert_allclose(np.asarray(heat.customdata), [trained, random])
    assert list(heat.x) == ["the", "film", "the (3)"] and list(heat.y) == ["trained", "+ head"]
    assert (heat.zmin, heat.zmax) == (-1.0, 1.0) and heat.showscale is not False
    with pytest.raises(ValueError, match="one score per word"):
        word_cascade_figure(["a"], ["trained"], [trained])
    curve = similarity_curve_figure(["trained", "+ fc.1"], {"Saliency": [1.0, 0.3]}, {"Saliency": [1.0, np.nan]})
    assert [t.name for t in curve.data] == ["Saliency · Spearman", "Saliency · SSIM"]
    assert list(curve.data[1].y) == [1.0, None] and curve.data[1].line.dash == "dash"
    assert curve.data[0].line.color == curve.data[1].line.color
