"""The CAM family (explain.attributions.cams) against each paper's formula, written out here by
hand in plain torch/numpy on a tiny two-stage CNN with fixed weights: the layer's activations A
and the class score's gradient g come from autograd with A swapped in by a hook, each map is
the formula's weighted sum, ReLU, then bilinear upsampling to the picture, as in Grad-CAM.

Grad-CAM++ is checked against the paper's own definition (Chattopadhay et al. 2018, eq. 10 and
19) with an exponential score Y = exp(S): α = ∂²Y/∂A² / (2 ∂²Y/∂A² + Σ A ∂³Y/∂A³), the 2nd and
3rd derivatives taken by autograd element by element, not from the powers of g the code uses.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explain import attributions as attr
from explain.attributions import cams
from models import ModelSpec, build_model, count_hooks
from models.spec import InputSpec, Layer

LAYERS = ["conv.0.act", "conv.1.act"]
METHODS = ["grad_cam_plus_plus", "hires_cam", "xgrad_cam", "layer_cam", "score_cam", "ablation_cam", "eigen_cam"]


def tiny_cnn(seed: int = 3):
    """2×6×6 pictures -> conv 3×3 (3 maps) ReLU -> conv 3×3 (4 maps) ReLU -> 3 classes; fixed weights."""
    spec = ModelSpec(name="tiny", kind="cnn", num_classes=3, input=InputSpec("image", 2, 6, 6), layers=[
        Layer("conv", channels=3, kernel=3, padding=1), Layer("act"),
        Layer("conv", channels=4, kernel=3, padding=1), Layer("act")])
    return build_model(spec, seed=seed).eval()


def picture(seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 6, 6, generator=torch.Generator().manual_seed(seed))  # (C, H, W)


def score_as_function_of_layer(model, x, layer):
    """(A (K, h, w) as the model computes it, S(A'): the class scores with the layer's output replaced by A')."""
    _, cache = model.run_with_cache(x[None], names=[layer])
    point = model.hook_points()[layer]

    def scores(replacement):  # replacement (K, h, w) -> (classes,)
        handle = point.register_forward_hook(lambda module, inputs, output: replacement[None])
        try:
            return model(x[None])[0]
        finally:
            handle.remove()
    return cache[layer][0], scores


def activations_and_gradient(model, x, layer, target):
    A, scores = score_as_function_of_layer(model, x, layer)
    A = A.clone().requires_grad_(True)
    g = torch.autograd.grad(scores(A)[target], A)[0]
    return A.detach(), g


def upsampled(coarse: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """ReLU of the (h, w) weighted sum, bilinearly upsampled to the picture: (1, H, W)."""
    return F.interpolate(torch.relu(coarse)[None, None], size=tuple(x.shape[1:]), mode="bilinear")[0].numpy()


def cam(model, x, target, method, layer, **settings) -> np.ndarray:
    result = attr.attribute(model, x, target, method, attr.Settings(grad_cam_layer=layer, **settings))
    assert result.values.shape == (1, *x.shape[1:])
    assert result.label == f"{attr.IMAGE_METHODS[method].label} ({layer})"
    return result.values


def cases():
    return [(layer, target) for layer in LAYERS for target in range(3)]


# ---- gradient-based -----------------------------------------------------------------------------

@pytest.mark.parametrize("layer, target", cases())
def test_grad_cam_plus_plus_is_the_papers_alpha_for_an_exponential_score(layer, target):
    model, x = tiny_cnn(), picture()
    A, scores = score_as_function_of_layer(model, x, layer)
    A = A.clone().requires_grad_(True)
    S = scores(A)[target]
    Y = torch.exp(S)
    first = torch.autograd.grad(Y, A, create_graph=True)[0]  # ∂Y/∂A (K, h, w)
    second, third = torch.zeros_like(A), torch.zeros_like(A)
    for index in np.ndindex(*A.shape):  # the diagonal 2nd and 3rd derivatives, one element at a time
        d2 = torch.autograd.grad(first[index], A, create_graph=True)[0][index]
        second[index] = d2.detach()
        if d2.requires_grad:
            third[index] = torch.autograd.grad(d2, A, retain_graph=True)[0][index]
        else:  # constant in A_index: its derivative is 0
            third[index] = 0.0
    A = A.detach()
    denominator = 2 * second + A.sum(dim=(1, 2), keepdim=True) * third
    alpha = torch.where(denominator != 0, second / torch.where(denominator != 0, denominator, 1.0), 0.0)
    weights = (alpha * torch.relu(first.detach())).sum(dim=(1, 2))  # (K,), paper eq. 10 with Y = exp(S)
    paper = upsampled((weights[:, None, None] * A).sum(dim=0), x)
    # The code drops the common factor exp(S) of every weight (a scale of the whole map).
    ours = cam(model, x, target, "grad_cam_plus_plus", layer) * float(torch.exp(S.detach()))
    np.testing.assert_allclose(ours, paper, rtol=1e-4, atol=1e-7)
    assert float(paper.max()) > 0  # a map with something in it


@pytest.mark.parametrize("layer, target", cases())
def test_hires_cam_is_the_elementwise_gradient_times_activation_summed_over_maps(layer, target):
    model, x = tiny_cnn(), picture()
    A, g = activations_and_gradient(model, x, layer, target)
    np.testing.assert_allclose(cam(model, x, target, "hires_cam", layer), upsampled((g * A).sum(dim=0), x),
                               atol=1e-6)


@pytest.mark.parametrize("layer, target", cases())
def test_xgrad_cam_weights_are_the_activation_weighted_mean_gradient(layer, target):
    model, x = tiny_cnn(), picture()
    A, g = activations_and_gradient(model, x, layer, target)
    weights = []
    for k in range(A.shape[0]):  # Fu et al. (2020) eq. 9: Σ (A_k / Σ A_k) ∂S/∂A_k
        total = float(A[k].sum())
        weights.append(float((g[k] * A[k]).sum()) / total if total != 0 else 0.0)
    expected = upsampled(sum(w * A[k] for k, w in enumerate(weights)), x)
    np.testing.assert_allclose(cam(model, x, target, "xgrad_cam", layer), expected, atol=1e-6)


@pytest.mark.parametrize("layer, target", cases())
def test_layer_cam_is_the_positive_gradient_times_activation(layer, target):
    model, x = tiny_cnn(), picture()
    A, g = activations_and_gradient(model, x, layer, target)
    expected = upsampled((torch.clamp(g, min=0) * A).sum(dim=0), x)  # Jiang et al. (2021) eq. 5 and 6
    np.testing.assert_allclose(cam(model, x, target, "layer_cam", layer), expected, atol=1e-6)


# ---- gradient-free ------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, target", cases())
def test_score_cam_weights_are_the_softmax_score_of_each_masked_picture(layer, target):
    model, x = tiny_cnn(), picture()
    A, _ = score_as_function_of_layer(model, x, layer)
    weights = []
    for k in range(A.shape[0]):  # one masked picture at a time (the code batches them)
        mask = F.interpolate(A[k][None, None], size=tuple(x.shape[1:]), mode="bilinear")[0, 0]  # (H, W)
        low, high = float(mask.min()), float(mask.max())
        if high == low:
            weights.append(0.0)  # a flat map masks nothing (the authors' code skips it)
            continue
        with torch.no_grad():
            probabilities = torch.softmax(model((x * (mask - low) / (high - low))[None]), dim=-1)[0]
        weights.append(float(probabilities[target]))
    expected = upsampled(sum(w * A[k] for k, w in enumerate(weights)), x)
    for per_pass in (1, 2, 32):  # 3 or 4 maps: batches of one, of two and a last one, of all
        np.testing.assert_allclose(cam(model, x, target, "score_cam", layer, perturbations_per_eval=per_pass),
                                   expected, atol=1e-6)


@pytest.mark.parametrize("layer, target", cases())
def test_ablation_cam_weights_are_the_relative_score_drop_without_each_map(layer, target):
    model, x = tiny_cnn(), picture()
    A, scores = score_as_function_of_layer(model, x, layer)
    with torch.no_grad():
        y = float(scores(A)[target])
        weights = []
        for k in range(A.shape[0]):
            ablated = A.clone()
            ablated[k] = 0
            weights.append((y - float(scores(ablated)[target])) / y)  # Desai & Ramaswamy (2020) eq. 2
    expected = upsampled(sum(w * A[k] for k, w in enumerate(weights)), x)
    for per_pass in (1, 2, 32):
        np.testing.assert_allclose(cam(model, x, target, "ablation_cam", layer, perturbations_per_eval=per_pass),
                                   expected, rtol=1e-5, atol=1e-6)
    note = attr.attribute(model, x, target, "ablation_cam", attr.Settings(grad_cam_layer=layer)).note
    assert ("dividing by it" in note) == (y < 0)  # the division by a negative score is said in words


@pytest.mark.parametrize("layer", LAYERS)
def test_eigen_cam_is_the_projection_on_the_first_principal_component(layer):
    model, x = tiny_cnn(), picture()
    A, _ = score_as_function_of_layer(model, x, layer)
    K, h, w = A.shape
    positions = A.numpy().astype(np.float64).reshape(K, h * w).T  # (h*w, K): one row per position
    centred = positions - positions.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)  # ascending: the last is the first component
    projection = centred @ eigenvectors[:, -1]
    totals = positions.sum(axis=1)
    if projection @ (totals - totals.mean()) < 0:
        projection = -projection  # the sign that grows with a position's total activation
    expected = upsampled(torch.tensor(projection.reshape(h, w), dtype=torch.float32), x)
    for target in range(3):  # no class enters it
        np.testing.assert_allclose(cam(model, x, target, "eigen_cam", layer), expected, atol=1e-5)


# ---- relations, the table, and hooks ------------------------------------------------------------

def test_hires_cam_is_grad_cam_when_global_average_pooling_alone_follows_the_layer():
    spec = ModelSpec(name="gap", kind="cnn", num_classes=3, input=InputSpec("image", 2, 6, 6), layers=[
        Layer("conv", channels=4, kernel=3, padding=1), Layer("act"), Layer("pool", kernel=6, pool="avg")])
    model, x = build_model(spec, seed=1).eval(), picture()
    assert attr.gradcam_layers(model) == ["conv.0.act"]
    shown = 0
    for target in range(3):
        hires = attr.attribute(model, x, target, "hires_cam").values
        grad_cam = attr.attribute(model, x, target, "grad_cam").values  # Captum's LayerGradCam
        np.testing.assert_allclose(hires, grad_cam, atol=1e-7)
        shown += float(hires.max()) > 0
    assert shown  # at least one class has a map that is not empty


def test_every_cam_is_in_the_table_with_a_note_and_is_offered_where_grad_cam_is():
    assert list(cams.CAMS) == METHODS
    model, x = tiny_cnn(), picture()
    offered = attr.available_methods(model)
    for method in METHODS:
        entry = attr.IMAGE_METHODS[method]
        assert method in offered and entry.layer and entry.captum_class is None and not entry.gradients
        note = attr.attribute(model, x, 0, method).note
        assert "conv.1.act" in note and "4 maps of 6×6" in note and "{" not in note


def failing_on_call(module, n: int):
    calls = {"count": 0}
    forward = module.forward

    def failing(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == n:
            raise RuntimeError("failed midway on purpose")
        return forward(*args, **kwargs)
    module.forward = failing  # an instance attribute: nn.Module.__call__ finds it first
    return calls


@pytest.mark.parametrize("method", METHODS)
def test_a_cam_removes_its_hooks_itself_when_a_forward_pass_fails(method):
    """Called directly (without explain.model_guard's sweep, which would hide a leak)."""
    settings = attr.Settings(perturbations_per_eval=2)  # several passes, so failing in a later one is tried
    model, x = tiny_cnn(), picture()
    calls = failing_on_call(model.conv[1].conv, 0)
    cams.CAMS[method](model, "conv.0.act", settings)(x[None], 0)
    passes = calls["count"]
    assert passes >= 1 and count_hooks(model) == 0
    for fail_at in range(1, passes + 1):
        model = tiny_cnn()
        failing_on_call(model.conv[1].conv, fail_at)
        with pytest.raises(RuntimeError, match="on purpose"):
            cams.CAMS[method](model, "conv.0.act", settings)(x[None], 0)
        assert count_hooks(model) == 0, (method, fail_at)
