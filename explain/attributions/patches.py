"""Maps for a vision transformer: models whose attention runs over the picture's patches (those
whose ``patch_grid()`` is not None: Glassbox's ViT and a pretrained Hugging Face ViT).

- Attention rollout (Abnar & Zuidema 2020): each block's attention pattern averaged over its
  heads, mixed half and half with the identity for the residual connection (0.5·A + 0.5·I, rows
  renormalised to sum to 1), and the blocks' matrices multiplied, the last block leftmost; the
  [CLS] token's row over the patches (every token's row averaged when the model pools by the
  mean instead), reshaped to the patch grid and upsampled to the picture. It uses no class.
- Grad-CAM on the tokens the last block reads (``blocks.{L-2}.out``, or ``embed.out`` when there
  is one block): the patch tokens reshaped to the patch grid are the maps, each of the D
  features one map, weighted by its mean gradient (``cams.GradCAM`` with a reshape, as
  pytorch-grad-cam does for ViTs). Not the last block's own output: past the last attention
  the patch tokens no longer reach the [CLS] token, so their gradient there is zero.

Both are written here by hand; Captum has neither (see ``explain.attributions.cams``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from explain.predictions import class_names_of

from .cams import INTERPOLATE_MODE, GradCAM
from .methods import IMAGE_METHODS, Attribution, Settings, label_of

RESIDUAL_SHARE = 0.5  # Abnar & Zuidema: the residual connection counted as half of each block's mixing


def rollout(patterns: list[torch.Tensor]) -> torch.Tensor:
    """The rolled-out attention (T, T) of the blocks' patterns, each (heads, T, T), first block first."""
    joint = None
    for pattern in patterns:
        tokens = pattern.shape[-1]
        mixed = (1 - RESIDUAL_SHARE) * pattern.mean(dim=0) + RESIDUAL_SHARE * torch.eye(tokens, dtype=pattern.dtype)
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)  # (T, T), rows sum to 1
        joint = mixed if joint is None else mixed @ joint
    return joint


def uses_cls(model) -> bool:
    """Whether token 0 is a [CLS] token that the classifier reads (else it averages the tokens)."""
    return model.spec.transformer.pooling == "cls"


def attention_rollout(model, x: torch.Tensor) -> torch.Tensor:
    """Rollout over the patch grid (rows, cols) for one picture ``x`` (C, H, W)."""
    names = [f"blocks.{index}.attn.pattern" for index in range(model.spec.transformer.num_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(x.unsqueeze(0), names=names)
    joint = rollout([cache[name][0].double() for name in names])  # (T, T)
    received = joint[0, 1:] if uses_cls(model) else joint.mean(dim=0)  # (rows*cols,)
    return received.reshape(model.patch_grid()).float()


def tokens_layer(model) -> str:
    """The hook whose tokens the last block reads."""
    blocks = model.spec.transformer.num_layers
    return f"blocks.{blocks - 2}.out" if blocks > 1 else "embed.out"


def patch_maps(model):
    """(1, T, D) tokens -> (1, D, rows, cols) maps over the patch grid, the [CLS] token dropped."""
    rows, cols = model.patch_grid()
    skip = int(uses_cls(model))

    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, skip:]  # (1, rows*cols, D)
        return patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], rows, cols)  # (1, D, rows, cols)
    return reshape


def patch_attribution(model, x: torch.Tensor, target: int, method: str, settings: Settings) -> Attribution:
    """Attention rollout or Grad-CAM on patch tokens for a checked picture ``x`` (C, H, W) on the
    model's device; the caller holds the model (``explain.model_guard``)."""
    entry = IMAGE_METHODS[method]
    rows, cols = model.patch_grid()
    layer = tokens_layer(model)
    if method == "attention_rollout":
        coarse = attention_rollout(model, x)[None, None].to(x.device)  # (1, 1, rows, cols)
        values = F.interpolate(coarse, size=tuple(x.shape[1:]), mode=INTERPOLATE_MODE)
    else:
        coarse, values = GradCAM(model, layer, settings, reshape=patch_maps(model))(x.unsqueeze(0), target)
    note = entry.note.format(cls=class_names_of(model)[target], settings=settings, layer=layer,
                             blocks=model.spec.transformer.num_layers, grid=f"{rows}×{cols}",
                             width=model.spec.transformer.d_model, size=f"{x.shape[1]}×{x.shape[2]}")
    if not bool(coarse.gt(0).any()):
        note += " Every weighted sum is negative here: this map shows nothing."
    return Attribution(method, label_of(model, method, settings), target, values[0].float().cpu().numpy(), note=note)
