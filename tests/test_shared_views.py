"""The server-wide caches of views many sessions compute on the same model and input
(app_pages.shared_views): keyed by content, so every session's copy of a model and input shares
one result, and a different input or a model with other weights gets its own."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from app_pages import shared_views
from explain import cnn as explain_cnn
from explain.cnn import inspect_cnn
from models import build_model, presets
from tests.app_helpers import figure, open_page, run, values
from training.datasets import load_dataset
from viz.cnn import feature_maps_figure


@pytest.fixture(autouse=True)
def fresh_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))
    shared_views.clear()
    yield
    shared_views.clear()


def digits_cnn(seed: int = 0):
    return build_model(presets.get("digits-cnn"), seed=seed)


def test_copies_of_a_model_share_a_key_and_other_weights_do_not():
    first, copy = digits_cnn(), digits_cnn()
    assert first is not copy
    assert shared_views.model_key(first) == shared_views.model_key(copy)
    assert shared_views.model_key(digits_cnn(seed=1)) != shared_views.model_key(first)
    changed = digits_cnn()
    with torch.no_grad():
        changed.state_dict()["conv.0.conv.weight"][0, 0, 0, 0] += 1e-3  # one weight of a new copy, before anyone looked at it
    assert shared_views.model_key(changed) != shared_views.model_key(first)


def test_content_key_tells_inputs_apart_by_content():
    x = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert shared_views.content_key(x, scale=True) == shared_views.content_key(x.clone(), scale=True)
    other = x.clone()
    other[0, 3, 4] += 0.5
    assert shared_views.content_key(other, scale=True) != shared_views.content_key(x, scale=True)
    assert shared_views.content_key(x, scale=False) != shared_views.content_key(x, scale=True)
    assert shared_views.content_key(x.double()) != shared_views.content_key(x)  # same values, another dtype
    assert shared_views.content_key(np.zeros((2, 3))) != shared_views.content_key(np.zeros((3, 2)))
    with pytest.raises(shared_views.Uncacheable):
        shared_views.content_key(object())


def test_same_model_and_input_are_computed_once_and_shared():
    x = load_dataset("digits").x_val[0]
    first = shared_views.computed_once(inspect_cnn, digits_cnn(), x)
    again = shared_views.computed_once(inspect_cnn, digits_cnn(), x.clone())  # another session's copies
    assert again is first
    reference = inspect_cnn(digits_cnn(), x)
    np.testing.assert_allclose(first.convs[0].pre, reference.convs[0].pre, rtol=1e-6)
    other_input = shared_views.computed_once(inspect_cnn, digits_cnn(), load_dataset("digits").x_val[1])
    assert other_input is not first
    np.testing.assert_allclose(other_input.probabilities,
                               inspect_cnn(digits_cnn(), load_dataset("digits").x_val[1]).probabilities, rtol=1e-6)
    other_model = shared_views.computed_once(inspect_cnn, digits_cnn(seed=1), x)
    assert other_model is not first
    np.testing.assert_allclose(other_model.probabilities, inspect_cnn(digits_cnn(seed=1), x).probabilities, rtol=1e-6)


def test_figures_are_built_once_per_content():
    maps = np.random.default_rng(0).normal(size=(4, 6, 6)).astype(np.float32)
    first = shared_views.figure_once(feature_maps_figure, maps, shared_scale=True)
    assert shared_views.figure_once(feature_maps_figure, maps.copy(), shared_scale=True) is first
    assert shared_views.figure_once(feature_maps_figure, maps, shared_scale=False) is not first
    changed = maps.copy()
    changed[0, 0, 0] += 1
    built = shared_views.figure_once(feature_maps_figure, changed, shared_scale=True)
    assert built is not first
    assert built.to_dict() == feature_maps_figure(changed, shared_scale=True).to_dict()


def test_an_argument_without_a_digest_is_computed_each_time():
    calls = []

    def count(value):
        calls.append(value)
        return len(calls)

    marker = object()
    assert shared_views.computed_once(count, marker) == 1
    assert shared_views.computed_once(count, marker) == 2


def test_two_sessions_on_the_same_model_and_example_share_one_inspection(monkeypatch):
    calls = []

    @functools.wraps(inspect_cnn)
    def counted(model, x):
        calls.append(model)
        return inspect_cnn(model, x)

    monkeypatch.setattr(explain_cnn, "inspect_cnn", counted)  # the page imports it anew on every run
    first = open_page("inspect_cnn")  # each session builds its own digits-cnn (same seed, same weights)
    second = open_page("inspect_cnn")
    assert len(calls) == 1
    assert calls[0] is first.session_state["current_model"]
    reference = inspect_cnn(second.session_state["current_model"], load_dataset("digits").x_val[0])
    bars = figure(second, "cnn_prediction")["data"][0]
    np.testing.assert_allclose(np.sort(values(bars["x"]))[::-1], np.sort(reference.probabilities)[::-1][:5],
                               rtol=1e-5)
    second.number_input(key="cnn_example").set_value(2)  # another example: computed for it
    run(second)
    assert len(calls) == 2
    second.session_state["current_model"] = digits_cnn(seed=1)  # another model, the same example
    run(second)
    assert len(calls) == 3
