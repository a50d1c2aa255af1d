"""The sanity check of Adebayo et al. (2018): the same methods on the model with its weights
drawn afresh. A map that shows what the model learned changes; an edge detector's does not."""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from explain.model_guard import device_of

RANDOMIZE_SEED_OFFSET = 1_000_003  # a prime far from the small seeds models are built with


def randomized_copy(model, seed: int = 0):
    """The same architecture with every weight drawn afresh (each layer's own initialisation;
    stray parameters such as positions or the CLS vector from N(0, 0.02²)); ``.spec`` and
    ``.meta`` copied, eval mode. The caller's random stream is left untouched."""
    device = device_of(model)
    clone = copy.deepcopy(model).cpu()  # drawn on the CPU so a seed gives the same weights on any device
    with torch.random.fork_rng(devices=[]):
        # Offset, so that randomized_copy(seed=0) of a model built with seed 0 is not that model again.
        torch.manual_seed(RANDOMIZE_SEED_OFFSET + seed)
        for module in clone.modules():
            if callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
            else:
                for parameter in module.parameters(recurse=False):
                    nn.init.normal_(parameter, std=0.02)
    return clone.to(device).eval()


def map_similarity(trained, randomised) -> float:
    """Spearman rank correlation of |map| between two attributions of the same input, each
    (C, H, W) or (H, W) (channels summed first, as the maps are drawn), or (T,) for a sentence.
    NaN when either map is flat (all its values equal): a flat map ranks nothing."""
    first, second = (_absolute(values) for values in (trained, randomised))
    if first.shape != second.shape:
        raise ValueError(f"the two maps must cover the same input: shapes {first.shape} and {second.shape}")
    first, second = _ranks(first), _ranks(second)
    first, second = first - first.mean(), second - second.mean()
    spread = float(np.sqrt((first ** 2).sum() * (second ** 2).sum()))
    return float((first * second).sum() / spread) if spread > 0 else float("nan")


def _absolute(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 3:
        values = values.sum(axis=0)  # (C, H, W) -> (H, W)
    return np.abs(values).ravel()


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks (as Spearman's coefficient needs)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    _, groups, counts = np.unique(values, return_inverse=True, return_counts=True)
    totals = np.bincount(groups, weights=ranks)
    return totals[groups] / counts[groups]
