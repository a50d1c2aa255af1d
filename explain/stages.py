"""The feature maps of a pretrained CNN (e.g. a ResNet), stage by stage.

A Glassbox CNN is inspected layer by layer with its filters and arithmetic (explain/cnn.py). A
pretrained CNN has hundreds of layers in residual blocks; what a class can read from it is each
stage's output: the stem (``conv.0.out``, then its pooling ``pool.0.out``) and every stage after
(``conv.1.out``, ...), the names ``model.stage_names()`` lists.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .predictions import class_names_of, softmax


@dataclass
class StageMaps:
    name: str  # "conv.2.out"
    maps: np.ndarray  # (C, H, W) this stage's output for the input


@dataclass
class StagesInspection:
    class_names: list[str]
    probabilities: np.ndarray  # (K,), empty without a classifier
    stages: list[StageMaps]  # in model order
    activations: dict[str, np.ndarray]  # every hook's value, batch dim removed (for a .npz export)


@torch.no_grad()
def inspect_stages(model, x: torch.Tensor) -> StagesInspection:
    """One forward pass of ``model`` on the picture ``x`` (C, H, W) with every stage's output."""
    model.eval()
    names = list(model.stage_names())
    logits, cache = model.run_with_cache(x.unsqueeze(0))  # (1, K)
    activations = {name: value[0].float().numpy() for name, value in cache.items()}
    stages = [StageMaps(name, activations[name]) for name in names if activations.get(name) is not None
              and activations[name].ndim == 3]
    return StagesInspection(class_names_of(model), softmax(logits)[0], stages, activations)
