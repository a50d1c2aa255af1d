"""The sanity checks' numbers and the cascading randomisation (explain/attributions/sanity.py and
cascade.py) against references: SSIM against scikit-image's own numbers (computed with
scikit-image 0.26.0, and directly when it is installed) and against the formula of Wang et al.
(2004) by hand on a single window; Spearman against scipy; each cascade step re-draws exactly the
layers it names and leaves every other tensor byte-equal to the trained model's."""
import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from explain import attributions as attr
from explain.attributions.cascade import (cascade_layers, cascading_copies, cascading_randomisation,
                                          layer_name)
from explain.attributions.sanity import map_ssim, structural_similarity
from models import build_model, presets

SENTENCE = torch.tensor([5, 9, 17, 3, 40])


def model_of(preset: str):
    return build_model(presets.get(preset), seed=0)


def picture(model, seed: int = 0) -> torch.Tensor:
    inp = model.spec.input
    return torch.rand(inp.channels, inp.height, inp.width, generator=torch.Generator().manual_seed(seed))


def normalised(values: np.ndarray) -> np.ndarray:
    values = np.abs(values.sum(axis=0) if values.ndim == 3 else values)
    return values / values.max()


# ---- SSIM ------------------------------------------------------------------------------------------

# (first, second, scikit-image 0.26.0's structural_similarity(normalised(first), normalised(second),
# data_range=1.0)), the arrays drawn from fixed seeds
def skimage_cases():
    rng = np.random.default_rng(2018)
    first = rng.normal(size=(3, 16, 16))
    yield first, first + rng.normal(size=(3, 16, 16)), 0.4077469702188827
    yield np.random.default_rng(7).normal(size=(20, 12)), np.random.default_rng(8).normal(size=(20, 12)), \
        -0.024362486195791257
    rows = np.random.default_rng(9).normal(size=(5, 30))  # 5 rows: the window shrinks to 5×5
    yield rows, rows + np.random.default_rng(10).normal(size=(5, 30)) * 0.3, 0.9214345468174204


@pytest.mark.parametrize("case", range(3))
def test_ssim_matches_scikit_images_numbers(case):
    first, second, expected = list(skimage_cases())[case]
    assert map_ssim(first, second) == pytest.approx(expected, abs=1e-12)


def test_ssim_matches_scikit_image_itself_when_it_is_installed():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(3)
    for shape in [(16, 16), (7, 9), (32, 32)]:
        first, second = rng.random(shape), rng.random(shape)
        assert structural_similarity(first, second, 1.0) == pytest.approx(
            metrics.structural_similarity(first, second, data_range=1.0), abs=1e-12)


def test_ssim_on_one_window_is_the_formula_by_hand():
    rng = np.random.default_rng(5)
    first, second = rng.random((7, 7)), rng.random((7, 7))  # a 7×7 map holds exactly one window
    mean_1, mean_2 = first.mean(), second.mean()
    variance_1, variance_2 = first.var(ddof=1), second.var(ddof=1)
    covariance = np.cov(first.ravel(), second.ravel())[0, 1]
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    by_hand = ((2 * mean_1 * mean_2 + c1) * (2 * covariance + c2)
               / ((mean_1 ** 2 + mean_2 ** 2 + c1) * (variance_1 + variance_2 + c2)))
    assert structural_similarity(first, second, 1.0) == pytest.approx(by_hand, rel=1e-12)
    assert map_ssim(first, second) == pytest.approx(structural_similarity(first / first.max(), second / second.max(),
                                                                          1.0), rel=1e-12)


def test_ssim_known_cases():
    rng = np.random.default_rng(6)
    trained = rng.normal(size=(3, 12, 12))
    assert map_ssim(trained, trained) == pytest.approx(1.0)
    assert map_ssim(trained, -trained) == pytest.approx(1.0)  # |map|: the sign does not count
    assert map_ssim(trained, 1e-6 * trained) == pytest.approx(1.0)  # each map scaled to [0, 1]
    assert map_ssim(trained, rng.normal(size=(3, 12, 12))) < 0.3  # unrelated maps share little structure
    assert np.isnan(map_ssim(trained, np.zeros_like(trained)))  # a flat map has no structure
    assert np.isnan(map_ssim(np.ones((2, 40)), rng.random((2, 40))))  # no window fits 2 rows
    with pytest.raises(ValueError, match="same input"):
        map_ssim(trained, trained[:, :6])
    with pytest.raises(ValueError, match="sentence"):
        map_ssim(np.arange(5.0), np.arange(5.0))


def test_spearman_matches_scipy_on_pictures_and_sentences():
    rng = np.random.default_rng(1)
    first, second = rng.normal(size=(2, 9, 9)), rng.normal(size=(2, 9, 9))
    expected = spearmanr(np.abs(first.sum(0)).ravel(), np.abs(second.sum(0)).ravel()).statistic
    assert attr.map_similarity(first, second) == pytest.approx(expected)
    words, other = rng.normal(size=7), rng.normal(size=7)
    assert attr.map_similarity(words, other) == pytest.approx(spearmanr(np.abs(words), np.abs(other)).statistic)


# ---- cascading randomisation --------------------------------------------------------------------

