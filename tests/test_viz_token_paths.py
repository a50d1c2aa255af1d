"""viz.token_paths: each token's path through the blocks is drawn where the PCA puts it, in its own
colour, with one label at its end; no two labels overlap, even when every path ends in one spot."""
import numpy as np
import pytest

from explain.layers import residual_stream, token_paths
from viz.token_paths import (ASSUMED_PLOT_WIDTH, CHARACTER_WIDTH, LABEL_HEIGHT, MARGIN, path_style,
                             token_paths_figure)

DEPTHS = ["embedding"] + [f"block {i}" for i in range(1, 7)]
RNG = np.random.default_rng(0)


def paths_ending(ends: np.ndarray, labels: list[str]) -> list[dict]:
    """One 7-point path per label, from a random start to the given end."""
    return [{"label": label, "points": np.vstack([RNG.normal(size=(6, 3)), [[*end, 0.0]]]), "tokens": DEPTHS}
            for label, end in zip(labels, ends)]


def label_boxes(fig) -> list[tuple[float, float, float, float]]:
    """Each label's box in pixels, worked out from the layout as Plotly places an annotation: its
    point on the axes' ranges, moved by (ax, ay), the text centred there."""
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    height = fig.layout.height - MARGIN["t"] - MARGIN["b"]
    boxes = []
    for note in fig.layout.annotations:
        x = (note.x - x0) / (x1 - x0) * ASSUMED_PLOT_WIDTH + note.ax
        y = (y1 - note.y) / (y1 - y0) * height + note.ay
        half_width = (CHARACTER_WIDTH * len(note.text) + 6) / 2
        boxes.append((x - half_width, y - LABEL_HEIGHT / 2, x + half_width, y + LABEL_HEIGHT / 2))
    return boxes


def overlapping(boxes) -> list[tuple[int, int]]:
    return [(a, b) for a in range(len(boxes)) for b in range(a + 1, len(boxes))
            if boxes[a][0] < boxes[b][2] and boxes[b][0] < boxes[a][2] and boxes[a][1] < boxes[b][3]
            and boxes[b][1] < boxes[a][3]]


def test_twenty_tokens_have_twenty_colours_and_their_own_points():
    labels = [f"word{i}" for i in range(20)] + ["the", "the"]
    paths = paths_ending(RNG.normal(size=(22, 2)), labels)
    fig = token_paths_figure(paths, axis_titles=["PC1 (14%)", "PC2 (12%)"])
    assert len(fig.data) == 22
    assert len({trace.line.color for trace in fig.data[:20]}) == 20
    assert {trace.line.dash for trace in fig.data[:20]} == {"solid"}
    assert (fig.data[20].line.color, fig.data[20].line.dash) == (fig.data[0].line.color, "dot")  # still told apart
    for trace, path in zip(fig.data, paths):
        np.testing.assert_array_equal(trace.x, path["points"][:, 0])
        np.testing.assert_array_equal(trace.y, path["points"][:, 1])
        assert list(trace.text) == DEPTHS and trace.marker.symbol[0] == "diamond"
    assert [t.name for t in fig.data][-2:] == ["the", "the (22)"]  # repeated words kept apart, counted from 1
    assert [note.text for note in fig.layout.annotations] == [t.name for t in fig.data]  # one label per token
    for note, trace in zip(fig.layout.annotations, fig.data):  # at the end of its own path, in its colour
        assert (note.x, note.y) == (trace.x[-1], trace.y[-1]) and note.font.color == trace.line.color
    assert fig.layout.xaxis.title.text == "PC1 (14&#37;)"  # drawn as "%", never read as a template field


@pytest.mark.parametrize("spread", [0.0, 0.05, 1.0])
def test_labels_never_overlap_even_when_every_path_ends_in_one_spot(spread):
    labels = ["[CLS]", "the", "students", "at", "the", "back", "could", "not", "hear", "the", "teacher", "[SEP]"]
    ends = RNG.normal(size=(12, 2)) * spread
    fig = token_paths_figure(paths_ending(ends, labels))
    assert overlapping(label_boxes(fig)) == []


def test_a_real_models_paths_are_drawn_as_the_pca_projects_them():
    stream = RNG.normal(size=(4, 5, 16))  # (L + 1, T, D)
    activations = {"embed.out": stream[0], **{f"blocks.{i}.out": stream[i + 1] for i in range(3)}}
    paths, pca = token_paths(residual_stream(activations, 3), ["[CLS]", "a", "b", "c", "d"])
    fig = token_paths_figure(paths)
    flat = stream.reshape(-1, 16) - stream.reshape(-1, 16).mean(axis=0)
    first = np.linalg.svd(flat, full_matrices=False)[2][0]  # the first principal direction, by SVD
    first = first * np.sign(first[np.argmax(np.abs(first))])  # the sign explain.rnn.PCA uses
    centred = stream[:, 2] - stream.reshape(-1, 16).mean(axis=0)  # token "b" at every depth
    np.testing.assert_allclose(fig.data[2].x, centred @ first, atol=1e-9)
    assert path_style(2) == (fig.data[2].line.color, "solid")
    with pytest.raises(ValueError, match="no tokens"):
        token_paths_figure([])
