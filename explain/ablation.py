"""Switch parts of a model off and see the answer move: attention heads, conv channels, RNN units.

``ablate`` maps a hook name to the 0-based indices switched off in it:

    blocks.{i}.attn.pattern  heads of block i. The pattern points of a pretrained model are
                             read-outs, so a head is switched off where the model reads it: its
                             slice of the input of the block's output projection (``head_mixer``),
                             which is what a zero attention pattern for that head gives.
    conv.{i}.act (any conv   channels of that activation, through its hook point.
    stage's hook)
    rnn.hidden               hidden units of the top layer. ``rnn.hidden`` itself is read after the
                             whole recurrence, so the units are switched off at ``rnn.step`` (and
                             ``rnn.step_back``), which every step passes through on the
                             step-by-step path: the switched-off h_t is what the next step reads.
                             An LSTM's cell state keeps running; only its output h_t is replaced.

"zero" sets a part to 0; "mean" to its mean over the validation data (``ablation_means``). Hooks
live only inside one call (removed in ``finally``) and no weight is touched. ``importance`` ablates
one part per batch row, so every head of a 6 × 12 model costs one or two forward passes.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.hooks import turn_of

HEADS, CHANNELS, UNITS = "heads", "channels", "units"
MODES = ("zero", "mean")
PATTERN = re.compile(r"^blocks\.(\d+)\.attn\.pattern$")
BATCH_ROWS = 96  # rows (one ablated part each) per forward pass in ``importance``


def kind_of(hook: str) -> str:
    """What the indices at ``hook`` count: heads, channels or units."""
    if PATTERN.match(hook):
        return HEADS
    if hook.startswith("conv.") or hook.startswith("pool."):
        return CHANNELS
    if hook == "rnn.hidden":
        return UNITS
    raise ValueError(f"'{hook}' has no heads, channels or hidden units to switch off")


def ablatable(model) -> dict[str, int]:
    """Every hook whose parts can be switched off, with how many parts it has, in running order."""
    spec = model.spec
    if spec.kind == "transformer" and model.head_mixer(0) is not None:
        return {f"blocks.{i}.attn.pattern": spec.transformer.num_heads for i in range(spec.transformer.num_layers)}
    if spec.kind == "rnn":
        return {"rnn.hidden": spec.rnn.hidden_size * (2 if spec.rnn.bidirectional else 1)}
    if spec.kind == "cnn":
        return {hook: model.activation_shape(hook)[0] for hook in model.gradcam_layers()}
    return {}


# ---- the edits ----------------------------------------------------------------------------
def _masks(model, ablate: Mapping[str, Sequence[int] | torch.Tensor], rows: int) -> dict[str, torch.Tensor]:
    """hook -> (rows, parts) bool, True where a part is switched off in that row. A sequence of
    indices applies to every row; a (rows, parts) bool tensor is taken as it is (``importance``)."""
    sizes = ablatable(model)
    masks = {}
    for hook, chosen in ablate.items():
        if hook not in sizes:
            raise ValueError(f"'{hook}' is not a place with parts to switch off in this model")
        if isinstance(chosen, torch.Tensor) and chosen.dtype == torch.bool:
            masks[hook] = chosen
            continue
        mask = torch.zeros(rows, sizes[hook], dtype=torch.bool)
        for index in chosen:
            if not 0 <= int(index) < sizes[hook]:
                raise ValueError(f"{kind_of(hook)} of '{hook}' are numbered 1 to {sizes[hook]}, not {int(index) + 1}")
            mask[:, int(index)] = True
        masks[hook] = mask
    return masks


def _replaced(value: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor | None) -> torch.Tensor:
    """``value`` (B, parts, ...) with each switched-off part replaced by ``fill`` (parts, ...) or 0."""
    mask = mask.to(value.device).view(*mask.shape, *[1] * (value.dim() - 2))  # (B, parts, 1, ...)
    fill = torch.zeros((), dtype=value.dtype, device=value.device) if fill is None else fill.to(value)
    return torch.where(mask, fill, value)


def _attach(model, masks: dict[str, torch.Tensor], means: Mapping[str, torch.Tensor] | None) -> list:
    handles = []
    points = model.hook_points()
    heads = model.spec.transformer.num_heads if model.spec.kind == "transformer" else 0
    for hook, mask in masks.items():
        fill = None if means is None else means[hook]
        kind = kind_of(hook)
        if kind == HEADS:
            def edit_heads(module, inputs, mask=mask, fill=fill):
                merged = inputs[0]  # (B, T, heads * head_dim): the heads' outputs side by side
                split = merged.view(*merged.shape[:-1], heads, -1).transpose(1, 2)  # (B, heads, T, dh)
                fill_ = None if fill is None else fill[:, None, :]  # (heads, 1, dh): one vector per head
                edited = _replaced(split, mask, fill_).transpose(1, 2).reshape(merged.shape)
                return (edited, *inputs[1:])
            block = int(PATTERN.match(hook).group(1))
            handles.append(model.head_mixer(block).register_forward_pre_hook(edit_heads))
        elif kind == CHANNELS:
            def edit_channels(module, inputs, output, mask=mask, fill=fill):
                return _replaced(output, mask, fill)
            handles.append(points[hook].register_forward_hook(edit_channels))
        else:
            size = model.spec.rnn.hidden_size
            for name, part in (("rnn.step", slice(0, size)), ("rnn.step_back", slice(size, 2 * size))):
                def edit_units(module, inputs, output, mask=mask[:, part], fill=None if fill is None else fill[part]):
                    return _replaced(output, mask, fill)
                handles.append(points[name].register_forward_hook(edit_units))
    return handles


@contextlib.contextmanager
def switched_off(model, ablate: Mapping[str, Sequence[int]], rows: int, mode: str = "zero",
                 means: Mapping[str, torch.Tensor] | None = None):
    """Inside the block, every forward pass of ``model`` on ``rows`` inputs runs with the parts
    in ``ablate`` switched off (for RNN units: only on the step-by-step path, which
    ``run_with_cache`` takes). The model's turn is held and the hooks removed whatever happens."""
    _check_mode(mode, means)
    with turn_of(model):
        handles = []
        try:
            handles = _attach(model, _masks(model, ablate, rows), means if mode == "mean" else None)
            yield model
        finally:
            for handle in handles:
                handle.remove()


