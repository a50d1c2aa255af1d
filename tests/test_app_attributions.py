"""App tests (Streamlit AppTest) for the Attributions page: the maps drawn are those explain
computes for the same model, input and class; the class can be changed, and goes back to the
prediction when the model changes; the sanity check shows each method's trained and randomised
maps with their Spearman and SSIM, and the cascade; sentences get one score per word."""
from __future__ import annotations

import numpy as np
import pytest

from app_pages import common
from explain.attributions import (attribute, cascade_layers, cascading_copies, image_baseline, map_ssim,
                                  randomized_copy)
from explain.predictions import class_names_of
from models import build_model, presets
from tests.app_helpers import figure, has_figure, open_page, run, texts, values
from tests.test_app_pretrained import load_on_model_page, upload_picture
from tests.test_pretrained_vision import folders  # noqa: F401 - the fixture of tiny ResNet / ViT folders
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


def test_the_sanity_check_shows_each_pair_with_its_scores_and_the_cascade(digits):
    from scipy.stats import spearmanr

    model = build_model(presets.get("digits-cnn"), seed=0)
    at = open_page("attributions", model)  # the sanity check is on by default, outside the settings
    assert len(heatmaps(at)) == 3  # the maps themselves: the three default methods, once
    x = digits.x_val[0]
    predicted = int(model(x.unsqueeze(0)).argmax())
    randomised = randomized_copy(model, seed=0)
    metrics = [(m.label, m.value) for m in at.metric]
    assert [label for label, _ in metrics] == ["Spearman of |map|", "SSIM"] * 3
    for index, method in enumerate(["saliency", "integrated_gradients", "grad_cam"]):
        trained = attribute(model, x, predicted, method, baselines=image_baseline(x, digits.normalization)).values
        random = attribute(randomised, x, predicted, method, baselines=image_baseline(x, digits.normalization)).values
        pair = heatmaps(at, f"attr_sanity_pair_{index}")
        np.testing.assert_allclose(pair[0], attribution_map(trained, "absolute"), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(pair[1], attribution_map(random, "absolute"), rtol=1e-4, atol=1e-6)
        spearman = spearmanr(np.abs(trained.sum(0)).ravel(), np.abs(random.sum(0)).ravel()).statistic
        shown = metrics[2 * index][1]
        assert shown == ("—" if np.isnan(spearman) else f"{spearman:.2f}")
        assert metrics[2 * index + 1][1] == _number(map_ssim(trained, random))
        row = heatmaps(at, f"attr_cascade_{index}")  # trained, then fc.1, fc.0, conv.1, conv.0 re-drawn
        assert len(row) == 5
        np.testing.assert_allclose(row[0], attribution_map(trained, "absolute"), rtol=1e-4, atol=1e-6)
        steps = list(cascading_copies(model))
        np.testing.assert_allclose(row[2], attribution_map(attribute(
            steps[1][1], x, predicted, method, baselines=image_baseline(x, digits.normalization)).values, "absolute"),
            rtol=1e-4, atol=1e-6)
    curve = figure(at, "attr_cascade_curve")["data"]
    assert len(curve) == 6  # a Spearman and an SSIM line per method
    assert list(curve[0]["x"]) == ["trained"] + [f"+\u00a0{name}" for name in ("fc.1", "fc.0", "conv.1", "conv.0")]
    assert not at.error
    at.toggle(key="attr_sanity").set_value(False)
    run(at)
    assert not at.metric and not has_figure(at, "attr_sanity_pair_0") and not has_figure(at, "attr_cascade_curve")
    assert has_figure(at, "attr_grid")


def _number(value: float) -> str:
    return "—" if np.isnan(value) else f"{value:.2f}"


def test_the_integrated_gradients_gap_gets_a_plain_verdict(digits):
    model = build_model(presets.get("digits-cnn"), seed=0)
    at = open_page("attributions", model)
    x = digits.x_val[0]
    result = attribute(model, x, None, "integrated_gradients", baselines=image_baseline(x, digits.normalization))
    share = abs(result.delta) / abs(result.expected_total)
    small = "under 0.1%" if share < 0.001 else f"{share:.1%}"
    expected = f"small: {small} of the total" if share <= 0.05 else f"large: {share:.0%} of the total"
    assert any(expected in text for text in texts(at.markdown)), expected


def test_the_explained_class_resets_to_the_prediction_when_the_model_changes():
    at = open_page("attributions", build_model(presets.get("digits-cnn"), seed=0))
    at.selectbox(key="attr_target").set_value(3)
    run(at)
    assert any("“3”" in h.value for h in at.subheader)
    lstm = build_model(presets.get("sentiment-lstm"), seed=0)
    at.session_state[common.CURRENT_MODEL] = lstm
    run(at)
    sentiment = load_dataset("sentiment")
    ids = sentiment.preprocess(at.text_area(key="attr_text").value)
    ids = ids[ids != 0]
    predicted = int(lstm(ids.unsqueeze(0)).argmax())
    assert at.selectbox(key="attr_target").value == -1  # "the predicted one"
    explained = [h.value for h in at.subheader if h.value.startswith("What speaks for")]
    assert explained == [f"What speaks for “{class_names_of(lstm)[predicted]}”"], explained
    assert not at.error


def test_a_sentence_gets_its_sanity_check_over_words_without_ssim():
    model = build_model(presets.get("sentiment-lstm"), seed=0)
    at = open_page("attributions", model)
    pills = [g for g in at.get("button_group") if g.key == "attr_methods"][0]
    pills.set_value(["integrated_gradients", "occlusion"])
    run(at)
    assert [m.label for m in at.metric] == ["Spearman of |scores|"] * 2  # Layer IG and word occlusion; no SSIM
    words = figure(at, "attr_cascade_0")["data"][0]
    assert list(words["y"]) == ["trained"] + [f"+\u00a0{name}" for name in ("head", "rnn.net", "embed.tokens")]
    shares = values(words["z"])
    assert np.allclose(np.abs(shares).max(axis=1), 1.0)  # each step on its own scale
    assert len(figure(at, "attr_cascade_curve")["data"]) == 2  # Spearman only
    assert "attr_smoothgrad" not in [t.key for t in at.toggle]  # SmoothGrad does not wrap the words' Layer IG
    assert not at.error


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


def test_a_pretrained_model_waits_to_be_asked_for_the_cascade(folders):  # noqa: F811
    at = load_on_model_page(str(folders["resnet"]))
    model = at.session_state[common.CURRENT_MODEL]
    at.switch_page("app_pages/attributions.py")
    run(at)
    at, _ = upload_picture(at, "attr")
    assert [m.label for m in at.metric] == ["Spearman of |map|", "SSIM"] * 3  # the pairs are there at once
    assert not has_figure(at, "attr_cascade_0")  # minutes on a real pretrained model: not unasked
    at.toggle(key="attr_cascade").set_value(True)
    run(at)
    layers = cascade_layers(model)
    assert len(heatmaps(at, "attr_cascade_0")) == 1 + len(layers)
    assert len(layers) > 1 and not at.error
