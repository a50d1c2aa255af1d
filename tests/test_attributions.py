"""explain.attributions against references computed here by hand: Integrated Gradients adds up
to f(x) - f(baseline) and is exactly (x - baseline) ⊙ w on a linear model, Saliency is
|autograd.grad|, Grad-CAM is the mean-gradient-weighted sum of a layer's maps, occlusion is the
score drop of each covered patch or word, and no call leaves a hook behind, even one that fails."""
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explain import attributions as attr
from explain.model_guard import model_left_as_found
from models import HookedModel, ModelSpec, build_model, count_hooks, presets
from models.meta import ModelMeta
from models.spec import InputSpec, Layer, RNNConfig

TOKEN_PRESETS = ["sentiment-lstm", "sentiment-gru", "sentiment-transformer"]
SENTENCE = torch.tensor([5, 9, 17, 3, 40, 0, 0])  # five words and two trailing <pad>


def model_of(preset: str):
    return build_model(presets.get(preset), seed=0)


def picture(model, seed: int = 0) -> torch.Tensor:
    inp = model.spec.input
    return torch.rand(inp.channels, inp.height, inp.width, generator=torch.Generator().manual_seed(seed))  # (C, H, W)


def score(model, x: torch.Tensor, target: int) -> float:
    with torch.no_grad():
        return float(model(x.unsqueeze(0))[0, target])


class LinearImageModel(HookedModel):
    """f(x) = W x + b on a 2×3×4 picture: every attribution method has a closed form here."""

    def __init__(self):
        super().__init__(ModelSpec(name="linear", kind="cnn", num_classes=3, input=InputSpec("image", 2, 3, 4)))
        self.linear = nn.Linear(24, 3)

    def forward(self, x):
        return self.linear(x.flatten(1))  # (B, 2, 3, 4) -> (B, 24) -> (B, 3)


def with_random_batchnorm_statistics(model):
    """Eval-mode batch norm with running statistics far from 0 and 1, so it really rescales."""
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen))
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
    return model


# ---- Integrated Gradients and the other closed forms --------------------------------------------

@pytest.mark.parametrize("preset", ["digits-cnn", "shapes-cnn", "shapes-vit"])
def test_integrated_gradients_add_up_to_the_score_change_within_the_reported_delta(preset):
    model = with_random_batchnorm_statistics(model_of(preset))
    x = picture(model)
    target = 1
    result = attr.attribute(model, x, target, "integrated_gradients", attr.Settings(n_steps=64))
    baseline = torch.zeros_like(x)  # no normalisation in an untrained model's meta: black is 0
    assert result.expected_total == pytest.approx(score(model, x, target) - score(model, baseline, target), abs=1e-5)
    assert result.total == pytest.approx(float(result.values.sum()), abs=1e-5)
    assert abs(result.total - result.expected_total) <= abs(result.delta) + 1e-5
    assert result.values.shape == tuple(x.shape)


def test_on_a_linear_model_integrated_gradients_deeplift_and_saliency_have_their_closed_forms():
    torch.manual_seed(0)
    model = LinearImageModel().eval()
    x, baseline, target = torch.randn(2, 3, 4), torch.randn(2, 3, 4), 2
    weights = model.linear.weight[target].detach().view(2, 3, 4)  # (24,) -> (C, H, W)
    settings = attr.Settings(n_steps=200)
    expected = ((x - baseline) * weights).numpy()
    ig = attr.attribute(model, x, target, "integrated_gradients", settings, baselines=baseline)
    np.testing.assert_allclose(ig.values, expected, atol=1e-5)
    deeplift = attr.attribute(model, x, target, "deeplift", settings, baselines=baseline)
    np.testing.assert_allclose(deeplift.values, expected, atol=1e-5)
    assert deeplift.delta is None and f"add up to {expected.sum():.4f}" in deeplift.note
    saliency = attr.attribute(model, x, target, "saliency", settings)
    np.testing.assert_allclose(saliency.values, weights.abs().numpy(), atol=1e-6)
    assert attr.available_methods(model) == {k: v for k, v in attr.IMAGE_METHODS.items() if not (v.layer or v.patches)}


