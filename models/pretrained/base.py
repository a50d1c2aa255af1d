"""What the pretrained wrappers share: their error, JSON reading, and the attention read-outs.

A Hugging Face transformer (a text model or a ViT) is wrapped by ``PretrainedTransformer``: its
own forward pass runs as it is, with eager attention so ``output_attentions`` exists, and the
hook points (``embed.out``, ``blocks.{i}.attn.{q,k,v,scores,pattern}``, ``blocks.{i}.out``,
``pooled``) are read-outs filled from its outputs afterwards, and only inside
``run_with_cache`` (a hook that changed their value would change nothing). ``Family`` says where
an architecture keeps the pieces those read-outs come from.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..hooks import HookedModel, HookPoint


class PretrainedError(ValueError):
    """A pretrained model cannot be loaded; the message is plain words for the page."""


@dataclass(frozen=True)
class Family:
    """Where one architecture keeps the pieces the hook points read, relative to its base model."""

    label: str  # shown in messages: "BERT"
    causal: bool  # decoder: each token sees only itself and the tokens before it
    layers: str  # the ModuleList of blocks, e.g. "encoder.layer"
    attention: str  # inside a block: the module holding ``scaling`` and the projections
    projections: tuple[str, ...]  # inside ``attention``: (query, key, value), or one fused (B, T, 3D) projection
    cls_pooled: bool  # a classifier head reads the first token (else: the last real token, GPT-2)
    mixer: str = ""  # inside a block: the projection that reads the heads' outputs side by side


def read_json(path: Path, name: str) -> dict:
    """A model folder's JSON file as a dict ({} when the file is absent); ``name`` names the
    model in the message when the file is not a JSON object."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise PretrainedError(f"'{name}': {path.name} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise PretrainedError(f"'{name}': {path.name} must hold a JSON object")
    return data


def first_line(error: Exception) -> str:
    """The first line of a library's error message, for a one-line message on the page."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def class_names(config, classifier: bool) -> tuple[int, list[str]]:
    """(number of classes, their names) of a Hugging Face config: none without a classifier head."""
    num_classes = config.num_labels if classifier else 0
    labels = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    return num_classes, [labels.get(i, str(i)) for i in range(num_classes)]


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = HookPoint(), HookPoint(), HookPoint()  # (B, heads, T, head_dim)
        self.scores = HookPoint()  # (B, heads, Tq, Tk): q·kᵀ times the model's scale (1/√dh), before the mask
        self.pattern = HookPoint()  # (B, heads, Tq, Tk): the model's own attention weights, rows sum to 1


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = Attention()
        self.out = HookPoint()  # (B, T, D): hidden_states[i + 1] (GPT-2's last one is after its final norm)


class PretrainedTransformer(HookedModel):
    """A Hugging Face transformer with Glassbox's hook points as read-outs of its outputs.

    A subclass sets ``meta`` (``meta.classifier``: whether it has a classification head),
    passes its ``embed`` module (one with an ``out`` hook point), and fills ``pooled`` itself."""

    def __init__(self, spec, hf: nn.Module, family: Family, embed: nn.Module):
        super().__init__(spec)
        config = hf.config
        self.hf = hf
        self.family = family
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.embed = embed
        self.blocks = nn.ModuleList(Block() for _ in range(config.num_hidden_layers))
        self.pooled = HookPoint()  # (B, D): what a head reads; each subclass says which vector that is
        self._hf_layers = list(hf.base_model.get_submodule(family.layers))  # plain list: not registered twice

    def head_mixer(self, block: int) -> nn.Module:
        # The pattern hook points are read-outs (changing them changes nothing), so a head is
        # switched off where the model itself reads it: the input of its output projection.
        return self._hf_layers[block].get_submodule(self.family.mixer)

    def _run_read_out(self, **inputs):
        """The model's outputs for ``inputs``, with every hook point but ``pooled`` filled from them."""
        with self._projections_recorded() as projections:
            outputs = self.hf(**inputs, output_attentions=True, output_hidden_states=True)
        hidden = outputs.hidden_states  # L + 1 tensors of (B, T, D)
        self.embed.out(hidden[0])
        for i, block in enumerate(self.blocks):
            q, k, v = (self._split_heads(projections[i][part]) for part in range(3))  # 3 × (B, h, T, dh)
            for point, value in ((block.attn.q, q), (block.attn.k, k), (block.attn.v, v)):
                point(value)
            scale = getattr(self._hf_layers[i].get_submodule(self.family.attention), "scaling", self.head_dim ** -0.5)
            block.attn.scores(q @ k.transpose(-2, -1) * scale)  # (B, h, T, T)
            block.attn.pattern(outputs.attentions[i])  # (B, h, T, T)
            block.out(hidden[i + 1])
        return outputs

    def _logits(self, outputs, x: torch.Tensor) -> torch.Tensor:
        if self.meta.classifier:
            return outputs.logits  # (B, K)
        return torch.zeros(x.shape[0], 0, device=x.device)  # (B, 0): a bare encoder/decoder has no classes

    def _split_heads(self, projected: torch.Tensor) -> torch.Tensor:
        B, T, _ = projected.shape
        return projected.view(B, T, -1, self.head_dim).transpose(1, 2)  # (B, T, D) -> (B, h, T, dh)

    @contextlib.contextmanager
    def _projections_recorded(self):
        """Per layer, [q, k, v] as (B, T, D), read by forward hooks that live only for this pass."""
        recorded: list[list[torch.Tensor]] = [[] for _ in self._hf_layers]
        handles = []

        def keep(layer: int, fused: bool):
            def hook(module, inputs, output):
                recorded[layer].extend(output.split(output.shape[-1] // 3, dim=-1) if fused else [output])
            return hook

        try:
            for i, layer in enumerate(self._hf_layers):
                attention = layer.get_submodule(self.family.attention)
                for name in self.family.projections:
                    module = attention.get_submodule(name)
                    handles.append(module.register_forward_hook(keep(i, len(self.family.projections) == 1)))
            yield recorded
        finally:
            for handle in handles:
                handle.remove()
