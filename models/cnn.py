"""A CNN built from a spec's layer table, with a hook point after every step.

The layer table is grouped into stages: each conv, pool or fc layer starts one
(``conv.0``, ``pool.0``, ``fc.0``) and the batch-norm, activation and dropout rows after it
belong to it. A stage reads top to bottom in the user's order, so ``conv.0.out`` is the raw
convolution, ``conv.0.bn`` its normalised value and ``conv.0.act`` what the activation gives.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .hooks import HookedModel, HookPoint
from .spec import STAGE_TYPES, Layer, ModelSpec


def make_activation(name: str) -> nn.Module:
    """A fresh module each call: a non-linearity is never shared between layers."""
    return {
        "relu": lambda: nn.ReLU(inplace=False),
        "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=False),
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "gelu": nn.GELU,
    }[name]()


class Stage(nn.Module):
    """One conv/pool/fc layer and the batch-norm/activation/dropout rows that follow it."""

    def __init__(self, main: nn.Module, attr: str):
        super().__init__()
        setattr(self, attr, main)  # conv.0.conv, pool.0.pool, fc.0.linear
        self.out = HookPoint()
        self.steps: list[tuple[str, str | None]] = [(attr, "out")]  # (module, hook after it)

    def add(self, layer: Layer, channels: int, spatial: bool) -> None:
        if layer.type == "batchnorm":
            self.batchnorm = nn.BatchNorm2d(channels) if spatial else nn.BatchNorm1d(channels)
            self.bn = HookPoint()
            self.steps.append(("batchnorm", "bn"))
        elif layer.type == "act":
            self.nonlinearity = make_activation(layer.activation)
            self.act = HookPoint()
            self.steps.append(("nonlinearity", "act"))
        else:  # dropout: nothing to look at (identity outside training), so no hook point
            self.dropout = nn.Dropout(layer.p)
            self.steps.append(("dropout", None))

    def hook_names(self, name: str) -> list[str]:
        """This stage's hook names in execution order, e.g. ["conv.0.out", "conv.0.act"]."""
        return [f"{name}.{hook}" for _, hook in self.steps if hook is not None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module, hook in self.steps:
            x = getattr(self, module)(x)
            if hook is not None:
                x = getattr(self, hook)(x)
        return x


class CNN(HookedModel):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.input = HookPoint()  # the preprocessed image, as the model receives it (B, C, H, W)
        self.conv, self.pool, self.fc = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        # The order stages run in, e.g. [("conv", 0), ("pool", 0), ("conv", 1), ..., ("fc", 0)].
        self.order: list[tuple[str, int]] = []
        channels = spec.input.channels
        features = spec.input.channels * spec.input.height * spec.input.width
        shapes = {row.name: row.output for row in spec.layer_table()}  # (C, H, W) or (features,)
        stage: Stage | None = None
        for layer in spec.layers:
            if layer.type in STAGE_TYPES:
                group = getattr(self, layer.type)
                name = f"{layer.type}.{len(group)}"
                if layer.type == "conv":
                    stage = Stage(nn.Conv2d(channels, layer.channels, layer.kernel, layer.stride, layer.padding), "conv")
                elif layer.type == "pool":
                    pool_cls = nn.MaxPool2d if layer.pool == "max" else nn.AvgPool2d
                    stage = Stage(pool_cls(layer.kernel, layer.stride or layer.kernel, layer.padding), "pool")
                else:
                    stage = Stage(nn.Linear(features, layer.channels), "linear")
                group.append(stage)
                self.order.append((layer.type, len(group) - 1))
                dims = shapes[name]
                channels, features = dims[0], math.prod(dims)
            else:
                stage.add(layer, channels, spatial=self.order[-1][0] != "fc")
        classifier = Stage(nn.Linear(features, spec.num_classes), "linear")
        self.fc.append(classifier)
        self.order.append(("fc", len(self.fc) - 1))

    def gradcam_layers(self) -> list[str]:
        """Each conv stage's last hook: its output as the next layer receives it."""
        return [self.conv[index].hook_names(f"conv.{index}")[-1] for group, index in self.order if group == "conv"]

    def features_hook(self) -> str:
        """The last hook of the stage before the classifier (flattened, it is what the classifier
        reads); the input itself for a CNN that is only a classifier."""
        if len(self.order) < 2:
            return "input"
        group, index = self.order[-2]
        return getattr(self, group)[index].hook_names(f"{group}.{index}")[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input(x)  # (B, C, H, W)
        for group, index in self.order:
            if group == "fc" and x.dim() > 2:
                x = x.flatten(1)  # (B, C, H, W) -> (B, C*H*W)
            x = getattr(self, group)[index](x)
        return x  # (B, num_classes) logits

