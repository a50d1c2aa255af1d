"""Hook points and the activation cache.

Every activation a view shows passes through a ``HookPoint``: an identity module whose dotted
name in ``named_modules()`` ("conv.0.out", "blocks.1.attn.pattern") is the name the pages,
the attribution code and the checkpoints all use. ``run_with_cache`` attaches forward hooks
only to the points asked for, copies what passes through to the CPU, and always removes its
hooks, even when the forward pass raises.
"""
from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping

import torch
from torch import nn

from .meta import ModelMeta

_TURNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its RLock, gone with the model
_TURNS_LOCK = threading.Lock()


_TOKENS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its number, gone with the model
_NEXT_TOKEN = itertools.count(1)


def token_of(model: nn.Module) -> int:
    """A number for ``model`` that no other model ever gets, for cache keys. ``id(model)`` is not:
    once a model is freed, the next one may be given the same id and inherit its cached views."""
    with _TURNS_LOCK:
        if model not in _TOKENS:
            _TOKENS[model] = next(_NEXT_TOKEN)
        return _TOKENS[model]


def turn_of(model: nn.Module) -> threading.RLock:
    """The lock calls that hook into ``model`` take turns on. A model may be shared by several
    sessions (a pretrained model is loaded once per server); one call's hooks would otherwise
    fire in another's forward pass. Re-entrant, and kept outside the model so it deep-copies."""
    with _TURNS_LOCK:
        return _TURNS.setdefault(model, threading.RLock())


class HookPoint(nn.Identity):
    """An identity layer that marks a place where an activation can be read."""


class StepPoint(HookPoint):
    """A hook point passed once per step of a recurrence (an RNN's h_t as the next step reads it).
    A hook there can change every later step; a whole-pass cache (``names=None``) leaves it out,
    since it would hold only the last step."""


class ActivationCache(Mapping):
    """Activations by hook name, detached and on the CPU."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self._tensors = dict(tensors)

    def names(self) -> list[str]:
        return list(self._tensors)

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self._tensors[name]
        except KeyError:
            raise KeyError(f"no activation named '{name}'; this cache holds: {', '.join(self._tensors) or 'nothing'}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in self._tensors.items())
        return f"ActivationCache({shapes})"


class HookedModel(nn.Module):
    """Base class of every Glassbox model: a spec, named hook points and run_with_cache.

    It also declares what a model offers, so that the views ask instead of sniffing attributes:
    the defaults describe a model built from a spec, and a family or a pretrained wrapper
    overrides what differs (a CNN has Grad-CAM layers, a pretrained ResNet its stages, a GPT-2
    causal attention and its own pad token, a pretrained text model its own subword tokens).
    """

    causal = False  # True when a token attends only to itself and the tokens before it
    pad_id = 0  # the token id that pads a sentence (training.tokenizer.PAD_ID for Glassbox models)

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        self.meta = ModelMeta()  # where it came from; a loaded checkpoint or a pretrained wrapper fills it in
        # Set only inside run_with_cache; models that need a slower, step-by-step path to
        # expose an activation (an LSTM's cell state at every step) take it only then.
        self._caching = False

    # ---- what the model offers --------------------------------------------------------
    @property
    def is_pretrained(self) -> bool:
        """A pretrained Hugging Face model: inspected here, never trained or saved."""
        return self.meta.pretrained is not None

    def gradcam_layers(self) -> list[str]:
        """Hook names of each conv stage's output as the next layer receives it, in order."""
        return []

    def patch_grid(self) -> tuple[int, int] | None:
        """(rows, columns) of the picture's patches when its attention runs over image patches
        (a vision transformer: [CLS] first when it pools by [CLS], then the patches row by row);
        None for every other model."""
        return None

    def features_hook(self) -> str | None:
        """The hook whose activation the classifier head reads (the penultimate features, one
        vector per example); None when the model has no such point (a pretrained wrapper)."""
        return None

    def stage_names(self) -> list[str]:
        """A pretrained CNN's stem and stages, in the order they run (views of hundreds of layers
        show these); a Glassbox model lists its own layers in its spec instead."""
        return []

    def activation_shape(self, hook_name: str) -> tuple[int, ...]:
        """One example's shape at a hook ("conv.1.act" -> (16, 8, 8)), from the spec's layer table."""
        rows = {row.name: row.output for row in self.spec.layer_table()}
        return rows[hook_name.rsplit(".", 1)[0]]

    def activation_functions(self) -> set[str]:
        """The activation functions it applies (DeepLift has rules for only some of them)."""
        return {layer.activation for layer in self.spec.layers if layer.type == "act"}

    def tokens_of(self, ids) -> list[str] | None:
        """The model's own names of ``ids`` (a pretrained tokenizer's subwords); None when the
        words come from the vocabulary of the data it was trained on."""
        return None

    def head_mixer(self, block: int) -> nn.Module | None:
        """The module of block ``block`` (0-based) that reads its attention heads' outputs side by
        side, (B, T, heads × head_dim), and mixes them into the residual stream; None for a model
        without attention heads. Switching a head off (explain.ablation) changes its slice there."""
        return None

    def classify_stream(self, stream: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
        """The model's own classifier applied to a residual stream (B, T, D) read as it reads the
        last block's output (the class token or the pooled tokens): (B, K) logits. None when it has
        no classifier that reads the blocks (a CNN, an RNN, a bare encoder, a decoder)."""
        return None

    def next_token_logits(self, stream: torch.Tensor, final: bool) -> torch.Tensor | None:
        """A decoder's final norm and unembedding applied to a residual stream (B, T, D) (``final``:
        the last block's output, which already passed the norm): (B, T, vocab). None otherwise."""
        return None

    def hook_points(self) -> dict[str, HookPoint]:
        return {name: module for name, module in self.named_modules() if isinstance(module, HookPoint)}

    def hook_names(self) -> list[str]:
        return list(self.hook_points())

    def run_with_cache(self, x: torch.Tensor, names: Iterable[str] | None = None, **forward_kwargs):
        """(logits, ActivationCache) for one forward pass; hooks are removed whatever happens."""
        points = self.hook_points()
        wanted = [n for n, p in points.items() if not isinstance(p, StepPoint)] if names is None else list(names)
        unknown = [n for n in wanted if n not in points]
        if unknown:
            raise KeyError(f"unknown hook name(s) {', '.join(unknown)}; this model has: {', '.join(points)}")
        store: dict[str, torch.Tensor] = {}
        handles = []

        def saver(name):
            def hook(module, inputs, output):
                store[name] = output.detach().to("cpu")
            return hook

        with turn_of(self):
            try:
                self._caching = True
                for name in wanted:
                    handles.append(points[name].register_forward_hook(saver(name)))
                logits = self(x, **forward_kwargs)
            finally:
                self._caching = False
                for handle in handles:
                    handle.remove()
        # Hooks fire in execution order, so the cache lists layers input → output.
        return logits, ActivationCache(store)


def count_hooks(model: nn.Module) -> int:
    """Forward/backward hooks still attached anywhere in ``model`` (0 after any clean call)."""
    total = 0
    for module in model.modules():
        total += len(module._forward_hooks) + len(module._forward_pre_hooks)
        total += len(module._backward_hooks) + len(getattr(module, "_backward_pre_hooks", {}))
    return total
