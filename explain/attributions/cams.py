"""The CAM family: maps of where, on one layer's feature maps, the evidence for a class lies.

Written here by hand: Grad-CAM++ (Chattopadhay et al. 2018), HiResCAM (Draelos & Carin 2020),
XGrad-CAM (Fu et al. 2020), LayerCAM (Jiang et al. 2021), Score-CAM (Wang et al. 2020),
Ablation-CAM (Desai & Ramaswamy 2020), Eigen-CAM (Muhammad & Yeasin 2020), and plain Grad-CAM
for a vision transformer's patch tokens (``explain.attributions.patches``). None of them is in
Captum (its ``LayerGradCam`` is Grad-CAM alone, which stays Captum's for ``grad_cam`` on conv
stages), and pytorch-grad-cam, which has them all, needs torchvision, which cannot be installed
here. They keep pytorch-grad-cam's shape: ``BaseCAM`` owns the hook on the chosen layer (a hook
point of the model, e.g. ``conv.1.act``), the forward and backward pass, the ReLU and the
upsampling to the picture; each variant overrides only how it weights the maps (``weights``),
or, for those that weight every position on its own, how it combines them (``combine``).

Choices where the papers leave room (each test in tests/test_cams.py writes the formula out):
- Grad-CAM++ uses the paper's closed form for an exponential score Y = exp(S) (its eq. 19):
  there the 2nd and 3rd derivatives are exp(S)·g² and exp(S)·g³ (g = ∂S/∂A, whose own higher
  derivatives vanish past ReLUs), so α = g² / (2g² + Σ A·g³); the common factor exp(S) of the
  weights is dropped, which scales the map and changes nothing else (pytorch-grad-cam does the same).
- Score-CAM weights each map by the softmax probability of the class on the picture masked by
  that map (scaled to 0–1 and upsampled), as the authors' own code does; a flat map masks
  nothing and gets weight 0.
- Eigen-CAM projects each position's activations (centred over positions) on their first
  principal component; the component's sign, which SVD leaves arbitrary, is chosen so that the
  projection grows with the position's total activation.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from explain.predictions import class_names_of

from .methods import IMAGE_METHODS, Attribution, Settings, gradcam_layer, label_of

INTERPOLATE_MODE = "bilinear"  # a coarse map to the input's size, smooth as in the Grad-CAM paper

# (1, T, D) tokens -> (1, D, rows, cols): how a non-convolutional layer's output becomes maps
Reshape = Callable[[torch.Tensor], torch.Tensor]


class BaseCAM:
    """One forward pass with ``layer``'s output kept, the class score's gradient with respect to
    it, weights from a subclass, then ReLU and upsampling. Call with a (1, C, H, W) batch."""

    uses_gradients = True  # Score-CAM, Ablation-CAM and Eigen-CAM skip the backward pass

    def __init__(self, model, layer: str, settings: Settings | None = None, reshape: Reshape | None = None):
        self.model, self.layer = model, layer
        self.settings = settings or Settings()
        self.reshape = reshape

    def __call__(self, x: torch.Tensor, target: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(the coarse map on the layer (1, 1, h, w), the map at the picture's size (1, 1, H, W))."""
        activations, gradients, score = self.layer_pass(x, target)
        self.score = score  # the class score on the picture itself, for the note
        coarse = torch.relu(self.combine(x, target, activations, gradients, score))  # (1, 1, h, w)
        return coarse, F.interpolate(coarse, size=tuple(x.shape[2:]), mode=INTERPOLATE_MODE)

    def combine(self, x, target, activations, gradients, score) -> torch.Tensor:
        """The weighted sum of the maps, (1, 1, h, w), before the ReLU."""
        weights = self.weights(x, target, activations, gradients, score)  # (1, K)
        return (weights[:, :, None, None] * activations).sum(dim=1, keepdim=True)

    def weights(self, x, target, activations, gradients, score) -> torch.Tensor:
        raise NotImplementedError

    def layer_pass(self, x: torch.Tensor, target: int):
        """(activations (1, K, h, w), their gradients (1, K, h, w) or None, the class score)."""
        point = self.model.hook_points()[self.layer]
        kept = []
        handle = point.register_forward_hook(lambda module, inputs, output: kept.append(output))
        try:
            # run_with_cache, so that a pretrained ViT fills its read-out points too; the hook kept
            # here holds the live tensor the logits were computed from, not the cache's detached copy.
            with torch.set_grad_enabled(self.uses_gradients):
                logits, _ = self.model.run_with_cache(x, names=[self.layer])
        finally:
            handle.remove()
        activations = kept[-1]
        score = logits[0, target]
        gradients = torch.autograd.grad(score, activations)[0] if self.uses_gradients else None
        if self.reshape is not None:
            activations = self.reshape(activations)
            gradients = None if gradients is None else self.reshape(gradients)
        gradients = None if gradients is None else gradients.detach()
        return activations.detach(), gradients, float(score.detach())


