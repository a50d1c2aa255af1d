"""build_model: a validated spec in, an untrained nn.Module with hook points out."""
from __future__ import annotations

import copy

import torch

from .cnn import CNN
from .hooks import HookedModel
from .rnn import RNNClassifier
from .spec import ModelSpec
from .transformer import TransformerClassifier


class SpecError(ValueError):
    """The spec cannot be built; ``messages`` lists every problem in plain words."""

    def __init__(self, messages: list[str]):
        self.messages = list(messages)
        super().__init__("; ".join(self.messages))


def build_model(spec: ModelSpec, seed: int | None = None) -> HookedModel:
    errors = spec.validate()
    if errors:
        raise SpecError(errors)
    spec = copy.deepcopy(spec)  # the model owns its spec; later edits to the caller's copy don't leak in
    family = {"cnn": CNN, "rnn": RNNClassifier, "transformer": TransformerClassifier}[spec.kind]
    if seed is None:
        return family(spec).eval()
    with torch.random.fork_rng(devices=[]):  # a seeded build leaves the caller's random stream alone
        torch.manual_seed(seed)
        return family(spec).eval()


def example_input(spec: ModelSpec, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A random input of the right shape and type, for tests, shape checks and benchmarks."""
    gen = torch.Generator().manual_seed(seed)
    inp = spec.input
    if inp.kind == "image":
        return torch.rand(batch, inp.channels, inp.height, inp.width, generator=gen)
    if inp.kind == "sequence":
        return torch.randn(batch, inp.max_len, inp.features, generator=gen)
    return torch.randint(2, inp.vocab_size, (batch, inp.max_len), generator=gen)