def test_saliency_is_the_absolute_gradient_of_the_target_score():
    model = model_of("digits-cnn")
    x, target = picture(model), 4
    inputs = x.unsqueeze(0).requires_grad_(True)  # (1, 1, 16, 16)
    (gradient,) = torch.autograd.grad(model(inputs)[0, target], inputs)
    result = attr.attribute(model, x, target, "saliency")
    np.testing.assert_allclose(result.values, gradient[0].abs().numpy(), atol=1e-7)
    assert result.label == "Saliency" and result.delta is None


def test_smoothgrad_without_noise_is_the_plain_method_and_with_noise_is_seeded():
    model = model_of("digits-cnn")
    x = picture(model)
    plain = attr.attribute(model, x, 2, "saliency")
    silent = attr.attribute(model, x, 2, "saliency", attr.Settings(smoothgrad=True, nt_stdevs=0.0))
    np.testing.assert_allclose(silent.values, plain.values, atol=1e-7)
    assert silent.label == "SmoothGrad · Saliency"
    noisy = attr.Settings(smoothgrad=True, nt_samples=4)
    torch.manual_seed(5)
    before = torch.rand(3)
    torch.manual_seed(5)
    first = attr.attribute(model, x, 2, "saliency", noisy)
    assert torch.equal(torch.rand(3), before)  # the caller's random stream is untouched
    np.testing.assert_array_equal(attr.attribute(model, x, 2, "saliency", noisy).values, first.values)
    assert not np.allclose(first.values, plain.values)


# ---- Grad-CAM -----------------------------------------------------------------------------------

def grad_cam_by_hand(model, x: torch.Tensor, target: int, layer: str) -> torch.Tensor:
    """(1, H, W): the layer's maps weighted by their mean gradient, summed, ReLU, upsampled."""
    seen = {}
    point = model.hook_points()[layer]
    handle = point.register_forward_hook(lambda module, inputs, output: seen.setdefault("maps", output))
    try:
        value = model(x.unsqueeze(0))[0, target]
    finally:
        handle.remove()
    maps = seen["maps"]  # (1, K, h, w)
    (gradient,) = torch.autograd.grad(value, maps)
    weights = gradient.mean(dim=(2, 3), keepdim=True)  # (1, K, 1, 1)
    cam = torch.relu((weights * maps).sum(dim=1, keepdim=True))  # (1, 1, h, w)
    return F.interpolate(cam, size=tuple(x.shape[1:]), mode="bilinear")[0].detach()


@pytest.mark.parametrize("preset, layers", [("digits-cnn", ["conv.0.act", "conv.1.act"]),
                                            ("shapes-cnn", ["conv.0.act", "conv.1.act", "conv.2.act"])])
def test_grad_cam_is_the_hand_computed_map_at_the_inputs_size(preset, layers):
    model = model_of(preset)
    assert attr.gradcam_layers(model) == layers
    x = picture(model)
    for layer in layers:
        maps = {t: grad_cam_by_hand(model, x, t, layer) for t in range(model.spec.num_classes)}
        target = max(maps, key=lambda t: float(maps[t].max()))  # a class with something to show
        assert float(maps[target].max()) > 0
        result = attr.attribute(model, x, target, "grad_cam", attr.Settings(grad_cam_layer=layer))
        assert result.values.shape == (1, *x.shape[1:])
        np.testing.assert_allclose(result.values, maps[target].numpy(), atol=1e-6)
        assert result.label == f"Grad-CAM ({layer})"
    default = attr.attribute(model, x, 0, "grad_cam")
    assert default.label == f"Grad-CAM ({layers[-1]})"
    guided = attr.attribute(model, x, 0, "guided_grad_cam")
    assert guided.values.shape == tuple(x.shape)
    with pytest.raises(ValueError, match="conv stages"):
        attr.attribute(model, x, 0, "grad_cam", attr.Settings(grad_cam_layer="fc.0.act"))


