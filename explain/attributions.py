"""Captum attributions: which parts of one input made the model decide, and by how much.

Pictures get Saliency, Integrated Gradients, GradientShap, DeepLift, Occlusion, Grad-CAM and
Guided Grad-CAM (any gradient method optionally smoothed by SmoothGrad through ``NoiseTunnel``);
sentences get Layer Integrated Gradients on the word embeddings and occlusion word by word.
``Settings`` is configured once and every call reads it; results are CPU numpy in the input's
own layout, ready for ``viz/``. ``randomized_copy`` gives the model with its weights re-drawn,
for the sanity check of Adebayo et al. (2018): a faithful map changes, an edge detector's not.

Every call runs the model in eval mode and gives it back as found (``explain.model_guard``):
mode restored, no hook or DeepLift scratch tensor left behind, even when something raises.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import (DeepLift, GradientShap, GuidedGradCam, IntegratedGradients, LayerAttribution, LayerGradCam,
                         LayerIntegratedGradients, NoiseTunnel, Occlusion, Saliency)
from torch import nn

from explain.cnn import _stage_hooks
from explain.model_guard import device_of, model_left_as_found, seeded
from explain.probe import class_names_of, pad_id_of, strip_padding

IMAGE_METHODS = {
    "saliency": "Saliency", "integrated_gradients": "Integrated Gradients", "gradient_shap": "GradientShap",
    "deeplift": "DeepLift", "occlusion": "Occlusion", "grad_cam": "Grad-CAM", "guided_grad_cam": "Guided Grad-CAM",
}
TEXT_METHODS = {"integrated_gradients": "Layer Integrated Gradients (embeddings)",
                "occlusion": "Occlusion (one word at a time)"}
# What NoiseTunnel can wrap: attributions of the input computed from gradients. Grad-CAM is a
# layer method (its map lives on a conv layer) and Occlusion uses no gradient, so neither.
GRADIENT_METHODS = {"saliency", "integrated_gradients", "gradient_shap", "deeplift", "guided_grad_cam"}
# A ViT has no conv stage (no Grad-CAM) and its attention softmax is a function call, not a
# module, so DeepLift would pass straight through it as if it were linear: both left out.
VIT_METHODS = ("saliency", "integrated_gradients", "gradient_shap", "occlusion")
DEEPLIFT_ACTIVATIONS = {"relu", "leaky_relu", "tanh", "sigmoid"}  # Captum has a DeepLift rule for these, not GELU
COMPLETE_METHODS = {"integrated_gradients", "deeplift"}  # attributions add up to f(x) - f(baseline)
# Only Integrated Gradients fills Attribution.delta/total/expected_total (the page explains them
# in terms of its steps); DeepLift's sum and gap are told in its note instead.
INTERPOLATE_MODE = "bilinear"  # Grad-CAM's coarse map to the input's size, smooth as in the paper
IMAGE_NOTES = {  # plain words for the page, filled in per call
    "saliency": "How much a tiny change of each pixel would move the score of class {cls}: |∂ score / ∂ pixel|.",
    "integrated_gradients": "Gradients averaged along the straight path from the baseline (by default a black "
                            "picture) to the input, in {settings.n_steps} steps, times (input − baseline).",
    "gradient_shap": "Integrated Gradients estimated at {settings.shap_samples} random points between the baseline "
                     "and noisy copies of the input (σ = {settings.shap_stdev:.0%} of its range): an estimate of "
                     "SHAP values.",
    "deeplift": "How far each neuron moves from its value on the baseline (by default a black picture), passed "
                "back with DeepLift's rules.",
    "occlusion": "Each {settings.occlusion_window}×{settings.occlusion_window} patch (stride "
                 "{settings.occlusion_stride}) covered with the baseline in turn: how much the score of class {cls} "
                 "drops (averaged where patches overlap). Positive: hiding it hurt the class.",
    "grad_cam": "Grad-CAM on {layer} ({maps}): each map weighted by the mean gradient of the score, summed, "
                "negatives cut (ReLU), upsampled to the picture's {size}.",
    "guided_grad_cam": "Guided Backpropagation (gradients with negatives stopped at every ReLU) times Grad-CAM on "
                       "{layer}: fine detail, only where Grad-CAM looks.",
}
RANDOMIZE_SEED_OFFSET = 1_000_003  # a prime far from the small seeds models are built with


@dataclass
class Settings:
    n_steps: int = 50  # Integrated Gradients: points on the path from the baseline to the input
    internal_batch_size: int = 16  # IG / LIG: path points evaluated per forward pass (bounds memory)
    shap_samples: int = 20  # GradientShap: n_samples, random points between baseline and input
    shap_stdev: float = 0.1  # GradientShap: noise on each sample, as a fraction of the input's range (max - min)
    occlusion_window: int = 4  # Occlusion: side of the square patch covered, in pixels (sentences: always one word)
    occlusion_stride: int = 2  # Occlusion: pixels between one patch and the next
    perturbations_per_eval: int = 32  # Occlusion: occluded copies per forward pass (bounds memory)
    grad_cam_layer: str | None = None  # a name from gradcam_layers(model); None = the last conv stage
    smoothgrad: bool = False  # wrap a gradient method in NoiseTunnel(nt_type="smoothgrad")
    smoothgrad_samples: int = 10  # SmoothGrad: noisy copies averaged (nt_samples)
    smoothgrad_stdev: float = 0.2  # SmoothGrad: noise as a fraction of the input's range, as in Smilkov et al. 2017
    seed: int = 0  # noise and random samples are drawn from this seed: the same settings redraw the same map


@dataclass
class Attribution:
    method: str  # key of IMAGE_METHODS / TEXT_METHODS
    label: str  # "Integrated Gradients", "SmoothGrad · Saliency", "Grad-CAM (conv.1.act)"
    target: int  # the class explained
    values: np.ndarray  # images: (C, H, W) in input space, Grad-CAM (1, H, W); sentences: (T,) one score per word
    delta: float | None = None  # IG / LIG without SmoothGrad: convergence delta, total - expected_total
    total: float | None = None  # IG / LIG: the sum of the attributions (set exactly when delta is)
    expected_total: float | None = None  # IG / LIG: f(x)[target] - f(baseline)[target], what total should be
    note: str = ""  # plain words for the page: what was computed, on what


# ---- what a model supports -------------------------------------------------------------------

def available_methods(model) -> dict[str, str]:
    """Method key -> label, for the methods that make sense on ``model``."""
    spec = model.spec
    if spec.num_classes < 1:
        return {}  # a pretrained encoder without a classification head: no class score to explain
    if spec.input.kind == "tokens":
        return dict(TEXT_METHODS)
    if spec.input.kind != "image":
        return {}  # sequences of numbers: no page shows them yet
    if spec.kind != "cnn":
        return {key: IMAGE_METHODS[key] for key in VIT_METHODS}
    activations = {layer.activation for layer in spec.layers if layer.type == "act"}
    activations |= set(getattr(model, "nonlinearities", ()))  # a pretrained ResNet's, from its config
    methods = dict(IMAGE_METHODS)
    if not activations <= DEEPLIFT_ACTIVATIONS:
        del methods["deeplift"]  # Captum would treat the unsupported activation as linear: wrong numbers
    if not gradcam_layers(model):
        del methods["grad_cam"], methods["guided_grad_cam"]
    return methods


def gradcam_layers(model) -> list[str]:
    """Hook names of each conv stage's output as the next layer receives it, in order."""
    if model.spec.kind != "cnn":
        return []
    if hasattr(model, "stage_names"):  # a pretrained ResNet: its stem and stage outputs (conv.{i}.out)
        return [name for name in model.stage_names() if name.startswith("conv.")]
    if not hasattr(model, "order"):
        return []
    return [_stage_hooks(model.conv[index], f"conv.{index}")[-1] for group, index in model.order if group == "conv"]


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


