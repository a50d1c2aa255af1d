"""explain.featurevis: the grown picture excites its channel several times more than the noise it
started from and more than the average validation example (a trained digits CNN); the model is
given back untouched; the parameterisation, the blur and the ranking of examples match the
formulas worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explain.featurevis import (CLASS_SCORE, blur_kernel, channel_activations, channel_count, channel_layers,
                                frequency_scale, jitter_and_blur, normalise, top_examples, visualise)
from models import build_model, presets
from models.hooks import count_hooks
from tests.trained_models import dataset_of, trained
from viz.featurevis import climb_figure, pictures_row


@pytest.fixture(scope="module")
def digits():
    return trained("digits-cnn"), dataset_of("digits-cnn")


# ---- what it is for ---------------------------------------------------------------------------
@pytest.mark.parametrize("channel", [1, 2])
def test_the_grown_picture_excites_its_channel_far_more_than_its_noise_and_the_average_example(digits, channel):
    model, data = digits
    hook = channel_layers(model)[-1]  # conv.1.act: the last conv layer, after its ReLU
    assert hook == "conv.1.act"
    found = visualise(model, hook, channel, data.normalization)
    ordinary = top_examples(model, hook, channel, data.x_val).mean_activation
    assert found.start_activation > 0.05  # a channel the noise already stirs: the ratio means something
    assert found.activation >= 3 * found.start_activation
    assert found.activation > ordinary
    # The value reported is the channel's mean on the picture as the model receives it.
    again = channel_activations(model, hook, channel, found.x[None])[0]
    assert again == pytest.approx(found.activation, rel=1e-4, abs=1e-5)
    start = channel_activations(model, hook, channel, found.start_x[None])[0]
    assert start == pytest.approx(found.start_activation, rel=1e-4, abs=1e-5)


def test_a_class_score_is_grown_above_every_validation_examples_average(digits):
    model, data = digits
    found = visualise(model, CLASS_SCORE, 3, data.normalization, steps=128)
    top = top_examples(model, CLASS_SCORE, 3, data.x_val)
    assert found.activation > top.mean_activation + 3.0 and found.activation > found.start_activation + 3.0
    with torch.no_grad():
        assert float(model(found.x[None])[0, 3]) == pytest.approx(found.activation, rel=1e-4)
    assert found.history.shape == (128,)


def test_the_picture_is_in_the_models_input_space_and_normalisation(digits):
    model, data = digits
    found = visualise(model, "conv.0.act", 0, data.normalization, steps=8)
    mean, std = data.normalization["mean"][0], data.normalization["std"][0]
    assert found.picture.shape == (16, 16, 1) and found.picture.dtype == np.uint8
    # x is the picture's pixels (0..1) normalised as the training data was; uint8 rounding aside.
    pixels = found.picture[:, :, 0] / 255.0
    np.testing.assert_allclose(found.x[0].numpy(), (pixels - mean) / std, atol=0.6 / 255 / std)
    assert found.x.min() >= (0 - mean) / std - 1e-6 and found.x.max() <= (1 - mean) / std + 1e-6


def test_the_same_seed_grows_the_same_picture_and_another_seed_another(digits):
    model, data = digits
    one = visualise(model, "conv.0.act", 2, data.normalization, steps=5, seed=7)
    two = visualise(model, "conv.0.act", 2, data.normalization, steps=5, seed=7)
    other = visualise(model, "conv.0.act", 2, data.normalization, steps=5, seed=8)
    np.testing.assert_array_equal(one.picture, two.picture)
    assert not np.array_equal(one.start_picture, other.start_picture)


# ---- the model is lent, not changed ---------------------------------------------------------------
def test_the_models_weights_mode_and_hooks_are_left_as_they_were():
    model = build_model(presets.get("digits-cnn"), seed=0)
    model.train()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    seen = []
    visualise(model, "conv.1.act", 0, None, steps=4, progress=lambda done, total: seen.append((done, total)))
    top_examples(model, "conv.1.act", 0, torch.randn(5, 1, 16, 16))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert model.training and count_hooks(model) == 0
    assert all(parameter.grad is None for parameter in model.parameters())
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


def test_a_colour_cnn_with_batch_norm_keeps_its_running_statistics():
    model = build_model(presets.get("shapes-cnn"), seed=0)
    model.train()  # in train mode a forward pass would update the batch norms' running mean and variance
    before = {name: value.clone() for name, value in model.state_dict().items()}
    found = visualise(model, "conv.2.act", 3, {"mean": [0.5] * 3, "std": [0.29] * 3}, steps=3)
    assert found.picture.shape == (32, 32, 3) and found.x.shape == (3, 32, 32)
    assert model.training
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


def test_an_error_midway_leaves_no_hook_and_restores_the_mode():
    model = build_model(presets.get("digits-cnn"), seed=0)
    model.train()

    def stop(done, total):
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        visualise(model, "conv.0.act", 0, None, steps=3, progress=stop)
    assert model.training and count_hooks(model) == 0


def test_a_channel_or_layer_that_is_not_there_is_refused_in_words():
    model = build_model(presets.get("digits-cnn"), seed=0)
    assert channel_layers(model) == ["conv.0.act", "conv.1.act"]
    assert channel_count(model, "conv.1.act") == 16 and channel_count(model, CLASS_SCORE) == 10
    with pytest.raises(ValueError, match="channel 17 does not exist; choose one of 1 to 16"):
        visualise(model, "conv.1.act", 16, None, steps=1)
    with pytest.raises(ValueError, match="no layer"):
        visualise(model, "conv.9.act", 0, None, steps=1)


# ---- the pieces, by hand -----------------------------------------------------------------------------
def test_the_frequency_scale_is_one_over_f_in_cycles_across_the_picture():
    scale = frequency_scale(16, 16)
    assert scale.shape == (16, 9)
    assert scale[0, 0] == 1.0 and scale[0, 1] == 1.0 and scale[1, 0] == 1.0  # constant and one cycle
    assert scale[0, 8] == pytest.approx(1 / 8)  # 8 cycles across: the finest horizontal stripes
    assert scale[3, 4] == pytest.approx(1 / 5)  # sqrt(3² + 4²) = 5 cycles
    assert scale[13, 4] == pytest.approx(1 / 5)  # row 13 is -3 cycles: the same frequency


def test_normalise_and_the_blur_are_the_formulas():
    pixels = torch.rand(1, 3, 5, 5)
    norm = {"mean": [0.1, 0.2, 0.3], "std": [0.5, 0.25, 2.0]}
    expected = (pixels - torch.tensor([0.1, 0.2, 0.3])[:, None, None]) / torch.tensor([0.5, 0.25, 2.0])[:, None, None]
    torch.testing.assert_close(normalise(pixels, norm), expected)
    torch.testing.assert_close(normalise(pixels, None), pixels)
    side = math.exp(-1 / (2 * 0.5 ** 2))
    by_hand = torch.tensor([side, 1.0, side])
    by_hand = by_hand[:, None] * by_hand[None, :] / (by_hand.sum() ** 2)
    kernel = blur_kernel(3)
    assert kernel.shape == (3, 1, 3, 3)
    torch.testing.assert_close(kernel[1, 0], by_hand)
    flat = torch.full((1, 3, 6, 6), 0.4)
    torch.testing.assert_close(jitter_and_blur(flat, (1, -1), kernel), flat)  # nothing to blur or shift
    spot = torch.zeros(1, 1, 5, 5)
    spot[0, 0, 2, 2] = 1.0
    moved = jitter_and_blur(spot, (1, 0), blur_kernel(1))
    torch.testing.assert_close(moved[0, 0, 2:5, 1:4], by_hand)  # the blur of a spot, one row down


def test_top_examples_are_the_channels_largest_means_worked_out_at_once(digits):
    model, data = digits
    top = top_examples(model, "conv.0.act", 4, data.x_val, k=5)
    with torch.no_grad():
        _, cache = model.run_with_cache(data.x_val, names=["conv.0.act"])
    means = cache["conv.0.act"][:, 4].mean(dim=(1, 2)).numpy()  # (N,) every example at once
    np.testing.assert_array_equal(top.indices, np.argsort(-means, kind="stable")[:5])
    np.testing.assert_allclose(top.activations, np.sort(means)[::-1][:5], rtol=1e-5)
    assert top.mean_activation == pytest.approx(float(means.mean()), rel=1e-5) and top.count == len(data.x_val)
    scores = channel_activations(model, CLASS_SCORE, 2, data.x_val, batch_size=50)
    with torch.no_grad():
        np.testing.assert_allclose(scores, model(data.x_val)[:, 2].numpy(), rtol=1e-5, atol=1e-5)


# ---- the figures ----------------------------------------------------------------------------------------
def test_the_pictures_row_draws_each_picture_under_its_escaped_title():
    grey = np.zeros((16, 16, 1), dtype=np.uint8)
    grey[3, 5] = 200
    fig = pictures_row([grey, np.full((16, 16, 3), 9, dtype=np.uint8)], [("what it wants", "1.00"), "<b>7</b>"])
    images = [trace for trace in fig.data if trace.type == "image"]
    assert len(images) == 2
    assert np.asarray(images[0].z)[3, 5].tolist() == [200, 200, 200]  # grey shown as it is, in R, G and B
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["what it wants<br>1.00", "&lt;b&gt;7&lt;/b&gt;"]


def test_the_climb_figure_counts_steps_from_one_and_draws_the_references():
    fig = climb_figure(np.array([0.1, 0.5, 0.9]), start=0.1, average_example=0.4, best_example=0.8, what="class <i>")
    assert list(fig.data[0].x) == [1, 2, 3]
    assert [trace.y[0] for trace in fig.data[1:]] == [0.8, 0.4, 0.1]
    assert "class &lt;i&gt;" in fig.layout.title.text
