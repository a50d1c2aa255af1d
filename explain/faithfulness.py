"""How faithful an attribution map is to the model, on one input: does removing what it ranks
first hurt the class, and does revealing it first bring the class back?

- ``deletion_curve`` and ``insertion_curve`` (Petsiuk et al., RISE, 2018): the units of the input
  (pixels, square patches of pixels, or words) are ranked by the map, most important first, and
  removed (deletion: set to the baseline) or revealed (insertion: copied from the input onto the
  baseline) in equal steps; the curve is the class's probability after each step, and its area
  (trapezoid rule over the fraction 0..1) sums it up: low is good for deletion, high for
  insertion. ``random_ranking`` gives the seeded random map whose curves are the reference.
- ``eraser_scores`` (sentences; DeYoung et al., ERASER, 2020): comprehensiveness, how much the
  probability drops when the top k% words are removed, and sufficiency, how much it drops when
  only they are kept, each averaged over k in 1, 5, 10, 20, 50%.
- ``explain.faithfulness_captum``: infidelity and max-sensitivity from ``captum.metrics``.

Pictures are changed onto the baseline the Attributions page explains against
(``explain.attributions.image_baseline``: black in the model's normalisation), every channel of
a pixel at once; words are replaced by the pad id, as the word-occlusion method does (the
sentence keeps its length). Every step's input is built at once and the model reads them in
batches of ``batch_size``: one forward pass per batch, never one per step.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from explain.attributions import image_baseline
from explain.model_guard import model_left_as_found
from explain.tokens import pad_id_of

DEFAULT_STEPS = 20  # points on a curve after the start: every 5% of the units
BATCH_SIZE = 32  # perturbed inputs per forward pass (bounds memory on a large picture model)
ERASER_BINS = (0.01, 0.05, 0.10, 0.20, 0.50)  # the shares of words of DeYoung et al. (2020), Table 4
RANDOM_SEED = 0

Progress = Callable[[int, int], None]  # (inputs done, inputs in all)


@dataclass(frozen=True)
class Curve:
    """One deletion or insertion curve."""
    kind: str  # "deletion" or "insertion"
    fractions: np.ndarray  # (steps + 1,) share of the units removed (deletion) or revealed (insertion), 0 to 1
    probabilities: np.ndarray  # (steps + 1,) the class's probability after each step
    units: int  # how many pixels, patches or words were ranked

    @property
    def auc(self) -> float:
        """Area under the curve over the fraction 0..1 (trapezoid rule)."""
        return float(np.trapezoid(self.probabilities, self.fractions))


@dataclass(frozen=True)
class EraserScores:
    """ERASER's comprehensiveness and sufficiency of one word ranking, per share and averaged."""
    bins: tuple  # shares of the words taken as the rationale (0.01 = the top 1%)
    words: tuple  # words in the rationale for each share: ceil(share × length), at least one
    full: float  # the class's probability on the whole sentence
    comprehensiveness_per_bin: np.ndarray  # full − p(sentence without the rationale), one per share
    sufficiency_per_bin: np.ndarray  # full − p(the rationale alone), one per share

    @property
    def comprehensiveness(self) -> float:
        """Higher is better: taking the top words away hurts the class."""
        return float(np.mean(self.comprehensiveness_per_bin))

    @property
    def sufficiency(self) -> float:
        """Lower is better: the top words alone keep the class (negative: even more so)."""
        return float(np.mean(self.sufficiency_per_bin))


def deletion_curve(model, x: torch.Tensor, target: int, values, steps: int = DEFAULT_STEPS, baseline=None,
                   patch: int = 1, batch_size: int = BATCH_SIZE, progress: Progress | None = None) -> Curve:
    """The class's probability as the units ``values`` ranks highest are set to the baseline first.

    ``x``: a (C, H, W) picture or (T,) token ids (no trailing padding); ``values``: the map,
    (C, H, W) or (1, H, W) for a picture (summed over channels per pixel, averaged per patch of
    ``patch``×``patch`` pixels), (T,) for a sentence. ``baseline``: a picture shaped like ``x``
    (default ``image_baseline`` in the model's normalisation) or a pad id (default the model's)."""
    return _curve("deletion", model, x, target, values, steps, baseline, patch, batch_size, progress)


def insertion_curve(model, x: torch.Tensor, target: int, values, steps: int = DEFAULT_STEPS, baseline=None,
                    patch: int = 1, batch_size: int = BATCH_SIZE, progress: Progress | None = None) -> Curve:
    """The class's probability as the units ``values`` ranks highest are copied onto the baseline
    first (the arguments as for ``deletion_curve``)."""
    return _curve("insertion", model, x, target, values, steps, baseline, patch, batch_size, progress)


def random_ranking(x: torch.Tensor, seed: int = RANDOM_SEED) -> np.ndarray:
    """A map that ranks the units in a random order drawn from ``seed``: (1, H, W) for a picture,
    (T,) for a sentence; its curves are the reference a method must beat."""
    generator = np.random.default_rng(seed)
    shape = (1, *x.shape[1:]) if _is_picture(x) else tuple(x.shape)
    return generator.random(shape)