# ---- the calls the page makes -------------------------------------------------------------------

def predicted_class(model, x) -> int:
    x = _check_input(model, x)
    with model_left_as_found(model) as device, torch.no_grad():
        return int(model(x.unsqueeze(0).to(device)).argmax(dim=-1)[0])


def attribute(model, x: torch.Tensor, target: int | None, method: str, settings: Settings | None = None,
              baseline: torch.Tensor | None = None) -> Attribution:
    """One method on one input: ``x`` is a (C, H, W) picture or (T,) token ids (trailing <pad>
    dropped). ``target`` None means the predicted class. ``baseline``: pictures, the reference
    picture (default: black in the model's normalisation, when its checkpoint has one, else
    zeros); sentences, reference ids (default: all <pad>)."""
    settings = settings or Settings()
    _check_method(model, method)
    x = _check_input(model, x)
    target = predicted_class(model, x) if target is None else _check_target(model, target)
    if baseline is None:
        normalization = (getattr(model, "meta", None) or {}).get("normalization")
        baseline = image_baseline(x, normalization) if x.dim() == 3 else torch.full_like(x, pad_id_of(model))
    baseline = torch.as_tensor(baseline).to(x.dtype)
    if baseline.shape != x.shape:
        raise ValueError(f"the baseline has shape {tuple(baseline.shape)}, the input {tuple(x.shape)}: they must match")
    with model_left_as_found(model) as device, seeded(settings.seed, device):
        x, baseline = x.to(device), baseline.to(device)
        if model.spec.input.kind == "tokens":
            return _token_attribution(model, x, target, method, settings, baseline)
        return _image_attribution(model, x, target, method, settings, baseline)


