"""The attribution methods, one table entry each, and what a model offers of them.

An entry says which Captum class computes the method and what kind of method it is: whether it
is built on a layer of the model, whether it works from gradients (so SmoothGrad can wrap it),
and whether its scores add up to f(input) − f(baseline). ``Settings`` holds every knob, named
as the Captum argument it becomes; ``Attribution`` is one result.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from captum.attr import (DeepLift, GradientShap, GuidedGradCam, IntegratedGradients, LayerGradCam,
                         LayerGradientXActivation, LayerIntegratedGradients, Occlusion, Saliency)



@dataclass(frozen=True)
class Method:
    label: str  # what the page calls it
    captum_class: type | None  # what computes it; None: computed here (words occluded, the CAMs, the ViT's maps)
    note: str  # plain words for the page, formatted per call with cls, settings, layer, maps, size
    layer: bool = False  # built on a layer of the model: a conv stage (Grad-CAM) or the word embeddings
    gradients: bool = False  # computed from gradients, so NoiseTunnel (SmoothGrad) can wrap it
    additive: bool = False  # the scores add up to f(input) − f(baseline), up to a convergence delta
    integrates: bool = False  # a path integral in Settings.n_steps: its delta (shown) shrinks with more steps
    needs_rules: bool = False  # DeepLift: Captum needs a rule for every nonlinearity, and each must be a module
    patches: bool = False  # needs attention over image patches (a ViT): attention rollout, Grad-CAM on patch tokens


IMAGE_METHODS = {
    "saliency": Method(
        "Saliency", Saliency, gradients=True,
        note="How much a tiny change of each pixel would move the score of class {cls}: |∂ score / ∂ pixel|."),
    "integrated_gradients": Method(
        "Integrated Gradients", IntegratedGradients, gradients=True, additive=True, integrates=True,
        note="Gradients averaged along the straight path from the baseline (by default a black picture) to the "
             "input, in {settings.n_steps} steps, times (input − baseline)."),
    "gradient_shap": Method(
        "GradientShap", GradientShap, gradients=True,
        note="Integrated Gradients estimated at {settings.n_samples} random points between the baseline and noisy "
             "copies of the input (σ = {settings.stdevs:.0%} of its range): an estimate of SHAP values."),
    "deeplift": Method(
        "DeepLift", DeepLift, gradients=True, additive=True, needs_rules=True,
        note="How far each neuron moves from its value on the baseline (by default a black picture), passed back "
             "with DeepLift's rules."),
    "occlusion": Method(
        "Occlusion", Occlusion,
        note="Each {settings.occlusion_window}×{settings.occlusion_window} patch (stride {settings.occlusion_stride}) "
             "covered with the baseline in turn: how much the score of class {cls} drops (averaged where patches "
             "overlap). Positive: hiding it hurt the class."),
    # Grad-CAM is a layer method (its map lives on a conv layer), so NoiseTunnel cannot wrap it.
    "grad_cam": Method(
        "Grad-CAM", LayerGradCam, layer=True,
        note="Grad-CAM on {layer} ({maps}): each map weighted by the mean gradient of the score, summed, negatives "
             "cut (ReLU), upsampled to the picture's {size}."),
    "guided_grad_cam": Method(
        "Guided Grad-CAM", GuidedGradCam, layer=True, gradients=True,
        note="Guided Backpropagation (gradients with negatives stopped at every ReLU) times Grad-CAM on {layer}: "
             "fine detail, only where Grad-CAM looks."),
    # The rest of the CAM family: not in Captum, so written by hand in explain.attributions.cams.
    "grad_cam_plus_plus": Method(
        "Grad-CAM++", None, layer=True,
        note="Grad-CAM++ on {layer} ({maps}): as Grad-CAM, but each map's weight adds up only its positive "
             "gradients, each weighted by α = g² / (2g² + ΣA·g³) (Chattopadhay et al. 2018), so that several "
             "separate parts showing class {cls} all count; negatives cut, upsampled to {size}."),
    "hires_cam": Method(
        "HiResCAM", None, layer=True,
        note="HiResCAM on {layer} ({maps}): each map times its gradient position by position (not the gradient's "
             "mean, as Grad-CAM), summed over the maps, negatives cut, upsampled to {size} (Draelos & Carin 2020): "
             "where the score of class {cls} comes from on this layer."),
    "xgrad_cam": Method(
        "XGrad-CAM", None, layer=True,
        note="XGrad-CAM on {layer} ({maps}): each map weighted by Σ gradient × activation / Σ activation "
             "(Fu et al. 2020), summed, negatives cut, upsampled to {size}."),
    "layer_cam": Method(
        "LayerCAM", None, layer=True,
        note="LayerCAM on {layer} ({maps}): each map times its positive gradients position by position "
             "(Jiang et al. 2021), summed, negatives cut, upsampled to {size}: finer than Grad-CAM on early layers."),
    "score_cam": Method(
        "Score-CAM", None, layer=True,
        note="Score-CAM on {layer} ({maps}): no gradients. The picture is multiplied by each map (upsampled, scaled "
             "to 0–1), and each map weighted by the probability the model then gives class {cls} (Wang et al. "
             "2020); summed, negatives cut, upsampled to {size}. One masked picture per map."),
    "ablation_cam": Method(
        "Ablation-CAM", None, layer=True,
        note="Ablation-CAM on {layer} ({maps}): each map set to zero in turn; how much the score of class {cls} "
             "drops, as a fraction of the score, weights the map (Desai & Ramaswamy 2020); summed, negatives cut, "
             "upsampled to {size}. One forward pass per map."),
    "eigen_cam": Method(
        "Eigen-CAM", None, layer=True,
        note="Eigen-CAM on {layer} ({maps}): the first principal component of the maps, position by position "
             "(Muhammad & Yeasin 2020), negatives cut, upsampled to {size}. It uses no class and no gradient: "
             "the same map for every class."),
    # A vision transformer's own maps, written by hand in explain.attributions.patches.
    "attention_rollout": Method(
        "Attention rollout", None, patches=True,
        note="Attention rollout (Abnar & Zuidema 2020): each of the {blocks} blocks' attention averaged over its "
             "heads, with the residual connection counted as half (0.5·A + 0.5·I), multiplied through the blocks; "
             "how much the [CLS] token (or, for a model that averages its tokens, every token) draws from each of "
             "the {grid} patches, upsampled to {size}. It uses no class: the same map for every class."),
    "vit_grad_cam": Method(
        "Grad-CAM (patch tokens)", None, patches=True,
        note="Grad-CAM on the tokens the last block reads ({layer}): each of the {width} features of the {grid} "
             "patch tokens weighted by its mean gradient for class {cls}, summed per patch, negatives cut, "
             "upsampled to {size}."),
}
TEXT_METHODS = {
    "integrated_gradients": Method(
        "Layer Integrated Gradients (embeddings)", LayerIntegratedGradients, layer=True, gradients=True,
        additive=True, integrates=True,
        note="Gradients of the score of class {cls} with respect to each word's vector, averaged along the path "
             "from <pad>'s vector to the word's in {settings.n_steps} steps, times the difference, summed over the "
             "vector. The baseline is the same sentence with every word's vector replaced by <pad>'s, the model "
             "still reading as many words (Captum's own delta would compare with a sentence of nothing but "
             "padding, which the model reads differently)."),
    # Captum's Occlusion replaces values arithmetically, which means nothing for integer token ids.
    "occlusion": Method(
        "Occlusion (one word at a time)", None,
        note="Each word replaced by <pad> in turn: how much the score of class {cls} drops. Positive: the word "
             "pushed towards the class."),
    "gradient_x_activation": Method(
        "Gradient × embedding", LayerGradientXActivation, layer=True, gradients=True,
        note="The gradient of the score of class {cls} with respect to each word's vector, times the vector, "
             "summed over it (Captum's LayerGradientXActivation on the word embeddings): the slope at this "
             "sentence only, where Integrated Gradients follows the whole path from <pad>."),
}
DEEPLIFT_ACTIVATIONS = {"relu", "leaky_relu", "tanh", "sigmoid"}  # Captum has a DeepLift rule for these, not GELU


@dataclass
class Settings:
    n_steps: int = 50  # Integrated Gradients: points on the path from the baseline to the input
    internal_batch_size: int = 16  # IG / LIG: path points evaluated per forward pass (bounds memory)
    n_samples: int = 20  # GradientShap: random points between baseline and input
    stdevs: float = 0.1  # GradientShap: noise on each sample, as a fraction of the input's range (max - min)
    # Occlusion: a square patch; Captum gets sliding_window_shapes=(C, w, w) and strides=(C, s, s)
    occlusion_window: int = 4  # side of the patch covered, in pixels (sentences: always one word)
    occlusion_stride: int = 2  # pixels between one patch and the next
    perturbations_per_eval: int = 32  # Occlusion, Score-CAM, Ablation-CAM: changed copies per forward pass (bounds memory)
    grad_cam_layer: str | None = None  # a name from gradcam_layers(model); None = the last conv stage
    smoothgrad: bool = False  # wrap a gradient method in NoiseTunnel(nt_type="smoothgrad")
    nt_samples: int = 10  # SmoothGrad: noisy copies averaged
    nt_stdevs: float = 0.2  # SmoothGrad: NoiseTunnel's stdevs as a fraction of the input's range (Smilkov et al. 2017)
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


def available_methods(model) -> dict[str, Method]:
    """Method key -> its entry, for the methods that make sense on ``model``."""
    spec = model.spec
    if spec.num_classes < 1:
        return {}  # a pretrained encoder without a classification head: no class score to explain
    if spec.input.kind == "tokens":
        return dict(TEXT_METHODS)
    if spec.input.kind != "image":
        return {}  # sequences of numbers: no page shows them yet
    # A ViT has no conv stage (no Grad-CAM) and its attention softmax is a function call, not a
    # module, so DeepLift would pass straight through it as if it were linear: both left out.
    rules = spec.kind == "cnn"
    if rules:
        rules = model.activation_functions() <= DEEPLIFT_ACTIVATIONS  # else Captum would treat an activation as linear: wrong numbers
    layers = bool(gradcam_layers(model))
    patches = model.patch_grid() is not None
    return {key: method for key, method in IMAGE_METHODS.items()
            if (layers or not method.layer) and (rules or not method.needs_rules) and (patches or not method.patches)}


def gradcam_layers(model) -> list[str]:
    """Hook names of each conv stage's output as the next layer receives it, in order (as the
    model declares them: a Glassbox CNN's conv stages, a pretrained ResNet's stem and stages)."""
    return model.gradcam_layers()


def gradcam_layer(model, settings: Settings) -> str:
    """The conv stage a layer method is computed on: the chosen one, or the last."""
    layers = gradcam_layers(model)
    if settings.grad_cam_layer is None:
        return layers[-1]
    if settings.grad_cam_layer not in layers:
        raise ValueError(f"Grad-CAM needs one of this model's conv stages ({', '.join(layers)}), "
                         f"not '{settings.grad_cam_layer}'")
    return settings.grad_cam_layer


def label_of(model, method: str, settings: Settings) -> str:
    """What a result is called on the page: the method, its layer, and SmoothGrad when it wraps it."""
    if model.spec.input.kind == "tokens":
        return TEXT_METHODS[method].label
    entry = IMAGE_METHODS[method]
    label = f"{entry.label} ({gradcam_layer(model, settings)})" if entry.layer else entry.label
    return f"SmoothGrad · {label}" if settings.smoothgrad and entry.gradients else label