# ---- occlusion ----------------------------------------------------------------------------------

def occlusion_by_hand(model, x, baseline, target, window, stride) -> np.ndarray:
    """Patches every ``stride`` pixels until the picture is covered (the last cut at the edge),
    all channels at once; each pixel gets the mean score drop of the patches covering it."""
    _, height, width = x.shape
    total, count = torch.zeros_like(x), torch.zeros_like(x)
    full = score(model, x, target)
    for top in range(0, max(height - window, 0) + stride, stride):
        for left in range(0, max(width - window, 0) + stride, stride):
            covered = x.clone()
            covered[:, top:top + window, left:left + window] = baseline[:, top:top + window, left:left + window]
            total[:, top:top + window, left:left + window] += full - score(model, covered, target)
            count[:, top:top + window, left:left + window] += 1
    return (total / count).numpy()


@pytest.mark.parametrize("window, stride", [(1, 1), (4, 4), (3, 2)])
def test_occlusion_is_the_score_drop_of_each_covered_patch(window, stride):
    model = model_of("digits-cnn")
    x, baseline = picture(model), torch.full((1, 16, 16), -0.5)
    settings = attr.Settings(occlusion_window=window, occlusion_stride=stride, perturbations_per_eval=7)
    result = attr.attribute(model, x, 3, "occlusion", settings, baselines=baseline)
    np.testing.assert_allclose(result.values, occlusion_by_hand(model, x, baseline, 3, window, stride), atol=1e-6)
    with pytest.raises(ValueError, match="window"):
        attr.attribute(model, x, 3, "occlusion", attr.Settings(occlusion_window=17))


def test_occlusion_covers_every_channel_of_a_pixel_together():
    torch.manual_seed(0)
    model = LinearImageModel().eval()
    x = torch.randn(2, 3, 4)
    result = attr.attribute(model, x, 1, "occlusion", attr.Settings(occlusion_window=1, occlusion_stride=1))
    np.testing.assert_allclose(result.values, occlusion_by_hand(model, x, torch.zeros_like(x), 1, 1, 1), atol=1e-6)
    np.testing.assert_allclose(result.values[0], result.values[1], atol=1e-7)  # one value per pixel, both channels


# ---- sentences ----------------------------------------------------------------------------------

def with_embeddings_of(model, ids: torch.Tensor, replacement: torch.Tensor) -> torch.Tensor:
    """Logits for ``ids`` with the embedding's output replaced by the vectors of ``replacement``."""
    vectors = model.embed.tokens(replacement.unsqueeze(0))  # (1, T, E)
    handle = model.embed.tokens.register_forward_hook(lambda module, inputs, output: vectors)
    try:
        with torch.no_grad():
            return model(ids.unsqueeze(0))[0]
    finally:
        handle.remove()


@pytest.mark.parametrize("preset", TOKEN_PRESETS)
def test_token_attributions_give_one_score_per_word_and_add_up(preset):
    model = model_of(preset)
    words = SENTENCE[:5]
    target = 1
    settings = attr.Settings(n_steps=32, internal_batch_size=8)
    lig = attr.attribute(model, SENTENCE, target, "integrated_gradients", settings)
    assert lig.values.shape == (5,) and lig.label == "Layer Integrated Gradients (embeddings)"
    # The path Layer IG integrates keeps the real ids (so the padding mask) and moves the
    # vectors from <pad>'s to the words': its start is the sentence with <pad> vectors.
    start = float(with_embeddings_of(model, words, torch.zeros_like(words))[target])
    assert lig.expected_total == pytest.approx(score(model, words, target) - start, abs=1e-5)
    assert lig.total == pytest.approx(float(lig.values.sum()), abs=1e-5)
    assert abs(lig.total - lig.expected_total) <= abs(lig.delta) + 1e-5
    assert abs(lig.delta) < 1e-3
    occlusion = attr.attribute(model, SENTENCE, target, "occlusion", attr.Settings(perturbations_per_eval=2))
    by_hand = [score(model, words, target) - score(model, torch.cat([words[:i], torch.zeros(1, dtype=torch.int64),
                                                                     words[i + 1:]]), target) for i in range(5)]
    np.testing.assert_allclose(occlusion.values, by_hand, atol=1e-6)


