"""The whole validation set at once: what the classifier reads of every example, in 2-D or 3-D.

``dataset_map`` runs the validation data through the model in batches, reads the vector its
classifier head reads (``model.features_hook()``: a CNN's penultimate features, a Transformer's
class token or pooled vector, an RNN's last hidden state), and projects those vectors on their
first two or three principal components (``explain.rnn.fit_pca``, an SVD of the centred
features). With them come each example's true class, the model's prediction and whether it is
wrong, so a map shows which classes the model keeps apart and where its mistakes sit.

At most ``MAX_POINTS`` examples are read, spread evenly over the data, so a large data set
stays a responsive picture; ``indices`` says which rows they are. Nothing here draws.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .model_guard import model_left_as_found
from .rnn import fit_pca

MAX_POINTS = 10_000  # a WebGL scatter of this many points still pans and hovers smoothly
BATCH = 256


@dataclass
class DatasetMap:
    """Every example read, as a point."""

    coords: np.ndarray  # (N, k) coordinates along the first k principal components
    indices: np.ndarray  # (N,) 0-based rows of the data the points are
    true: np.ndarray  # (N,) int true class
    predicted: np.ndarray  # (N,) int the model's class
    explained_variance_ratio: np.ndarray  # (k,) share of the features' variance along each axis
    hook: str  # where the features were read
    feature_size: int  # D: the length of one feature vector

    @property
    def misclassified(self) -> np.ndarray:
        """(N,) True where the model's class is not the true one."""
        return self.predicted != self.true

    @property
    def accuracy(self) -> float:
        return float(np.mean(~self.misclassified)) if len(self.true) else 0.0


def spread_rows(count: int, most: int = MAX_POINTS) -> np.ndarray:
    """0-based rows to read: all of them, or ``most`` spread evenly from the first to the last
    (the data's order may group classes; the first ``most`` could miss some)."""
    if count <= most:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, most).round().astype(np.int64))


@torch.no_grad()
def features_and_predictions(model, x: torch.Tensor, batch_size: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    """((N, D) the features the classifier reads, flattened; (N,) the predicted class) of every
    row of ``x``, in batches."""
    hook = model.features_hook()
    if hook is None:
        raise ValueError("this model does not say which of its layers its classifier reads, so its data "
                         "cannot be mapped")
    if model.spec.num_classes < 1:
        raise ValueError("this model has no classifier: there is no prediction to map")
    features, predicted = [], []
    with model_left_as_found(model) as device:
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size].to(device)
            logits, cache = model.run_with_cache(batch, names=[hook])
            features.append(cache[hook].float().reshape(len(batch), -1).numpy())  # (B, ...) -> (B, D)
            predicted.append(logits.argmax(dim=-1).cpu().numpy())
    return np.concatenate(features), np.concatenate(predicted)


def dataset_map(model, x: torch.Tensor, y: torch.Tensor, dims: int = 2, most: int = MAX_POINTS,
                batch_size: int = BATCH) -> DatasetMap:
    """The map of ``x`` (the validation data) with true classes ``y``, in ``dims`` (2 or 3) axes."""
    if dims not in (2, 3):
        raise ValueError(f"a map has 2 or 3 axes, not {dims}")
    if len(x) != len(y):
        raise ValueError(f"{len(x):,} examples but {len(y):,} classes")
    if len(x) < 2:
        raise ValueError("at least two examples are needed to map")
    rows = spread_rows(len(x), most)
    picked = torch.as_tensor(rows)
    features, predicted = features_and_predictions(model, x[picked], batch_size)
    pca = fit_pca(features, k=dims)
    coords = pca.transform(features)
    if coords.shape[1] < dims:  # fewer features than axes (a 1-number feature): the rest stay at 0
        coords = np.pad(coords, ((0, 0), (0, dims - coords.shape[1])))
    ratio = np.pad(pca.explained_variance_ratio, (0, dims - len(pca.explained_variance_ratio)))
    return DatasetMap(coords=coords, indices=rows, true=np.asarray(y)[rows].astype(np.int64),
                      predicted=predicted.astype(np.int64), explained_variance_ratio=ratio,
                      hook=model.features_hook(), feature_size=features.shape[1])
