"""App tests (Streamlit AppTest) for the Attributions page: the maps drawn are those explain
computes for the same model, input and class; the class can be changed; the sanity check adds
the randomised model's maps; sentences get one score per word."""
from __future__ import annotations

import numpy as np
import pytest

from explain.attributions import attribute, image_baseline, randomized_copy
from models import build_model, presets
from tests.app_helpers import figure, open_page, run, texts, values
from training.datasets import load_dataset
from viz.attributions import attribution_map


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def heatmaps(at, key: str = "attr_grid") -> list[np.ndarray]:
    return [values(trace["z"]) for trace in figure(at, key)["data"] if trace["type"] == "heatmap"]


def reference(model, x, target: int, method: str, normalization) -> np.ndarray:
    result = attribute(model, x, target, method, baselines=image_baseline(x, normalization))
    return attribution_map(result.values, "signed")


def test_the_default_methods_are_drawn_as_explain_computes_them(digits):
    model = build_model(presets.get("digits-cnn"), seed=0)
    at = open_page("attributions", model)
    x = digits.x_val[0]  # the page starts on validation example 1
    predicted = int(model(x.unsqueeze(0)).argmax())
    maps = heatmaps(at)
    assert len(maps) == 3  # Saliency, Integrated Gradients, Grad-CAM
    for drawn, method in zip(maps, ["saliency", "integrated_gradients", "grad_cam"]):
        np.testing.assert_allclose(drawn, reference(model, x, predicted, method, digits.normalization),
                                   rtol=1e-4, atol=1e-6)
    latex = " ".join(texts(at.get("latex")))
    assert "\\delta" in latex and "f(x) - f(" in latex  # the completeness check, with its numbers
    assert not at.error


def test_another_class_can_be_explained(digits):
    model = build_model(presets.get("digits-cnn"), seed=0)
    at = open_page("attributions", model)
    at.selectbox(key="attr_target").set_value(3)
    run(at)
    saliency = heatmaps(at)[0]
    np.testing.assert_allclose(saliency, reference(model, digits.x_val[0], 3, "saliency", digits.normalization),
                               rtol=1e-4, atol=1e-6)
    assert any("“3”" in h.value for h in at.subheader)


def test_the_sanity_check_adds_the_randomised_models_maps(digits):
    model = build_model(presets.get("digits-cnn"), seed=0)
    at = open_page("attributions", model)
    at.toggle(key="attr_sanity").set_value(True)
    run(at)
    maps = heatmaps(at)
    assert len(maps) == 6  # the same three methods, twice
    x = digits.x_val[0]
    predicted = int(model(x.unsqueeze(0)).argmax())
    random_saliency = reference(randomized_copy(model, seed=0), x, predicted, "saliency", digits.normalization)
    np.testing.assert_allclose(maps[3], random_saliency, rtol=1e-4, atol=1e-6)
    assert not np.allclose(maps[0], maps[3])


def test_more_methods_and_smoothgrad(digits):
    model = build_model(presets.get("digits-cnn"), seed=0)
    at = open_page("attributions", model)
    pills = [g for g in at.get("button_group") if g.key == "attr_methods"][0]
    pills.set_value(["gradient_shap", "deeplift", "occlusion", "guided_grad_cam"])
    run(at)
    assert len(heatmaps(at)) == 4
    at.toggle(key="attr_smoothgrad").set_value(True)
    run(at)
    assert len(heatmaps(at)) == 4 and not at.error


@pytest.mark.parametrize("preset", ["sentiment-lstm", "sentiment-transformer"])
def test_sentences_get_one_score_per_word(preset):
    model = build_model(presets.get(preset), seed=0)
    at = open_page("attributions", model)
    at.text_area(key="attr_text").set_value("the film was not good")
    run(at)
    sentiment = load_dataset("sentiment")
    ids = sentiment.preprocess("the film was not good")
    ids = ids[ids != 0]
    predicted = int(model(ids.unsqueeze(0)).argmax())
    expected = attribute(model, ids, predicted, "integrated_gradients").values
    bars = figure(at, "attr_tokens_0")["data"]
    drawn = np.concatenate([values(trace["y"]) for trace in bars if trace["type"] == "bar"]) if len(bars) > 1 \
        else values(bars[0]["y"])
    assert len(drawn) == 5
    np.testing.assert_allclose(np.sort(drawn), np.sort(expected), rtol=1e-4, atol=1e-6)
    chips = " ".join(texts(at.markdown))
    assert all(word in chips for word in ["film", "not", "good"])


def test_a_vision_transformer_offers_only_the_methods_that_apply():
    at = open_page("attributions", build_model(presets.get("shapes-vit"), seed=0))
    pills = [g for g in at.get("button_group") if g.key == "attr_methods"][0]
    assert "grad_cam" not in pills.options and "deeplift" not in pills.options
    assert len(heatmaps(at)) >= 1 and not at.error
