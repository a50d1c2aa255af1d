"""Cascading randomisation (Adebayo et al., 2018, section 3.1): re-draw the model's weights layer
by layer, from the output back to the input, and recompute every method's map after each step.
A map that shows what the model learned falls apart from the first steps on; one that still
looks like the trained map with most layers random was showing the picture, not the model.

A layer here is one of the model's parameterised modules, grouped the way the model numbers
them: ``conv.0.conv`` belongs to the layer ``conv.0`` (the name up to its first number), and a
module with no number in its name (``head``, ``rnn.net``) is a layer of its own. Layers go in the
model's own order (the order of ``named_modules``), reversed. Step k re-draws the first k layers
of that list; each step is a fresh copy of the one before, so the caller's model is never touched.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from explain.model_guard import device_of
from models.hooks import turn_of

from .calls import attribute_many, check_input, predicted_class
from .methods import Attribution, Settings
from .sanity import RANDOMIZE_SEED_OFFSET, map_similarity, map_ssim, redraw_own_parameters


@dataclass(frozen=True)
class CascadeLayer:
    name: str  # "conv.1", "head": what the page calls the step
    modules: tuple[str, ...]  # the parameterised modules it re-draws, e.g. ("conv.1.conv", "conv.1.batchnorm")


@dataclass
class Cascade:
    """The cascading check of one input: each method's map on the trained model and after each
    step, and how alike each step's map is to the trained one."""
    layers: list[CascadeLayer]  # output first: step k (1-based) has re-drawn layers[:k]
    trained: list[Attribution]  # one per method, on the trained model
    maps: dict[str, list[np.ndarray]]  # method key -> its map after each step (len(layers) of them)
    spearman: dict[str, list[float]]  # method key -> Spearman of |map| against the trained map, per step
    ssim: dict[str, list[float]] | None  # the same in SSIM; None for sentences (no 2-D structure)

    @property
    def step_names(self) -> list[str]:
        return [layer.name for layer in self.layers]


def cascade_layers(model) -> list[CascadeLayer]:
    """The model's layers with parameters, from the output back to the input (see the module notes)."""
    grouped: dict[str, list[str]] = {}
    for name, module in model.named_modules():
        if next(module.parameters(recurse=False), None) is None:
            continue
        grouped.setdefault(layer_name(name), []).append(name)
    return [CascadeLayer(name, tuple(modules)) for name, modules in reversed(grouped.items())]


def layer_name(module_name: str) -> str:
    """"conv.0.conv" -> "conv.0"; "blocks.1.attn.qkv" -> "blocks.1"; "head" -> "head"; "" (the
    model's own parameters) -> "model"."""
    parts = module_name.split(".") if module_name else []
    for index, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[:index + 1])
    return module_name or "model"


def cascading_copies(model, seed: int = 0) -> Iterator[tuple[CascadeLayer, torch.nn.Module]]:
    """(layer, copy) for each step: the copy has every layer up to this one re-drawn, in eval
    mode, on the model's device. Each layer is drawn from its own seed, so a layer's random
    weights are the same at every step and for every caller. The caller's random stream is left alone."""
    device = device_of(model)
    current = model
    for index, layer in enumerate(cascade_layers(model)):
        if current is model:
            with turn_of(model):  # not while another session's call has its hooks on the shared model
                current = copy.deepcopy(model)
        else:
            current = copy.deepcopy(current)
        modules_of = dict(current.named_modules())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOMIZE_SEED_OFFSET + seed * 10_007 + index)
            for name in layer.modules:
                module = modules_of[name]
                on = device_of(module)
                module.cpu()  # drawn on the CPU so a seed gives the same weights on any device
                redraw_own_parameters(module)
                module.to(on)
        yield layer, current.to(device).eval()


def cascading_randomisation(model, x, target: int | None, methods: list[str], settings: Settings | None = None,
                            baselines: torch.Tensor | None = None, seed: int = 0,
                            trained: list[Attribution] | None = None,
                            progress: Callable[[int, int, str], None] | None = None) -> Cascade:
    """Every method's map after each step of the cascade, for the same class throughout (the
    trained model's prediction when ``target`` is None, as in the paper). ``trained``: the
    trained model's attributions of the same input, class, methods and settings, when the caller
    has them already. ``progress(done, total, layer name)`` is called before each step."""
    settings = settings or Settings()
    x = check_input(model, x)
    if target is None:
        target = predicted_class(model, x)
    if trained is None:
        trained = attribute_many(model, x, target, methods, settings, baselines)
    layers = cascade_layers(model)
    maps: dict[str, list[np.ndarray]] = {method: [] for method in methods}
    for done, (layer, randomised) in enumerate(cascading_copies(model, seed)):
        if progress is not None:
            progress(done, len(layers), layer.name)
        for result in attribute_many(randomised, x, target, methods, settings, baselines):
            maps[result.method].append(result.values)
        del randomised  # one copy at a time: a pretrained model is hundreds of MB
    pictures = model.spec.input.kind == "image"
    first = {a.method: a.values for a in trained}
    spearman = {m: [map_similarity(first[m], later) for later in maps[m]] for m in methods}
    ssim = {m: [map_ssim(first[m], later) for later in maps[m]] for m in methods} if pictures else None
    return Cascade(layers, list(trained), maps, spearman, ssim)