def test_token_inputs_are_checked():
    model = model_of("sentiment-lstm")
    with pytest.raises(ValueError, match="no words"):
        attr.attribute(model, torch.zeros(4, dtype=torch.int64), 0, "occlusion")
    with pytest.raises(ValueError, match="vocabulary"):
        attr.attribute(model, torch.tensor([3, 999]), 0, "occlusion")
    with pytest.raises(ValueError, match="token ids"):
        attr.attribute(model, torch.rand(5), 0, "occlusion")
    with pytest.raises(ValueError, match="at most 32"):
        attr.attribute(model, torch.full((33,), 4), 0, "occlusion")


# ---- hooks: none left behind, even after a failure ----------------------------------------------

def every_method(model) -> list[tuple[str, attr.Settings]]:
    quick = dict(n_steps=8, internal_batch_size=4, n_samples=4, nt_samples=3)
    return [(method, attr.Settings(smoothgrad=smooth, **quick)) for method in attr.available_methods(model)
            for smooth in (False, True)]


@pytest.mark.parametrize("preset", ["digits-cnn", "sentiment-lstm", "sentiment-transformer"])
def test_no_hook_is_left_after_any_method(preset):
    model = model_of(preset)
    x = picture(model) if model.spec.input.kind == "image" else SENTENCE
    mine = model.register_forward_hook(lambda module, inputs, output: None)  # the caller's own hook stays
    model.train()
    for method, settings in every_method(model):
        result = attr.attribute(model, x, 0, method, settings)
        assert np.isfinite(result.values).all()
        # The completeness numbers come together, for plain (Layer) Integrated Gradients only.
        with_sums = method == "integrated_gradients" and not (settings.smoothgrad and x.dtype.is_floating_point)
        assert {result.delta is None, result.total is None, result.expected_total is None} == {not with_sums}
        assert count_hooks(model) == 1, method
        assert model.training, method  # the mode is given back as found
    mine.remove()
    assert count_hooks(model) == 0


