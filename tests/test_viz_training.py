"""viz: figures carry exactly the data they were given, in the expected traces and shapes."""
import numpy as np
import pytest

from viz.activations import attention_heatmap, heatmap_grid, probability_bars
from viz.training import confusion_figure, confusion_matrix, curves_figure, image_grid_figure

RECORDS = [
    {"type": "train", "step": 1, "loss": 2.0, "acc": 0.1},
    {"type": "train", "step": 5, "loss": 1.0, "acc": 0.5},
    {"type": "val", "step": 5, "epoch": 1, "val_loss": 1.2, "val_acc": 0.4},
    {"type": "train", "step": 9, "loss": float("nan"), "acc": 0.6},  # a diverged record is not drawn
    {"type": "val", "step": 10, "epoch": 2, "val_loss": None, "val_acc": 0.3},
]


def test_curves_figure_one_run():
    fig = curves_figure({"run": RECORDS})
    train_loss, val_loss, train_acc, val_acc = fig.data
    assert list(train_loss.x) == [1, 5] and list(train_loss.y) == [2.0, 1.0]
    assert list(val_loss.x) == [5] and list(val_loss.y) == [1.2]
    assert list(train_acc.y) == [0.1, 0.5, 0.6]
    assert list(val_acc.x) == [5, 10] and list(val_acc.y) == [0.4, 0.3]
    assert train_loss.xaxis == "x" and train_acc.xaxis == "x2"


def test_curves_figure_overlays_runs_in_distinct_colours():
    fig = curves_figure({"a": RECORDS, "b": RECORDS[:2]})
    assert len(fig.data) == 8
    assert fig.data[0].line.color != fig.data[4].line.color
    assert fig.data[4].name == "b: train"


def test_confusion_matrix_counts_against_a_loop():
    rng = np.random.default_rng(0)
    true, predicted = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    expected = np.zeros((4, 4), dtype=int)
    for t, p in zip(true, predicted):
        expected[t, p] += 1
    matrix = confusion_matrix(true, predicted, 4)
    np.testing.assert_array_equal(matrix, expected)
    fig = confusion_figure(matrix, ["a", "b", "c", "d"])
    np.testing.assert_array_equal(np.asarray(fig.data[0].text), expected)
    np.testing.assert_allclose(np.asarray(fig.data[0].z).sum(axis=1), 1.0)


def test_image_grid_has_one_image_per_example_with_its_title():
    images = [np.random.rand(1, 8, 8) for _ in range(7)] + [np.random.rand(3, 8, 8)]
    fig = image_grid_figure(images, [f"predicted {i}" for i in range(8)], cols=3)
    assert len(fig.data) == 8 and all(trace.type == "image" for trace in fig.data)
    assert np.asarray(fig.data[0].z).shape == (8, 8, 3)
    assert [a.text for a in fig.layout.annotations][:2] == ["predicted 0", "predicted 1"]
    assert len(image_grid_figure([], []).data) == 0


def test_heatmap_grid_shared_and_per_map_scales():
    maps = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 3.0), np.arange(16.0).reshape(4, 4) - 8])
    fig = heatmap_grid(maps, titles=["a", "b", "c"], cols=2)
    assert len(fig.data) == 3
    np.testing.assert_array_equal(np.asarray(fig.data[2].z), maps[2])
    assert fig.data[0].zmin == -8 and fig.data[0].zmax == 8  # signed data: symmetric, shared
    fig = heatmap_grid(maps, shared_scale=False)
    assert (fig.data[1].zmin, fig.data[1].zmax) == (-3, 3)
    with pytest.raises(ValueError):
        heatmap_grid(np.zeros((4, 4)))


def test_attention_heatmap_labels_repeated_tokens_apart():
    pattern = np.full((3, 3), 1 / 3)
    fig = attention_heatmap(pattern, ["the", "film", "the"])
    assert list(fig.data[0].x) == ["the", "film", "the (3)"]
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), pattern)


def test_probability_bars_sorted_with_top_k():
    fig = probability_bars(np.array([0.1, 0.6, 0.3]), ["a", "b", "c"], top_k=2)
    assert list(fig.data[0].y) == ["b", "c"]
    np.testing.assert_allclose(fig.data[0].x, [0.6, 0.3])


def test_the_curves_cursor_sits_at_the_chosen_step_on_both_plots():
    records = [{"type": "train", "step": s, "loss": 1 / s, "acc": 0.5} for s in range(1, 30)]
    fig = curves_figure({"run": records}, cursor_step=17).to_plotly_json()
    lines = [s for s in fig["layout"]["shapes"] if s["type"] == "line"]
    assert sorted((s["xref"], s["x0"], s["x1"], s["yref"]) for s in lines) == [
        ("x", 17, 17, "y domain"), ("x2", 17, 17, "y2 domain")]  # from bottom to top of each plot
    labels = [a for a in fig["layout"]["annotations"] if a["text"].startswith("step")]
    assert [(a["text"], a["x"]) for a in labels] == [("step 17", 17)] * 2
    assert {a["xanchor"] for a in labels} == {"right"}  # past the middle: its words to the left of the line
    early = curves_figure({"run": records}, cursor_step=2).to_plotly_json()["layout"]["annotations"]
    assert {a["xanchor"] for a in early if a["text"].startswith("step")} == {"left"}
    assert not curves_figure({"run": records}).to_plotly_json()["layout"].get("shapes")