def _forward(model, x: torch.Tensor, masks: dict[str, torch.Tensor], means, pooled: bool = False):
    """(logits, the pooled vector when ``pooled``) with ``masks`` applied; hooks removed whatever happens."""
    units = any(kind_of(hook) == UNITS for hook in masks)
    with turn_of(model), torch.no_grad():
        handles = []
        try:
            handles = _attach(model, masks, means)
            if units or pooled:  # the step-by-step RNN path, where each step passes through rnn.step
                logits, cache = model.run_with_cache(x, names=["pooled"] if pooled else [])
                return logits, (cache["pooled"] if pooled else None)
            return model(x), None
        finally:
            for handle in handles:
                handle.remove()


def _check_mode(mode: str, means) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not '{mode}'")
    if mode == "mean" and means is None:
        raise ValueError("mean ablation needs the means over the validation data (ablation_means)")


def ablated_logits(model, x: torch.Tensor, ablate: Mapping[str, Sequence[int]], mode: str = "zero",
                   means: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The logits (B, K) of ``model`` on ``x`` with the parts in ``ablate`` switched off in every row."""
    _check_mode(mode, means)
    masks = _masks(model, ablate, x.shape[0])
    logits, _ = _forward(model, x, masks, means if mode == "mean" else None)
    return logits


# ---- means over the validation data ----------------------------------------------------------
def ablation_means(model, x_val: torch.Tensor, hooks: Sequence[str], batch_size: int = 256) -> dict[str, torch.Tensor]:
    """hook -> the value a switched-off part takes in mean ablation: per head its output vector
    (heads, head_dim), per channel its mean map (C, H, W), per unit its mean state (units,),
    averaged over the validation examples (and, for tokens, over their real tokens)."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, float] = {}
    heads = model.spec.transformer.num_heads if model.spec.kind == "transformer" else 0
    for start in range(0, len(x_val), batch_size):
        x = x_val[start:start + batch_size]
        recorded: dict[str, torch.Tensor] = {}
        with turn_of(model), torch.no_grad():
            handles = []
            try:
                for hook in hooks:
                    if kind_of(hook) == HEADS:
                        def keep(module, inputs, hook=hook):
                            recorded[hook] = inputs[0].detach()
                        handles.append(model.head_mixer(int(PATTERN.match(hook).group(1))).register_forward_pre_hook(keep))
                plain = [h for h in hooks if kind_of(h) != HEADS]
                _, cache = model.run_with_cache(x, names=plain)
            finally:
                for handle in handles:
                    handle.remove()
        recorded.update({hook: cache[hook] for hook in plain})
        for hook, value in recorded.items():
            kind = kind_of(hook)
            if kind == CHANNELS:
                total, count = value.sum(0), value.shape[0]
            else:
                if kind == HEADS:
                    value = value.view(*value.shape[:-1], heads, -1)  # (B, T, heads, dh)
                weights = _real_positions(model, x, value.shape[1]).to(value)  # (B, T)
                weights = weights.view(*weights.shape, *[1] * (value.dim() - 2))
                total, count = (value * weights).sum((0, 1)), float(weights.sum())
            sums[hook] = sums.get(hook, 0) + total
            counts[hook] = counts.get(hook, 0) + count
    return {hook: sums[hook] / max(counts[hook], 1) for hook in sums}


def _real_positions(model, x: torch.Tensor, length: int) -> torch.Tensor:
    """(B, length) 1 for the positions a real token (or the class token, or a patch) sits at."""
    if x.dtype.is_floating_point:  # pictures (patches) or numeric sequences: every position is real
        return torch.ones(x.shape[0], length)
    real = (x != model.pad_id).float()  # (B, T)
    if length > real.shape[1]:  # the class token sits first and is always read
        real = torch.cat([torch.ones(x.shape[0], length - real.shape[1]), real], dim=1)
    return real


# ---- importance: every part switched off alone -----------------------------------------------
@dataclass(frozen=True)
class Importance:
    """What switching each part off alone does to one input's answer."""

    hook: str  # a pattern hook stands for every block's heads
    kind: str  # heads | channels | units
    drops: np.ndarray  # (blocks, heads) or (parts,): how much the measure fell (positive: the part helped)
    measure: str  # what fell: "probability of '<class>'" or "similarity to the output vector"
    before: float  # the measure with nothing switched off (a probability, or 1 for the similarity)


def importance(model, x: torch.Tensor, hook: str, target: int | None, mode: str = "zero",
               means: Mapping[str, torch.Tensor] | None = None, batch_rows: int = BATCH_ROWS) -> Importance:
    """For one input ``x`` (1, ...), the drop in the probability of class ``target`` when each part
    at ``hook`` is switched off alone; for a pattern hook, every head of every block (a grid).
    A model without classes (``target`` None, a sentence encoder): the drop in cosine similarity
    between its pooled vector and the one with nothing switched off."""
    _check_mode(mode, means)
    kind = kind_of(hook)
    sizes = ablatable(model)
    hooks = [h for h in sizes if kind_of(h) == HEADS] if kind == HEADS else [hook]
    if hook not in sizes:
        raise ValueError(f"'{hook}' is not a place with parts to switch off in this model")
    fills = means if mode == "mean" else None
    parts = [(h, i) for h in hooks for i in range(sizes[h])]  # one row each
    classes = target is not None
    base_logits, base_pooled = _forward(model, x, {}, None, pooled=not classes)
    measured = []
    for start in range(0, len(parts), batch_rows):
        chunk = parts[start:start + batch_rows]
        masks = {h: torch.zeros(len(chunk), sizes[h], dtype=torch.bool) for h in {h for h, _ in chunk}}
        for row, (h, i) in enumerate(chunk):
            masks[h][row, i] = True
        batch = x.expand(len(chunk), *x.shape[1:])
        logits, pooled = _forward(model, batch, masks, fills, pooled=not classes)
        if classes:
            measured.append(torch.softmax(logits.float(), -1)[:, target])
        else:
            measured.append(torch.cosine_similarity(pooled.float(), base_pooled.float(), dim=-1))
    values = torch.cat(measured).numpy()
    if classes:
        before = float(torch.softmax(base_logits.float(), -1)[0, target])
        measure = f"probability of '{model.spec.class_names[target]}'" if model.spec.class_names else "probability"
    else:
        before, measure = 1.0, "similarity to the output vector"
    drops = before - values
    if kind == HEADS:
        drops = drops.reshape(len(hooks), -1)  # (blocks, heads)
    return Importance(hook, kind, drops, measure, before)


@dataclass(frozen=True)
class Comparison:
    """One input's answer with nothing switched off and with the chosen parts switched off."""

    before: np.ndarray  # (K,) probabilities; (0,) for a model without classes
    after: np.ndarray  # (K,)
    similarity: float | None  # a model without classes: cosine similarity of its pooled vectors, after vs before


def compare(model, x: torch.Tensor, ablate: Mapping[str, Sequence[int]], mode: str = "zero",
            means: Mapping[str, torch.Tensor] | None = None) -> Comparison:
    """``model``'s answer on one input ``x`` (1, ...) before and after switching ``ablate`` off."""
    _check_mode(mode, means)
    classes = bool(model.spec.num_classes)
    before, pooled_before = _forward(model, x, {}, None, pooled=not classes)
    after, pooled_after = _forward(model, x, _masks(model, ablate, x.shape[0]), means if mode == "mean" else None,
                                   pooled=not classes)
    similarity = None if classes else float(torch.cosine_similarity(pooled_after, pooled_before, dim=-1)[0])
    return Comparison(torch.softmax(before.float(), -1)[0].numpy(), torch.softmax(after.float(), -1)[0].numpy(),
                      similarity)