def fail_on_call(module: nn.Module, n: int, leak_into=None):
    """Make ``module`` raise on its n-th call; with ``leak_into``, first leave a hook and a
    DeepLift-style scratch tensor behind there, as a careless library would."""
    calls = {"count": 0}
    forward = module.forward

    def failing(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == n:
            if leak_into is not None:
                leak_into.register_forward_hook(lambda *hook_args: None)
                leak_into.output = torch.zeros(1)
            raise RuntimeError("failed midway on purpose")
        return forward(*args, **kwargs)
    module.forward = failing  # an instance attribute: nn.Module.__call__ finds it first
    return calls


@pytest.mark.parametrize("preset, method", [("digits-cnn", "grad_cam"), ("digits-cnn", "guided_grad_cam"),
                                            ("digits-cnn", "deeplift"), ("sentiment-lstm", "integrated_gradients"),
                                            ("sentiment-transformer", "integrated_gradients")])
def test_no_hook_is_left_when_a_method_fails_midway(preset, method):
    settings = attr.Settings(n_steps=8, internal_batch_size=4)

    def prepared(fail_at: int, leak: bool):
        model = model_of(preset)
        x = picture(model) if model.spec.input.kind == "image" else SENTENCE
        last = model.fc[-1].linear if model.spec.kind == "cnn" else model.head
        activation = next(m for m in model.modules() if isinstance(m, (nn.ReLU, nn.GELU, nn.LSTM)))
        return model, x, activation, fail_on_call(last, fail_at, leak_into=activation if leak else None)

    model, x, _, calls = prepared(fail_at=0, leak=False)  # a clean run, to count the classifier's calls
    attr.attribute(model, x, 0, method, settings)
    assert calls["count"] >= 1
    for fail_at in range(1, calls["count"] + 1):  # fail at every point the model is run
        model, x, activation, _ = prepared(fail_at, leak=fail_at == calls["count"])
        with pytest.raises(RuntimeError, match="on purpose"):
            attr.attribute(model, x, 0, method, settings)
        assert count_hooks(model) == 0, (method, fail_at)
        assert "output" not in vars(activation) and "input" not in vars(activation)


def test_calls_on_one_model_from_two_threads_take_turns():
    model = model_of("digits-cnn")
    x = picture(model)
    inside, release, results = threading.Event(), threading.Event(), []

    def hold_the_model():
        with model_left_as_found(model):
            inside.set()
            release.wait(timeout=60)

    holder = threading.Thread(target=hold_the_model)
    holder.start()
    assert inside.wait(timeout=60)
    caller = threading.Thread(target=lambda: results.append(attr.attribute(model, x, 0, "grad_cam")))
    caller.start()
    caller.join(timeout=0.5)
    waited = caller.is_alive() and not results  # still waiting for its turn, however long we looked
    release.set()
    holder.join()
    caller.join()
    assert waited and len(results) == 1 and count_hooks(model) == 0


# ---- the sanity check: a model with its weights drawn again -------------------------------------

@pytest.mark.parametrize("preset", ["digits-cnn", "sentiment-lstm", "sentiment-transformer"])
def test_randomized_copy_redraws_every_weight_and_leaves_the_random_stream_alone(preset):
    model = model_of(preset)
    model.meta = ModelMeta(dataset="made up", normalization=None)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(7)
    expected_next = torch.rand(4)
    torch.manual_seed(7)
    model.train()
    copy = attr.randomized_copy(model, seed=0)
    assert torch.equal(torch.rand(4), expected_next)
    assert copy.spec == model.spec and copy.spec is not model.spec and copy.meta == model.meta
    assert not copy.training and model.training
    state = copy.state_dict()
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in original.items()}
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter.detach(), original[name])  # the model itself is untouched
        constant = bool((parameter == parameter.flatten()[0]).all())  # e.g. LayerNorm's ones: drawn to ones again
        assert constant or not torch.equal(state[name], parameter.detach()), name
    again = attr.randomized_copy(model, seed=0).state_dict()
    assert all(torch.equal(again[k], state[k]) for k in state)
    other = attr.randomized_copy(model, seed=1).state_dict()
    assert not all(torch.equal(other[k], state[k]) for k in state)
    x = picture(model) if model.spec.input.kind == "image" else SENTENCE
    a = attr.attribute(copy, x, 0, "occlusion")
    assert a.values.shape == attr.attribute(model, x, 0, "occlusion").values.shape


# ---- what each model offers, targets, baselines and the batch call -------------------------------

def test_available_methods_per_family():
    patch_methods = [key for key, method in attr.IMAGE_METHODS.items() if method.patches]
    assert patch_methods == ["attention_rollout", "vit_grad_cam"]
    assert list(attr.available_methods(model_of("digits-cnn"))) == [key for key in attr.IMAGE_METHODS
                                                                    if key not in patch_methods]
    assert list(attr.available_methods(model_of("shapes-vit"))) == ["saliency", "integrated_gradients",
                                                                    "gradient_shap", "occlusion", *patch_methods]
    assert attr.available_methods(model_of("sentiment-gru")) == attr.TEXT_METHODS
    gelu = presets.get("digits-cnn")
    gelu.layers[1] = Layer("act", activation="gelu")
    assert "deeplift" not in attr.available_methods(build_model(gelu, seed=0))
    sequence = ModelSpec(name="seq", kind="rnn", input=InputSpec(kind="sequence", features=3, max_len=8),
                         rnn=RNNConfig(cell="gru", embed_dim=4, hidden_size=4))
    numbers = build_model(sequence, seed=0)
    assert attr.available_methods(numbers) == {}
    with pytest.raises(ValueError, match="sequences of numbers"):
        attr.attribute(numbers, torch.zeros(8, 3), 0, "saliency")


