"""explain.layers: the residual stream is the cached block outputs, and each token's path is
that stream projected with the PCA fitted on it (references: the cache and numpy)."""
import numpy as np
import pytest

from explain.attention import inspect_attention
from explain.layers import residual_stream, token_paths
from models import build_model, presets


def test_token_paths_are_the_cached_block_outputs_projected():
    model = build_model(presets.get("sentiment-transformer"), seed=0)
    ids = np.array([5, 9, 12, 7])
    inspection = inspect_attention(model, __import__("torch").tensor(ids))
    stream = residual_stream(inspection.activations, model.spec.transformer.num_layers)
    assert stream.shape == (3, 5, 64)  # embedding + 2 blocks, [CLS] + 4 words, d_model
    np.testing.assert_allclose(stream[2], inspection.activations["blocks.1.out"], rtol=1e-6)
    paths, pca = token_paths(stream, inspection.labels)
    assert [p["label"] for p in paths] == inspection.labels
    for t, path in enumerate(paths):
        np.testing.assert_allclose(path["points"], (stream[:, t] - pca.mean) @ pca.components.T, rtol=1e-6, atol=1e-9)
        assert path["tokens"] == ["embedding", "block 1", "block 2"]
    centred = stream.reshape(-1, 64) - stream.reshape(-1, 64).mean(axis=0)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(centred.T)))[::-1]
    np.testing.assert_allclose(pca.explained_variance_ratio, eigenvalues[:3] / eigenvalues.sum(), rtol=1e-6)


def test_missing_activations_and_mismatched_labels_are_refused():
    with pytest.raises(ValueError, match="blocks.1.out"):
        residual_stream({"embed.out": np.zeros((2, 4)), "blocks.0.out": np.zeros((2, 4))}, 2)
    with pytest.raises(ValueError, match="3 labels for 2 tokens"):
        token_paths(np.zeros((2, 2, 4)), ["a", "b", "c"])
