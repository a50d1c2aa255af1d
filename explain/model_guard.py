"""Lend a model to a library that hooks into it (Captum), and get it back exactly as it was.

Captum's methods register forward and backward hooks, swap ReLU gradients and park tensors on
activation modules while they run. They remove their hooks in ``finally`` blocks, but DeepLift
leaves its scratch tensors (``module.input``, ``module.output``) behind when a forward pass
fails midway, and a page that shows a model for an hour must not collect leftovers from every
click. ``model_left_as_found`` sweeps up whatever was added during the call, and only that:
hooks the caller had before are kept.

Calls on one model object from several threads (two browser tabs sharing a cached model) take
turns: one call's hooks would otherwise fire in the other's forward passes, and its sweep
would remove the other's hooks.
"""
from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

from models.hooks import turn_of

HOOK_TABLES = {  # each hook table of nn.Module, with the side tables keyed by the same handle id
    "_forward_hooks": ("_forward_hooks_with_kwargs", "_forward_hooks_always_called"),
    "_forward_pre_hooks": ("_forward_pre_hooks_with_kwargs",),
    "_backward_hooks": (), "_backward_pre_hooks": (),
}
SCRATCH_ATTRIBUTES = ("input", "output", "input_ref")  # tensors Captum's DeepLift parks on activations mid-pass
LIBRARY_CHATTER = (  # warnings Captum gives on every call; they say nothing to a student
    r"Setting forward, backward hooks", r"Setting backward hooks on ReLU",
    r"Input Tensor \d+ did not already require gradients")



def device_of(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@contextlib.contextmanager
def model_left_as_found(model: nn.Module):
    """Run the body with ``model`` in eval mode (yields its device); afterwards, even on error,
    its training flag is restored and every hook and scratch attribute added meanwhile removed.

    RNNs on CUDA also get cuDNN switched off: cuDNN cannot run backward through an RNN in eval
    mode (it raises), so their gradients take PyTorch's own kernels. On the CPU nothing changes."""
    with turn_of(model), _restored(model) as device:  # re-entrant: attribute() asks predicted_class()
        yield device


@contextlib.contextmanager
def _restored(model: nn.Module):
    device = device_of(model)
    was_training = model.training
    hooks_before = {module: {table: set(getattr(module, table)) for table in HOOK_TABLES} for module in model.modules()}
    attributes_before = {module: set(vars(module)) for module in model.modules()}
    recurrent = any(isinstance(module, nn.RNNBase) for module in model.modules())
    on_cuda = recurrent and device.type == "cuda"
    cudnn = torch.backends.cudnn.flags(enabled=False) if on_cuda else contextlib.nullcontext()
    model.eval()
    try:
        with cudnn, warnings.catch_warnings():
            for message in LIBRARY_CHATTER:
                warnings.filterwarnings("ignore", message=message)
            yield device
    finally:
        model.train(was_training)
        for module in model.modules():
            for table, side_tables in HOOK_TABLES.items():
                for key in set(getattr(module, table)) - hooks_before.get(module, {}).get(table, set()):
                    for name in (table, *side_tables):
                        getattr(module, name, {}).pop(key, None)
            for name in SCRATCH_ATTRIBUTES:
                if name in vars(module) and name not in attributes_before.get(module, set()):
                    delattr(module, name)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Random draws inside come from ``seed``; the caller's random streams are left untouched."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