class GradCAM(BaseCAM):
    """Selvaraju et al. (2017): each map weighted by the mean of its gradient."""

    def weights(self, x, target, activations, gradients, score):
        return gradients.mean(dim=(2, 3))


class GradCAMPlusPlus(BaseCAM):
    """w_k = Σ_ij α_kij · relu(g_kij), α = g² / (2g² + Σ_ab A_kab · g³) (0 where the denominator is 0)."""

    def weights(self, x, target, activations, gradients, score):
        squared, cubed = gradients ** 2, gradients ** 3
        denominator = 2 * squared + activations.sum(dim=(2, 3), keepdim=True) * cubed  # (1, K, h, w)
        safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
        alpha = torch.where(denominator != 0, squared / safe, torch.zeros_like(squared))
        return (alpha * torch.relu(gradients)).sum(dim=(2, 3))


class HiResCAM(BaseCAM):
    """Each map times its own gradient, position by position, summed over the maps."""

    def combine(self, x, target, activations, gradients, score):
        return (gradients * activations).sum(dim=1, keepdim=True)


class XGradCAM(BaseCAM):
    """w_k = Σ_ij g_kij · A_kij / Σ_ij A_kij (a map that is zero everywhere gets weight 0)."""

    def weights(self, x, target, activations, gradients, score):
        totals = activations.sum(dim=(2, 3))  # (1, K)
        weighted = (gradients * activations).sum(dim=(2, 3))
        return torch.where(totals != 0, weighted / torch.where(totals != 0, totals, torch.ones_like(totals)),
                           torch.zeros_like(totals))


class LayerCAM(BaseCAM):
    """Each map times its positive gradients, position by position, summed over the maps."""

    def combine(self, x, target, activations, gradients, score):
        return (torch.relu(gradients) * activations).sum(dim=1, keepdim=True)


class ScoreCAM(BaseCAM):
    """w_k = softmax(f(x ⊙ M_k))[target], M_k the k-th map upsampled and scaled to 0–1."""

    uses_gradients = False

    def weights(self, x, target, activations, gradients, score):
        masks = F.interpolate(activations, size=tuple(x.shape[2:]), mode=INTERPOLATE_MODE)[0]  # (K, H, W)
        low = masks.amin(dim=(1, 2), keepdim=True)
        spread = masks.amax(dim=(1, 2), keepdim=True) - low  # (K, 1, 1)
        flat = spread[:, 0, 0] == 0
        masks = (masks - low) / torch.where(flat[:, None, None], torch.ones_like(spread), spread)
        masked = x * masks[:, None]  # (1, C, H, W) * (K, 1, H, W) -> (K, C, H, W)
        with torch.no_grad():
            probabilities = batched(self.model, masked, self.settings, lambda out: out.softmax(dim=-1)[:, target])
        return torch.where(flat, torch.zeros_like(probabilities), probabilities)[None]  # (1, K)