def test_layers_go_from_the_output_back_to_the_input_in_the_models_own_order():
    assert [(layer.name, layer.modules) for layer in cascade_layers(model_of("digits-cnn"))] == [
        ("fc.1", ("fc.1.linear",)), ("fc.0", ("fc.0.linear",)), ("conv.1", ("conv.1.conv",)),
        ("conv.0", ("conv.0.conv",))]
    assert [layer.name for layer in cascade_layers(model_of("shapes-cnn"))][2:] == ["conv.2", "conv.1", "conv.0"]
    assert cascade_layers(model_of("shapes-cnn"))[3].modules == ("conv.1.conv", "conv.1.batchnorm")
    assert [layer.name for layer in cascade_layers(model_of("sentiment-lstm"))] == ["head", "rnn.net", "embed.tokens"]
    assert layer_name("blocks.1.attn.qkv") == "blocks.1" and layer_name("") == "model"


@pytest.mark.parametrize("preset", ["digits-cnn", "shapes-cnn", "sentiment-lstm", "sentiment-transformer"])
def test_each_step_redraws_exactly_the_named_layers_and_leaves_the_model_alone(preset):
    model = model_of(preset)
    model.train()
    original = {name: value.clone() for name, value in model.state_dict().items()}
    torch.manual_seed(11)
    expected_next = torch.rand(3)
    torch.manual_seed(11)
    steps = list(cascading_copies(model, seed=0))
    assert torch.equal(torch.rand(3), expected_next)  # the caller's random stream is left alone
    layers = cascade_layers(model)
    assert [layer for layer, _ in steps] == layers
    parameters = dict(model.named_parameters())
    owner = {f"{module}.{name}" if module else name: layer.name
             for layer in layers for module in layer.modules
             for name, _ in dict(model.named_modules())[module].named_parameters(recurse=False)}
    assert set(owner) == set(parameters)  # every parameter belongs to one layer
    previous = None
    for step, (layer, copy) in enumerate(steps):
        redrawn = {lay.name for lay in layers[:step + 1]}
        state = copy.state_dict()
        assert not copy.training and copy is not model
        for name, value in state.items():
            if owner.get(name) in redrawn:
                constant = bool((value == value.flatten()[0]).all())  # LayerNorm's ones are drawn as ones again
                assert constant or not torch.equal(value, original[name]), (layer.name, name)
            else:
                assert value.dtype == original[name].dtype and torch.equal(value, original[name]), (layer.name, name)
            if previous is not None and owner.get(name) in redrawn - {layer.name}:
                assert torch.equal(value, previous[name])  # an earlier step's random weights are kept, not redrawn
        previous = state
    for name, value in model.state_dict().items():
        assert torch.equal(value, original[name])  # the trained model itself is untouched
    assert model.training
    again = [copy.state_dict() for _, copy in cascading_copies(model, seed=0)]
    assert all(torch.equal(again[-1][k], previous[k]) for k in previous)  # the same seed, the same weights


def test_the_cascade_recomputes_each_method_on_each_step():
    model = model_of("digits-cnn")
    x = picture(model)
    methods = ["saliency", "grad_cam"]
    seen = []
    cascade = cascading_randomisation(model, x, None, methods, progress=lambda *args: seen.append(args))
    target = attr.predicted_class(model, x)
    assert cascade.step_names == ["fc.1", "fc.0", "conv.1", "conv.0"]
    assert seen == [(0, 4, "fc.1"), (1, 4, "fc.0"), (2, 4, "conv.1"), (3, 4, "conv.0")]
    assert [a.method for a in cascade.trained] == methods and {a.target for a in cascade.trained} == {target}
    for step, (_, copy) in enumerate(cascading_copies(model)):
        for method in methods:
            expected = attr.attribute(copy, x, target, method).values  # the same class as the trained model's
            np.testing.assert_allclose(cascade.maps[method][step], expected, rtol=1e-5, atol=1e-7)
    trained = {a.method: a.values for a in cascade.trained}
    for method in methods:
        assert len(cascade.spearman[method]) == len(cascade.ssim[method]) == 4
        for step, later in enumerate(cascade.maps[method]):
            reference = spearmanr(np.abs(trained[method].sum(0)).ravel(), np.abs(later.sum(0)).ravel()).statistic
            assert cascade.spearman[method][step] == pytest.approx(reference) or np.isnan(reference)
            assert cascade.ssim[method][step] == pytest.approx(map_ssim(trained[method], later), nan_ok=True)


def test_the_cascade_of_a_sentence_is_over_words_without_ssim():
    model = model_of("sentiment-lstm")
    cascade = cascading_randomisation(model, SENTENCE, 0, ["integrated_gradients", "occlusion"])
    assert cascade.ssim is None and cascade.step_names == ["head", "rnn.net", "embed.tokens"]
    assert all(values.shape == (5,) for maps in cascade.maps.values() for values in maps)
    words = {a.method: a.values for a in cascade.trained}
    assert cascade.spearman["occlusion"][0] == pytest.approx(
        spearmanr(np.abs(words["occlusion"]), np.abs(cascade.maps["occlusion"][0])).statistic)


def test_the_first_copy_waits_for_the_models_turn():
    """A shared model may have another session's hooks on it mid-call: copying it then would copy them."""
    import threading

    from models.hooks import turn_of

    model = model_of("digits-cnn")
    inside, release, copies = threading.Event(), threading.Event(), []

    def hold():
        with turn_of(model):
            inside.set()
            release.wait(timeout=60)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(timeout=60)
    copier = threading.Thread(target=lambda: copies.append(next(cascading_copies(model))))
    copier.start()
    copier.join(timeout=0.5)
    waited = copier.is_alive() and not copies
    release.set()
    holder.join()
    copier.join()
    assert waited and len(copies) == 1
