"""explain.dataset_map and viz.dataset_map: the features are what the classifier head reads, the
map is their PCA as scikit-learn computes it (numpy's SVD by hand when it is not installed), and
the figure marks exactly the mistakes and carries each point's row for a click."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explain.dataset_map import MAX_POINTS, dataset_map, features_and_predictions, spread_rows
from models import build_model, presets
from tests.trained_models import dataset_of, trained
from training.data import fit_spec_to_dataset
from viz.dataset_map import dataset_map_figure


def untrained(preset: str):
    """The preset fitted to its data (vocabulary, classes) but not trained: enough for the maths."""
    return build_model(fit_spec_to_dataset(presets.get(preset), dataset_of(preset)), seed=0)


def reference_pca(features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(coordinates, explained variance ratio) of the first k components, by scikit-learn, or by
    numpy's SVD of the centred features when scikit-learn is not installed."""
    try:
        from sklearn.decomposition import PCA
    except ImportError:
        centred = features - features.mean(axis=0)
        u, s, vt = np.linalg.svd(centred, full_matrices=False)
        return centred @ vt[:k].T, (s ** 2 / (s ** 2).sum())[:k]
    pca = PCA(n_components=k, svd_solver="full").fit(features)
    return pca.transform(features), pca.explained_variance_ratio_


def same_up_to_sign(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Each principal axis is defined up to its sign: compare column by column after aligning it."""
    for k in range(ours.shape[1]):
        sign = np.sign(np.dot(ours[:, k], theirs[:, k])) or 1.0
        np.testing.assert_allclose(ours[:, k], sign * theirs[:, k], rtol=1e-4, atol=1e-4 * np.abs(theirs).max())


@pytest.mark.parametrize("preset, dims", [("digits-cnn", 2), ("sentiment-lstm", 3), ("sentiment-transformer", 2)])
def test_the_map_is_the_pca_of_the_features_the_classifier_reads(preset, dims):
    model = trained(preset) if preset == "digits-cnn" else untrained(preset)
    data = dataset_of(preset)
    found = dataset_map(model, data.x_val, data.y_val, dims=dims, batch_size=100)
    hook = {"digits-cnn": "fc.0.act", "sentiment-lstm": "rnn.final", "sentiment-transformer": "pooled"}[preset]
    assert found.hook == hook
    with torch.no_grad():  # every example in one pass, features read straight from the hook
        logits, cache = model.run_with_cache(data.x_val, names=[hook])
    features = cache[hook].reshape(len(data.x_val), -1).double().numpy()
    assert found.feature_size == features.shape[1]
    np.testing.assert_array_equal(found.indices, np.arange(len(data.x_val)))
    np.testing.assert_array_equal(found.true, data.y_val.numpy())
    np.testing.assert_array_equal(found.predicted, logits.argmax(dim=-1).numpy())
    np.testing.assert_array_equal(found.misclassified, found.predicted != found.true)
    coords, ratio = reference_pca(features, dims)
    assert found.coords.shape == (len(data.x_val), dims)
    same_up_to_sign(found.coords, coords)
    np.testing.assert_allclose(found.explained_variance_ratio, ratio, rtol=1e-4, atol=1e-7)


def test_a_trained_cnn_gets_most_of_its_validation_data_right_on_the_map():
    model, data = trained("digits-cnn"), dataset_of("digits-cnn")
    found = dataset_map(model, data.x_val, data.y_val)
    assert found.accuracy == pytest.approx(float((model(data.x_val).argmax(-1) == data.y_val).float().mean()))
    assert found.accuracy > 0.6


def test_a_large_data_set_is_read_evenly_spread_up_to_the_limit():
    np.testing.assert_array_equal(spread_rows(5, most=10), np.arange(5))
    rows = spread_rows(25_000)
    assert len(rows) == MAX_POINTS and rows[0] == 0 and rows[-1] == 24_999 and np.all(np.diff(rows) > 0)
    model = untrained("digits-cnn")
    x, y = torch.randn(30, 1, 16, 16), torch.arange(30) % 10
    found = dataset_map(model, x, y, most=7)
    np.testing.assert_array_equal(found.indices, spread_rows(30, most=7))
    np.testing.assert_array_equal(found.true, y.numpy()[found.indices])
    features, _ = features_and_predictions(model, x[torch.as_tensor(found.indices)])
    same_up_to_sign(found.coords, reference_pca(features.astype(np.float64), 2)[0])


def test_what_cannot_be_mapped_is_refused_in_words():
    model = untrained("digits-cnn")
    x = torch.randn(4, 1, 16, 16)
    with pytest.raises(ValueError, match="2 or 3 axes"):
        dataset_map(model, x, torch.zeros(4, dtype=torch.int64), dims=4)
    with pytest.raises(ValueError, match="4 examples but 3 classes"):
        dataset_map(model, x, torch.zeros(3, dtype=torch.int64))


# ---- the figure ---------------------------------------------------------------------------------------
def test_the_figure_colours_by_class_marks_mistakes_and_carries_each_row():
    coords = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    true, predicted, rows = np.array([0, 1, 1, 0]), np.array([0, 0, 1, 0]), np.array([10, 11, 12, 13])
    fig = dataset_map_figure(coords, true, predicted, rows, ["<b>cat</b>", "dog"], explained=np.array([0.5, 0.25]))
    points = [trace for trace in fig.data if trace.x[0] is not None]
    assert [trace.type for trace in fig.data] == ["scattergl"] * 3  # two classes and the crosses' legend entry
    assert [trace.name for trace in points] == ["&lt;b&gt;cat&lt;/b&gt;", "dog"]
    by_row = {int(c): (trace.marker.symbol[i], trace.hovertext[i]) for trace in points
              for i, c in enumerate(trace.customdata)}
    assert isinstance(fig.to_plotly_json()["data"][0]["customdata"], list)  # a click hands back the number itself
    assert {row: symbol for row, (symbol, _) in by_row.items()} == {10: "circle", 11: "x", 12: "circle", 13: "circle"}
    assert by_row[11][1] == "example 12<br>true: dog<br>predicted: &lt;b&gt;cat&lt;/b&gt; (wrong)"
    assert fig.layout.xaxis.title.text == "direction 1 (50% of the variance)"
    assert "1 of 4" in fig.data[-1].name


def test_a_3d_map_of_sentences_shows_each_sentence_escaped():
    coords = np.arange(9, dtype=float).reshape(3, 3)
    fig = dataset_map_figure(coords, np.array([0, 0, 1]), np.array([0, 1, 1]), np.array([0, 1, 2]), ["neg", "pos"],
                             examples=["a <i>b</i> 100%", "x", "y"])
    assert {trace.type for trace in fig.data} == {"scatter3d"}
    assert fig.data[0].hovertext[0].startswith("“a &lt;i&gt;b&lt;/i&gt; 100&#37;”")
    assert list(fig.data[0].z) == [2.0, 5.0]
    assert list(fig.data[0].marker.symbol) == ["circle", "cross"]  # 3-D has no glyph-free "x"