class AblationCAM(BaseCAM):
    """w_k = (y − y_k) / y: y the class score, y_k the score with map k set to zero."""

    uses_gradients = False

    def weights(self, x, target, activations, gradients, score):
        channels = activations.shape[1]
        ablated_scores = []
        point = self.model.hook_points()[self.layer]
        for start in range(0, channels, max(1, self.settings.perturbations_per_eval)):
            chosen = torch.arange(start, min(start + max(1, self.settings.perturbations_per_eval), channels),
                                  device=x.device)

            def zero_one_map_per_row(module, inputs, output, chosen=chosen):
                output = output.clone()  # (n, K, h, w): row i loses map chosen[i]
                output[torch.arange(len(chosen), device=output.device), chosen] = 0
                return output

            handle = point.register_forward_hook(zero_one_map_per_row)
            try:
                with torch.no_grad():
                    ablated_scores.append(self.model(x.expand(len(chosen), -1, -1, -1))[:, target])
            finally:
                handle.remove()
        ablated = torch.cat(ablated_scores)  # (K,)
        # The paper divides by y whatever its sign; a score of exactly 0 would make every weight infinite.
        return ((score - ablated) / (score or 1.0))[None]  # (1, K)


class EigenCAM(BaseCAM):
    """The activations at each position (centred over positions) projected on their first
    principal component; it uses no class and no gradient."""

    uses_gradients = False

    def combine(self, x, target, activations, gradients, score):
        _, channels, height, width = activations.shape
        positions = activations[0].reshape(channels, height * width).T  # (h*w, K)
        centred = positions - positions.mean(dim=0)
        _, _, right = torch.linalg.svd(centred, full_matrices=False)
        projection = centred @ right[0]  # (h*w,)
        if float(projection @ (positions.sum(dim=1) - positions.sum(dim=1).mean())) < 0:
            projection = -projection  # SVD's sign is arbitrary: point it along the total activation
        return projection.reshape(1, 1, height, width)


CAMS: dict[str, type[BaseCAM]] = {
    "grad_cam_plus_plus": GradCAMPlusPlus, "hires_cam": HiResCAM, "xgrad_cam": XGradCAM, "layer_cam": LayerCAM,
    "score_cam": ScoreCAM, "ablation_cam": AblationCAM, "eigen_cam": EigenCAM,
}


def batched(model, inputs: torch.Tensor, settings: Settings, read: Callable[[torch.Tensor], torch.Tensor]):
    """``read(model(chunk))`` for chunks of ``settings.perturbations_per_eval`` inputs, concatenated."""
    step = max(1, settings.perturbations_per_eval)
    return torch.cat([read(model(inputs[start:start + step])) for start in range(0, len(inputs), step)])


def cam_attribution(model, x: torch.Tensor, target: int, method: str, settings: Settings) -> Attribution:
    """One CAM of ``CAMS`` on a checked picture ``x`` (C, H, W) on the model's device; the caller
    holds the model (``explain.model_guard``)."""
    entry = IMAGE_METHODS[method]
    layer = gradcam_layer(model, settings)
    channels, height, width = model.activation_shape(layer)
    class_name = class_names_of(model)[target]
    explainer = CAMS[method](model, layer, settings)
    coarse, values = explainer(x.unsqueeze(0), target)
    note = entry.note.format(cls=class_name, settings=settings, layer=layer,
                             maps=f"{channels} maps of {height}×{width}", size=f"{x.shape[1]}×{x.shape[2]}")
    if method == "ablation_cam" and explainer.score < 0:
        note += (f" The score of class {class_name} is negative here ({explainer.score:.3g}), and dividing by it "
                 "turns every weight round: red marks the maps whose removal would raise the score.")
    if not bool(coarse.gt(0).any()):
        note += " Every weighted sum is negative here: this map shows nothing."
    return Attribution(method, label_of(model, method, settings), target, values[0].float().cpu().numpy(), note=note)