def eraser_scores(model, ids: torch.Tensor, target: int, values, bins=ERASER_BINS, pad_id: int | None = None
                  ) -> EraserScores:
    """Comprehensiveness and sufficiency of the word ranking ``values`` (T,) for token ids ``ids``
    (T,), removed words replaced by ``pad_id`` (default the model's). All the sentences go in one
    batch."""
    if _is_picture(ids):
        raise ValueError("comprehensiveness and sufficiency are measured on sentences, not pictures")
    pad = pad_id_of(model) if pad_id is None else int(pad_id)
    scores = _unit_scores(ids, values, 1)[0]
    length = len(scores)
    rank = _ranks(scores)
    words = tuple(min(length, max(1, math.ceil(share * length))) for share in bins)
    kept = torch.as_tensor(np.stack([rank < k for k in words]))  # (bins, T): the rationale of each share
    ids = ids.reshape(-1)
    padding = torch.full_like(ids, pad)
    without = torch.where(kept.to(ids.device), padding, ids)  # (bins, T)
    alone = torch.where(kept.to(ids.device), ids, padding)  # (bins, T)
    probabilities = _probabilities(model, torch.cat([ids.unsqueeze(0), without, alone]), target, BATCH_SIZE, None)
    full = probabilities[0]
    n = len(bins)
    return EraserScores(tuple(bins), words, float(full), full - probabilities[1:1 + n], full - probabilities[1 + n:])


# ---- the curves ----------------------------------------------------------------------------------

def _curve(kind, model, x, target, values, steps, baseline, patch, batch_size, progress) -> Curve:
    if steps < 1:
        raise ValueError(f"a curve needs at least 1 step, not {steps}")
    if patch < 1:
        raise ValueError(f"a patch is at least 1 pixel wide, not {patch}")
    x = torch.as_tensor(x)
    scores, unit_of = _unit_scores(x, values, patch)
    units = len(scores)
    rank = torch.as_tensor(_ranks(scores))  # rank[u]: 0 for the most important unit
    counts = torch.round(torch.arange(steps + 1, dtype=torch.float64) * units / steps).long()  # (S+1,) units changed
    changed = rank.unsqueeze(0) < counts.unsqueeze(1)  # (S+1, U)
    changed = changed[:, torch.as_tensor(unit_of)]  # (S+1, H, W) for a picture, (S+1, T) for a sentence
    reference = _baseline_of(model, x, baseline)
    if _is_picture(x):
        changed = changed.unsqueeze(1)  # (S+1, 1, H, W): every channel of a pixel at once
    changed = changed.to(x.device)
    start, end = (x, reference) if kind == "deletion" else (reference, x)
    inputs = torch.where(changed, end.unsqueeze(0), start.unsqueeze(0))  # (S+1, *x.shape)
    probabilities = _probabilities(model, inputs, target, batch_size, progress)
    return Curve(kind, (counts.double() / units).numpy(), probabilities, units)


def _is_picture(x) -> bool:
    return torch.as_tensor(x).dtype.is_floating_point


def _baseline_of(model, x: torch.Tensor, baseline) -> torch.Tensor:
    if _is_picture(x):
        if baseline is None:
            baseline = image_baseline(x, model.meta.normalization)
        baseline = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
        if baseline.shape != x.shape:
            raise ValueError(f"the baseline has shape {tuple(baseline.shape)}, the picture {tuple(x.shape)}: "
                             "they must match")
        return baseline
    pad = pad_id_of(model) if baseline is None else int(baseline)
    return torch.full_like(x, pad)


def _unit_scores(x: torch.Tensor, values, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores (U,), unit of each pixel (H, W) or word (T,)): a picture's map summed over its
    channels, then averaged per patch (edge patches over the pixels they have)."""
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("the map contains NaN or infinite values, so it ranks nothing; try another method or "
                         "fewer steps")
    if not _is_picture(x):
        if values.shape != tuple(x.shape):
            raise ValueError(f"the map has shape {values.shape}; a sentence of {len(x)} tokens needs one score "
                             "per token")
        return values, np.arange(len(values))
    height, width = x.shape[1:]
    if values.ndim != 3 or values.shape[1:] != (height, width) or values.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"the map has shape {values.shape}; a {height}×{width} picture needs ({x.shape[0]} or 1, "
                         f"{height}, {width})")
    per_pixel = values.sum(axis=0)  # (H, W)
    rows, columns = -(-height // patch), -(-width // patch)
    unit_of = (np.arange(height)[:, None] // patch) * columns + np.arange(width)[None, :] // patch  # (H, W)
    sums = np.bincount(unit_of.ravel(), weights=per_pixel.ravel(), minlength=rows * columns)
    sizes = np.bincount(unit_of.ravel(), minlength=rows * columns)
    return sums / sizes, unit_of


def _ranks(scores: np.ndarray) -> np.ndarray:
    """rank[u] of each unit, 0 for the highest score; ties keep the units' order (a stable sort)."""
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(scores), dtype=np.int64)
    rank[order] = np.arange(len(scores))
    return rank


def _probabilities(model, inputs: torch.Tensor, target: int, batch_size: int, progress: Progress | None
                   ) -> np.ndarray:
    """softmax(model(inputs))[:, target], ``batch_size`` inputs per forward pass."""
    found = []
    with model_left_as_found(model) as device, torch.no_grad():
        for start in range(0, len(inputs), max(1, batch_size)):
            if progress is not None:
                progress(start, len(inputs))
            logits = model(inputs[start:start + batch_size].to(device)).float()
            found.append(torch.softmax(logits, dim=-1)[:, target].cpu())
    if progress is not None:
        progress(len(inputs), len(inputs))
    probabilities = torch.cat(found).double().numpy()
    if not np.isfinite(probabilities).all():  # e.g. a model that masks every <pad> given nothing but padding
        raise ValueError("the model gives no probability for some of the changed inputs (with most of the input "
                         "removed, it may have nothing left to read), so there is no curve to draw")
    return probabilities
