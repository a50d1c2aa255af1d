"""The sanity checks of Adebayo et al. (2018), "Sanity checks for saliency maps": the same methods
on the model with its weights drawn afresh, all at once (``randomized_copy``) or layer by layer
from the output back to the input (``explain.attributions.cascade``). A map that shows what the
model learned changes; an edge detector's does not.

How alike two maps are is measured as in the paper: the Spearman rank correlation of their
absolute values (``map_similarity``) and, for pictures, the structural similarity (SSIM) of the
absolute maps scaled to [0, 1] (``map_ssim``). SSIM is computed here by hand, exactly as
scikit-image's ``structural_similarity`` computes it with its defaults (a 7×7 uniform window,
sample covariances, K1 = 0.01, K2 = 0.03, the mean over the windows that fit inside the map):
scikit-image is not a dependency of Glassbox, and the tests compare with its numbers.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from scipy.ndimage import uniform_filter
from torch import nn

from explain.model_guard import device_of
from models.hooks import turn_of

RANDOMIZE_SEED_OFFSET = 1_000_003  # a prime far from the small seeds models are built with
SSIM_WINDOW = 7  # scikit-image's default window side
SSIM_K1, SSIM_K2 = 0.01, 0.03  # the constants of Wang et al. (2004), scikit-image's defaults
SMALLEST_SSIM_WINDOW = 3  # a narrower map has no window with a sample variance worth the name


def randomized_copy(model, seed: int = 0):
    """The same architecture with every weight drawn afresh (each layer's own initialisation;
    stray parameters such as positions or the CLS vector from N(0, 0.02²)); ``.spec`` and
    ``.meta`` copied, eval mode. The caller's random stream is left untouched."""
    device = device_of(model)
    with turn_of(model):  # not while another session's call has its hooks on the shared model
        clone = copy.deepcopy(model)
    clone = clone.cpu()  # drawn on the CPU so a seed gives the same weights on any device
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


def redraw_own_parameters(module: nn.Module) -> None:
    """Draw ``module``'s own parameters (not its children's) afresh, from the global random
    stream: by the module's own initialisation where it has one, else from N(0, 0.02²).

    The initialisation runs on a scratch copy and only the module's own parameters are copied
    back, so a ``reset_parameters`` that also resets children or running statistics touches
    nothing else (the cascading check must re-draw exactly the layers it names)."""
    own = dict(module.named_parameters(recurse=False))
    if not own:
        return
    if callable(getattr(module, "reset_parameters", None)):
        scratch = copy.deepcopy(module)
        scratch.reset_parameters()
        drawn = dict(scratch.named_parameters(recurse=False))
        with torch.no_grad():
            for name, parameter in own.items():
                parameter.copy_(drawn[name])
        return
    for parameter in own.values():
        nn.init.normal_(parameter, std=0.02)


def map_similarity(trained, randomised) -> float:
    """Spearman rank correlation of |map| between two attributions of the same input, each
    (C, H, W) or (H, W) (channels summed first, as the maps are drawn), or (T,) for a sentence.
    NaN when either map is flat (all its values equal): a flat map ranks nothing."""
    first, second = (_absolute(values).ravel() for values in (trained, randomised))
    if first.shape != second.shape:
        raise ValueError(f"the two maps must cover the same input: shapes {first.shape} and {second.shape}")
    first, second = _ranks(first), _ranks(second)
    first, second = first - first.mean(), second - second.mean()
    spread = float(np.sqrt((first ** 2).sum() * (second ** 2).sum()))
    return float((first * second).sum() / spread) if spread > 0 else float("nan")


def map_ssim(trained, randomised) -> float:
    """SSIM of two pictures' attributions, each (C, H, W) or (H, W): channels summed, absolute
    values, each map divided by its largest value (so both lie in [0, 1], data range 1), then
    scikit-image's mean SSIM. 1: the same structure; near 0: none in common.

    NaN when either map is flat (nothing to compare the structure of) or narrower than 3 pixels
    (no window fits); maps narrower than 7 pixels use the widest odd window that fits."""
    first, second = (_absolute(values) for values in (trained, randomised))
    if first.ndim != 2 or second.ndim != 2:
        raise ValueError("SSIM compares pictures' maps, (C, H, W) or (H, W); a sentence's has no structure in 2-D")
    if first.shape != second.shape:
        raise ValueError(f"the two maps must cover the same input: shapes {first.shape} and {second.shape}")
    window = min(SSIM_WINDOW, *first.shape)
    window -= 1 - window % 2  # odd, so each window has a centre pixel
    if window < SMALLEST_SSIM_WINDOW or _flat(first) or _flat(second):
        return float("nan")
    return structural_similarity(first / first.max(), second / second.max(), data_range=1.0, window=window)


def structural_similarity(first: np.ndarray, second: np.ndarray, data_range: float, window: int = SSIM_WINDOW) -> float:
    """Mean SSIM of two (H, W) arrays (Wang et al., 2004), as ``skimage.metrics.structural_similarity``
    computes it by default: local means, sample variances and covariance over a ``window``×``window``
    uniform window, averaged over the windows that lie wholly inside the arrays."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    count = window * window
    sample = count / (count - 1)  # sample (not population) variances, as scikit-image's default
    mean_1, mean_2 = uniform_filter(first, window), uniform_filter(second, window)
    variance_1 = sample * (uniform_filter(first * first, window) - mean_1 * mean_1)
    variance_2 = sample * (uniform_filter(second * second, window) - mean_2 * mean_2)
    covariance = sample * (uniform_filter(first * second, window) - mean_1 * mean_2)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim = ((2 * mean_1 * mean_2 + c1) * (2 * covariance + c2)
            / ((mean_1 ** 2 + mean_2 ** 2 + c1) * (variance_1 + variance_2 + c2)))  # (H, W)
    edge = (window - 1) // 2  # windows centred nearer the border reach outside the arrays
    return float(ssim[edge:ssim.shape[0] - edge, edge:ssim.shape[1] - edge].mean())


def _absolute(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 3:
        values = values.sum(axis=0)  # (C, H, W) -> (H, W)
    return np.abs(values)


def _flat(values: np.ndarray) -> bool:
    return bool(values.size == 0 or values.max() == values.min())


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks (as Spearman's coefficient needs)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    _, groups, counts = np.unique(values, return_inverse=True, return_counts=True)
    totals = np.bincount(groups, weights=ranks)
    return totals[groups] / counts[groups]
