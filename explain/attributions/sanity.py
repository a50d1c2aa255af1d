"""The sanity check of Adebayo et al. (2018): the same methods on the model with its weights
drawn afresh. A map that shows what the model learned changes; an edge detector's does not."""
from __future__ import annotations

import copy

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