def test_targets_and_methods_are_checked_in_plain_words():
    model = model_of("digits-cnn")
    x = picture(model)
    predicted = int(model(x.unsqueeze(0)).argmax())
    assert attr.predicted_class(model, x) == predicted
    assert attr.attribute(model, x, None, "saliency").target == predicted
    assert attr.attribute(model, x, np.int64(9), "saliency").target == 9
    for bad in (10, -1, True, 2.0):
        with pytest.raises(ValueError, match="class"):
            attr.attribute(model, x, bad, "saliency")
    with pytest.raises(ValueError, match="not available"):
        attr.attribute(model_of("shapes-vit"), picture(model_of("shapes-vit")), 0, "grad_cam")
    with pytest.raises(ValueError, match="not available"):
        attr.attribute(model_of("sentiment-lstm"), SENTENCE, 0, "deeplift")
    with pytest.raises(ValueError, match="1×16×16"):
        attr.attribute(model, torch.rand(3, 16, 16), 0, "saliency")


def test_image_baseline_is_black_in_the_models_input_space():
    x = torch.rand(3, 4, 5)
    normalization = {"mean": [0.5, 0.25, 0.0], "std": [0.25, 0.5, 2.0]}
    baseline = attr.image_baseline(x, normalization)
    assert baseline.shape == x.shape
    np.testing.assert_allclose(baseline[:, 0, 0].numpy(), [-2.0, -0.5, 0.0])
    assert torch.equal(attr.image_baseline(x, None), torch.zeros_like(x))
    with pytest.raises(ValueError, match="channel"):
        attr.image_baseline(x, {"mean": [0.5], "std": [0.25]})
    model = model_of("digits-cnn")
    model.meta = ModelMeta(normalization={"mean": [0.5], "std": [0.25]})  # a checkpoint's: its black is -2
    image = picture(model)
    result = attr.attribute(model, image, 0, "integrated_gradients", attr.Settings(n_steps=8))
    black = torch.full_like(image, -2.0)
    assert result.expected_total == pytest.approx(score(model, image, 0) - score(model, black, 0), abs=1e-5)


def test_attribute_many_reports_progress_and_shares_one_target():
    model = model_of("digits-cnn")
    x = picture(model)
    calls = []
    methods = ["saliency", "grad_cam", "occlusion"]
    results = attr.attribute_many(model, x, None, methods, progress=lambda *args: calls.append(args))
    assert [r.method for r in results] == methods
    assert {r.target for r in results} == {attr.predicted_class(model, x)}
    assert calls == [(0, 3, "Saliency"), (1, 3, "Grad-CAM (conv.1.act)"), (2, 3, "Occlusion")]
    with pytest.raises(ValueError, match="not available"):
        attr.attribute_many(model, x, 0, ["saliency", "bogus"], progress=lambda *args: calls.append(args))
    assert len(calls) == 3  # refused before any work


def test_map_similarity_is_the_spearman_correlation_of_the_absolute_maps():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    trained = rng.normal(size=(3, 8, 8))
    randomised = trained + rng.normal(size=trained.shape)
    randomised[:, 0, :4] = 0.0  # ties, which Spearman ranks by their mean rank
    expected = spearmanr(np.abs(trained.sum(axis=0)).ravel(), np.abs(randomised.sum(axis=0)).ravel()).statistic
    assert attr.map_similarity(trained, randomised) == pytest.approx(expected)
    assert attr.map_similarity(trained, -trained) == pytest.approx(1.0)  # |map|: the sign does not count
    words = np.array([0.5, -2.0, 0.1, 1.0])
    assert attr.map_similarity(words, words[::-1]) == pytest.approx(spearmanr(np.abs(words), np.abs(words[::-1])).statistic)
    assert np.isnan(attr.map_similarity(trained, np.zeros_like(trained)))  # a flat map ranks nothing
    with pytest.raises(ValueError, match="same input"):
        attr.map_similarity(trained, trained[:, :4])
