"""Each token's path through a transformer's blocks: the residual stream after every block.

A transformer keeps one vector per token and every block adds to it. Following one token's
vector from the embedding through block 1, 2, ... shows where its meaning changes; PCA
(``explain.rnn.fit_pca``) fitted on every token at every depth draws all the paths in one plane.
"""
from __future__ import annotations

import numpy as np

from .rnn import PCA, fit_pca


def residual_stream(activations: dict[str, np.ndarray], num_layers: int) -> np.ndarray:
    """(L + 1, T, D): ``embed.out`` then ``blocks.{i}.out`` for each block, batch dim removed."""
    names = ["embed.out"] + [f"blocks.{i}.out" for i in range(num_layers)]
    missing = [name for name in names if name not in activations]
    if missing:
        raise ValueError(f"these activations are missing: {', '.join(missing)}")
    return np.stack([np.asarray(activations[name], dtype=np.float64) for name in names])  # (L+1, T, D)


def token_paths(stream: np.ndarray, labels: list[str], k: int = 3) -> tuple[list[dict], PCA]:
    """One path per token through the depths, projected with a PCA fitted on every (depth, token).

    Returns the paths as ``viz.rnn.trajectory_figure`` takes them ({"label", "points" (L+1, k),
    "tokens": the depth names}) and the PCA."""
    depths, tokens, width = stream.shape
    if tokens != len(labels):
        raise ValueError(f"{len(labels)} labels for {tokens} tokens")
    pca = fit_pca(stream.reshape(depths * tokens, width), k=k)  # (L+1, T, D) -> (L+1 * T, D)
    depth_names = ["embedding"] + [f"block {i}" for i in range(1, depths)]
    paths = [{"label": label, "points": pca.transform(stream[:, t]), "tokens": depth_names}
             for t, label in enumerate(labels)]
    return paths, pca
