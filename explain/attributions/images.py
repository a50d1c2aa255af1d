"""Attributions of a picture: every method of ``IMAGE_METHODS`` on one (C, H, W) input.

Any gradient method may be smoothed by SmoothGrad (Captum's ``NoiseTunnel``); noise is scaled
to the input's range, so a setting of 0.2 means the same on any picture. Grad-CAM's coarse map
is upsampled to the picture's size. The rest of the CAM family (``cams``) and a ViT's patch maps
(``patches``) are computed by hand and only handed on from here. The result is in the picture's
own layout, ready for viz.
"""
from __future__ import annotations

import torch
from captum.attr import LayerAttribution, NoiseTunnel

from explain.predictions import class_names_of

from .cams import CAMS, INTERPOLATE_MODE, cam_attribution
from .methods import IMAGE_METHODS, Attribution, Settings, gradcam_layer, label_of
from .patches import patch_attribution


def image_baseline(x: torch.Tensor, normalization: dict | None) -> torch.Tensor:
    """The all-black picture in the model's input space, shaped like ``x`` (C, H, W)."""
    if x.dim() != 3:
        raise ValueError(f"a picture has shape (channels, height, width), not {tuple(x.shape)}")
    if not normalization:
        return torch.zeros_like(x)
    mean = torch.as_tensor(normalization["mean"], dtype=x.dtype, device=x.device)
    std = torch.as_tensor(normalization["std"], dtype=x.dtype, device=x.device)
    if mean.numel() != x.shape[0] or std.numel() != x.shape[0]:
        raise ValueError(f"the normalisation has {mean.numel()} means and {std.numel()} deviations "
                         f"for a picture of {x.shape[0]} channel(s)")
    return ((0.0 - mean) / std).view(-1, 1, 1).expand_as(x).clone()  # (C,) -> (C, H, W)


def image_attribution(model, x, target, method, settings, baseline) -> Attribution:
    """One method on one checked picture ``x`` (C, H, W) against ``baseline`` (C, H, W), both on
    the model's device; the caller holds the model (``explain.model_guard``)."""
    entry = IMAGE_METHODS[method]
    if method in CAMS:  # written by hand (no library without torchvision has them)
        return cam_attribution(model, x, target, method, settings)
    if entry.patches:
        return patch_attribution(model, x, target, method, settings)
    inputs, baselines = x.unsqueeze(0), baseline.unsqueeze(0)  # (1, C, H, W) each: a batch of one
    value_range = float(x.max() - x.min()) or 1.0  # noise is scaled to it, so 0.2 means the same on any input
    layer = gradcam_layer(model, settings) if entry.layer else None
    explainer = entry.captum_class(model, model.hook_points()[layer]) if layer else entry.captum_class(model)
    options = _captum_arguments(method, x, baselines, settings, value_range)
    class_name = class_names_of(model)[target]
    maps = _layer_maps(model, layer) if layer else ""
    note = entry.note.format(cls=class_name, settings=settings, layer=layer, maps=maps,
                             size=f"{x.shape[1]}×{x.shape[2]}")
    smooth = settings.smoothgrad and entry.gradients
    if smooth:
        explainer = NoiseTunnel(explainer)
        # Noisy copies per pass: IG splits copies × steps into internal_batch_size rows itself;
        # GradientShap cannot, and makes n_samples rows of each copy.
        per_copy = settings.n_samples if method == "gradient_shap" else 1
        batch = max(1, min(settings.nt_samples, settings.internal_batch_size // per_copy))
        options.update(nt_type="smoothgrad", nt_samples=settings.nt_samples, nt_samples_batch_size=batch,
                       stdevs=settings.nt_stdevs * value_range)
        note = (f"SmoothGrad: the average over {settings.nt_samples} copies of the input with noise of "
                f"σ = {settings.nt_stdevs:.0%} of its range. " + note)
    if entry.additive:
        options["return_convergence_delta"] = True
    result = explainer.attribute(inputs, target=target, **options)
    values, delta = result if entry.additive else (result, None)
    values, total, expected_total = values.detach(), None, None  # DeepLift's come back attached to the graph
    if method == "grad_cam":
        coarse = values  # (1, 1, h, w) on the layer
        values = LayerAttribution.interpolate(coarse, tuple(x.shape[1:]), INTERPOLATE_MODE)  # (1, 1, H, W)
        if not bool(coarse.gt(0).any()):
            note += f" Every weighted sum is negative here: this layer shows no evidence for class {class_name}."
    if entry.additive and smooth:  # one delta per noisy copy, each against its own f(copy): no single total to check
        note += f" Largest convergence delta over the noisy copies: {float(delta.abs().max()):.1e}."
        delta = None
    elif entry.additive:
        delta, total = float(delta.reshape(-1)[0]), float(values.sum())
        with torch.no_grad():
            scores = model(torch.cat([inputs, baselines]))[:, target]  # (2,): f(x), f(baseline)
        expected_total = float(scores[0] - scores[1])
        if not entry.integrates:  # DeepLift: the page explains a delta in steps, so its sum and gap go in the note
            note += _sum_note(total, expected_total, delta)
            delta = total = expected_total = None
    return Attribution(method, label_of(model, method, settings), target, values[0].detach().float().cpu().numpy(),
                       delta, total, expected_total, note)


def _captum_arguments(method, x, baselines, settings: Settings, value_range: float) -> dict:
    """What the Captum object's ``attribute`` takes besides inputs and target."""
    if method == "saliency":
        return {"abs": True}
    if method == "integrated_gradients":
        return {"baselines": baselines, "n_steps": settings.n_steps,
                "internal_batch_size": settings.internal_batch_size}
    if method == "gradient_shap":  # the baseline distribution is the one baseline; the noise makes the spread
        return {"baselines": baselines, "n_samples": settings.n_samples, "stdevs": settings.stdevs * value_range}
    if method == "deeplift":
        return {"baselines": baselines}
    if method == "occlusion":
        window, stride = _occlusion_geometry(x, settings)
        channels = x.shape[0]  # a patch covers every channel of its pixels at once
        return {"sliding_window_shapes": (channels, window, window), "strides": (channels, stride, stride),
                "baselines": baselines, "perturbations_per_eval": settings.perturbations_per_eval}
    if method == "grad_cam":  # Captum leaves out the paper's ReLU by default; it is asked for here
        return {"relu_attributions": True}
    return {"interpolate_mode": INTERPOLATE_MODE}  # guided_grad_cam


def _layer_maps(model, layer: str) -> str:
    """"16 maps of 8×8": a conv stage's output, as the model declares its shape."""
    channels, height, width = model.activation_shape(layer)
    return f"{channels} maps of {height}×{width}"


def _occlusion_geometry(x: torch.Tensor, settings: Settings) -> tuple[int, int]:
    window, stride, side = settings.occlusion_window, settings.occlusion_stride, min(x.shape[1:])
    if not 1 <= window <= side:
        raise ValueError(f"the occlusion window must be between 1 and {side} pixels for this "
                         f"{x.shape[1]}×{x.shape[2]} picture, not {window}")
    if stride < 1:
        raise ValueError(f"the occlusion stride must be at least 1 pixel, not {stride}")
    return window, stride


def _sum_note(total: float, expected_total: float, delta: float) -> str:
    return (f" The attributions add up to {total:.4f}; f(input) − f(baseline) is {expected_total:.4f}. The gap is "
            f"{delta:.1e}: DeepLift's rules make it 0 except at max-pooling, whose rule is approximate.")
