"""Every faithfulness number for the maps the Attributions page shows, on one input, in one call:
each method's deletion and insertion curves beside a random ranking's, ERASER's comprehensiveness
and sufficiency for a sentence, and (when asked, pictures only: they are slow) infidelity and
max-sensitivity. What the numbers are: ``explain.faithfulness`` and ``explain.faithfulness_captum``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from explain.attributions import Settings
from explain.tokens import pad_id_of, strip_padding

from explain.faithfulness import (DEFAULT_STEPS, RANDOM_SEED, Curve, EraserScores, deletion_curve, eraser_scores,
                           insertion_curve, random_ranking)
from explain.faithfulness_captum import infidelity_of, max_sensitivity_of

RANDOM_LABEL = "Random ranking"
PATCHES_ACROSS = 32  # a large picture is ranked in patches, about this many along its shorter side


@dataclass(frozen=True)
class Scores:
    """The faithfulness of one method's map (or of the random ranking: ``method`` None)."""
    method: str | None  # key of the attribution method; None for the random reference
    label: str
    deletion: Curve
    insertion: Curve
    eraser: EraserScores | None = None  # sentences
    infidelity: float | None = None  # pictures, when asked
    max_sensitivity: float | None = None  # pictures, when asked; None for the random reference


def default_patch(x: torch.Tensor) -> int:
    """Pixels along a patch's side: single pixels for a small picture; about PATCHES_ACROSS patches
    along a large one's shorter side (a 224×224 photo in 7×7 patches), so each step is visible."""
    side = min(x.shape[1:])
    return 1 if side <= 2 * PATCHES_ACROSS else -(-side // PATCHES_ACROSS)


def faithfulness_report(model, x: torch.Tensor, target: int, maps: list[tuple[str, str, np.ndarray]],
                        steps: int = DEFAULT_STEPS, baseline: torch.Tensor | None = None,
                        captum_metrics: bool = False, settings: Settings | None = None,
                        progress: Callable[[int, int, str], None] | None = None) -> list[Scores]:
    """The scores of each map in ``maps`` (method key, label, values as ``explain.attributions``
    gives them) for picture ``x`` (C, H, W) or token ids ``x`` (T,), then the random ranking's
    last. ``baseline``: a picture's (default black in the model's normalisation); sentences use
    the pad id. ``captum_metrics``: also infidelity and max-sensitivity (pictures; ``settings``
    are the methods' own, for re-running them). ``progress(done, total, label)`` before each map."""
    picture = x.dtype.is_floating_point
    if not picture:
        x = strip_padding(x, pad_id_of(model))
    patch = default_patch(x) if picture else 1
    reference = baseline if picture else None
    entries = [*maps, (None, RANDOM_LABEL, random_ranking(x, RANDOM_SEED))]
    found = []
    for done, (method, label, values) in enumerate(entries):
        if progress is not None:
            progress(done, len(entries), label)
        deletion = deletion_curve(model, x, target, values, steps, reference, patch)
        insertion = insertion_curve(model, x, target, values, steps, reference, patch)
        eraser = None if picture else eraser_scores(model, x, target, values)
        infidelity = sensitivity = None
        if picture and captum_metrics:
            infidelity = infidelity_of(model, x, target, values)
            if method is not None:
                sensitivity = max_sensitivity_of(model, x, target, method, settings, baseline)
        found.append(Scores(method, label, deletion, insertion, eraser, infidelity, sensitivity))
    return found