def attribute_many(model, x, target: int | None, methods: list[str], settings: Settings | None = None,
                   baseline: torch.Tensor | None = None,
                   progress: Callable[[int, int, str], None] | None = None) -> list[Attribution]:
    """``attribute`` for each method, all for the same target (predicted when None).
    ``progress(done, total, label)`` is called before each method (done = methods finished)."""
    settings = settings or Settings()
    for method in methods:
        _check_method(model, method)  # a bad list fails before minutes of work, not after
    target = predicted_class(model, x) if target is None else _check_target(model, target)
    results = []
    for done, method in enumerate(methods):
        if progress is not None:
            progress(done, len(methods), _label(model, method, settings))
        results.append(attribute(model, x, target, method, settings, baseline))
    return results


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


# ---- pictures ---------------------------------------------------------------------------------

def _image_attribution(model, x, target, method, settings, baseline) -> Attribution:
    inputs, baselines = x.unsqueeze(0), baseline.unsqueeze(0)  # (1, C, H, W) each: a batch of one
    value_range = float(x.max() - x.min()) or 1.0  # noise is scaled to it, so 0.2 means the same on any input
    layer = _gradcam_layer(model, settings) if method in ("grad_cam", "guided_grad_cam") else None
    explainer, options = _image_explainer(model, method, x, baselines, settings, layer, value_range)
    class_name = class_names_of(model)[target]
    maps = _layer_maps(model, layer) if layer else ""
    note = IMAGE_NOTES[method].format(cls=class_name, settings=settings, layer=layer, maps=maps,
                                      size=f"{x.shape[1]}×{x.shape[2]}")
    smooth = settings.smoothgrad and method in GRADIENT_METHODS
    if smooth:
        explainer = NoiseTunnel(explainer)
        # Noisy copies per pass: IG splits copies × steps into internal_batch_size rows itself;
        # GradientShap cannot, and makes shap_samples rows of each copy.
        per_copy = settings.shap_samples if method == "gradient_shap" else 1
        batch = max(1, min(settings.smoothgrad_samples, settings.internal_batch_size // per_copy))
        options.update(nt_type="smoothgrad", nt_samples=settings.smoothgrad_samples, nt_samples_batch_size=batch,
                       stdevs=settings.smoothgrad_stdev * value_range)
        note = (f"SmoothGrad: the average over {settings.smoothgrad_samples} copies of the input with noise of "
                f"σ = {settings.smoothgrad_stdev:.0%} of its range. " + note)
    complete = method in COMPLETE_METHODS
    if complete:
        options["return_convergence_delta"] = True
    result = explainer.attribute(inputs, target=target, **options)
    values, delta = result if complete else (result, None)
    values, total, expected_total = values.detach(), None, None  # DeepLift's come back attached to the graph
    if method == "grad_cam":
        coarse = values  # (1, 1, h, w) on the layer
        values = LayerAttribution.interpolate(coarse, tuple(x.shape[1:]), INTERPOLATE_MODE)  # (1, 1, H, W)
        if not bool(coarse.gt(0).any()):
            note += f" Every weighted sum is negative here: this layer shows no evidence for class {class_name}."
    if complete and smooth:  # one delta per noisy copy, each against its own f(copy): no single total to check
        note += f" Largest convergence delta over the noisy copies: {float(delta.abs().max()):.1e}."
        delta = None
    elif complete:
        delta, total = float(delta.reshape(-1)[0]), float(values.sum())
        with torch.no_grad():
            scores = model(torch.cat([inputs, baselines]))[:, target]  # (2,): f(x), f(baseline)
        expected_total = float(scores[0] - scores[1])
        if method == "deeplift":
            note += _deeplift_sum_note(total, expected_total, delta)
            delta = total = expected_total = None
    return Attribution(method, _label(model, method, settings), target, _numpy(values[0]), delta, total,
                       expected_total, note)


def _image_explainer(model, method, x, baselines, settings, layer, value_range) -> tuple[object, dict]:
    """(the Captum object, the arguments its ``attribute`` takes besides inputs and target)."""
    if method == "saliency":
        return Saliency(model), {"abs": True}
    if method == "integrated_gradients":
        return IntegratedGradients(model), {"baselines": baselines, "n_steps": settings.n_steps,
                                            "internal_batch_size": settings.internal_batch_size}
    if method == "gradient_shap":  # the baseline distribution is the one baseline; the noise makes the spread
        return GradientShap(model), {"baselines": baselines, "n_samples": settings.shap_samples,
                                     "stdevs": settings.shap_stdev * value_range}
    if method == "deeplift":
        return DeepLift(model), {"baselines": baselines}
    if method == "occlusion":
        window, stride = _occlusion_geometry(x, settings)
        channels = x.shape[0]  # a patch covers every channel of its pixels at once
        return Occlusion(model), {"sliding_window_shapes": (channels, window, window),
                                  "strides": (channels, stride, stride), "baselines": baselines,
                                  "perturbations_per_eval": settings.perturbations_per_eval}
    if method == "grad_cam":  # Captum leaves out the paper's ReLU by default; it is asked for here
        return LayerGradCam(model, model.hook_points()[layer]), {"relu_attributions": True}
    return GuidedGradCam(model, model.hook_points()[layer]), {"interpolate_mode": INTERPOLATE_MODE}


def _layer_maps(model, layer: str) -> str:
    """"16 maps of 8×8": a conv stage's output, read from the spec's layer table (output (16, 8, 8))
    (a pretrained ResNet has no table: it measured its stages' shapes when it was loaded)."""
    shapes = getattr(model, "stage_shapes", None)
    if shapes:
        channels, height, width = shapes[layer]
        return f"{channels} maps of {height}×{width}"
    rows = {row.name: row.output for row in model.spec.layer_table()}
    channels, height, width = rows[layer.rsplit(".", 1)[0]]
    return f"{channels} maps of {height}×{width}"


def _occlusion_geometry(x: torch.Tensor, settings: Settings) -> tuple[int, int]:
    window, stride, side = settings.occlusion_window, settings.occlusion_stride, min(x.shape[1:])
    if not 1 <= window <= side:
        raise ValueError(f"the occlusion window must be between 1 and {side} pixels for this "
                         f"{x.shape[1]}×{x.shape[2]} picture, not {window}")
    if stride < 1:
        raise ValueError(f"the occlusion stride must be at least 1 pixel, not {stride}")
    return window, stride


def _gradcam_layer(model, settings: Settings) -> str:
    layers = gradcam_layers(model)
    if settings.grad_cam_layer is None:
        return layers[-1]
    if settings.grad_cam_layer not in layers:
        raise ValueError(f"Grad-CAM needs one of this model's conv stages ({', '.join(layers)}), "
                         f"not '{settings.grad_cam_layer}'")
    return settings.grad_cam_layer


# ---- sentences --------------------------------------------------------------------------------

def _token_attribution(model, ids, target, method, settings, baseline) -> Attribution:
    """Layer Integrated Gradients on the embedding, or occlusion word by word (by hand: Captum's
    Occlusion replaces values arithmetically, which means nothing for integer token ids; here
    each word is swapped for the baseline's id, ``perturbations_per_eval`` sentences a pass)."""
    batch, references = ids.unsqueeze(0), baseline.unsqueeze(0)  # (1, T) each
    class_name = class_names_of(model)[target]
    with torch.no_grad():
        score = model(batch)[0, target]
    if method == "occlusion":
        length = len(ids)
        positions = torch.arange(length, device=ids.device)
        occluded = batch.repeat(length, 1)  # (T, T): row i is the sentence with word i swapped
        occluded[positions, positions] = baseline
        with torch.no_grad():
            step = max(1, settings.perturbations_per_eval)
            scores = torch.cat([model(occluded[start:start + step])[:, target] for start in range(0, length, step)])
        note = (f"Each word replaced by <pad> in turn: how much the score of class {class_name} drops. "
                "Positive: the word pushed towards the class.")
        return Attribution(method, _label(model, method, settings), target, _numpy(score - scores), note=note)
    embedding = model.embed.tokens
    explainer = LayerIntegratedGradients(model, embedding)
    values = explainer.attribute(batch, baselines=references, target=target, n_steps=settings.n_steps,
                                 internal_batch_size=settings.internal_batch_size)  # (1, T, E)
    scores = values.sum(dim=-1)[0]  # (T,): each word's share, summed over its embedding vector
    # Captum's own delta compares with the model run on the baseline ids, whose padding mask
    # hides every word; the path it integrates keeps the sentence's mask and changes only the
    # vectors. So the reference is the model on the real ids with the baseline's vectors.
    with torch.no_grad():
        start = _with_embeddings(model, embedding, batch, references)[0, target]
    total, expected_total = float(scores.sum()), float(score - start)
    note = (f"Gradients of the score of class {class_name} with respect to each word's vector, averaged along the "
            f"path from <pad>'s vector to the word's in {settings.n_steps} steps, times the difference, summed over "
            "the vector. The baseline is the same sentence with every word's vector replaced by <pad>'s, "
            "the model still reading as many words (Captum's own delta would compare with a sentence of nothing "
            "but padding, which the model reads differently).")
    return Attribution(method, _label(model, method, settings), target, _numpy(scores), total - expected_total,
                       total, expected_total, note)


def _with_embeddings(model, embedding: nn.Module, ids: torch.Tensor, replacement_ids: torch.Tensor) -> torch.Tensor:
    """The model's logits on ``ids`` with the embedding's output swapped for that of ``replacement_ids``."""
    swapped = embedding(replacement_ids)  # (B, T, E)
    handle = embedding.register_forward_hook(lambda module, inputs, output: swapped)
    try:
        return model(ids)
    finally:
        handle.remove()


# ---- checks and labels --------------------------------------------------------------------------

NOT_EXPLAINABLE = "attributions need a model that reads pictures or sentences; this one reads sequences of numbers"
NO_CLASSIFIER = ("attributions explain the score of a class, and this model has no classifier (it turns sentences "
                 "into vectors); load one with a classification head, such as an SST-2 sentiment model")
NO_IMAGE_CLASSIFIER = ("attributions explain the score of a class, and this model has no classifier (it turns "
                       "pictures into vectors); load one with an image-classification head, such as an ImageNet "
                       "ResNet or ViT")


def _check_method(model, method: str) -> None:
    if model.spec.num_classes < 1:
        raise ValueError(NO_IMAGE_CLASSIFIER if model.spec.input.kind == "image" else NO_CLASSIFIER)
    methods = available_methods(model)
    if not methods:
        raise ValueError(NOT_EXPLAINABLE)
    if method not in methods:
        raise ValueError(f"'{method}' is not available for this {model.spec.family()}; "
                         f"choose one of {', '.join(methods)}")


def _check_input(model, x) -> torch.Tensor:
    inp = model.spec.input
    x = torch.as_tensor(x)
    if inp.kind == "image":
        expected = (inp.channels, inp.height, inp.width)
        if tuple(x.shape) != expected:
            raise ValueError(f"this model reads {inp.channels}×{inp.height}×{inp.width} pictures "
                             f"(channels × height × width), not an input of shape {tuple(x.shape)}")
        return x.detach().float()
    if inp.kind != "tokens":
        raise ValueError(NOT_EXPLAINABLE)
    if x.dim() != 1 or x.dtype.is_floating_point or x.dtype == torch.bool:
        raise ValueError(f"a sentence is a row of whole-number token ids, not a {x.dtype} tensor "
                         f"of shape {tuple(x.shape)}")
    ids = strip_padding(x, pad_id_of(model))
    if bool((ids == pad_id_of(model)).all()):
        raise ValueError("the sentence has no words to explain")
    if len(ids) > inp.max_len:
        raise ValueError(f"the sentence has {len(ids)} tokens; this model reads at most {inp.max_len}")
    if int(ids.min()) < 0 or int(ids.max()) >= inp.vocab_size:
        raise ValueError(f"token ids must be between 0 and {inp.vocab_size - 1} for this model's vocabulary")
    return ids


def _check_target(model, target) -> int:
    classes = model.spec.num_classes
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise ValueError(f"the class to explain must be a class number, not {target!r}")
    if not 0 <= int(target) < classes:
        raise ValueError(f"there is no class {target}: this model's classes are numbered 0 to {classes - 1}")
    return int(target)


def _label(model, method: str, settings: Settings) -> str:
    if model.spec.input.kind == "tokens":
        return TEXT_METHODS[method]
    label = IMAGE_METHODS[method]
    if method in ("grad_cam", "guided_grad_cam"):
        label += f" ({_gradcam_layer(model, settings)})"
    return f"SmoothGrad · {label}" if settings.smoothgrad and method in GRADIENT_METHODS else label


def _deeplift_sum_note(total: float, expected_total: float, delta: float) -> str:
    return (f" The attributions add up to {total:.4f}; f(input) − f(baseline) is {expected_total:.4f}. The gap is "
            f"{delta:.1e}: DeepLift's rules make it 0 except at max-pooling, whose rule is approximate.")


def _numpy(values: torch.Tensor) -> np.ndarray:
    return values.detach().float().cpu().numpy()
