"""App tests (AppTest) for the methods added to the table: the CAM family on digits-cnn, attention
rollout and Grad-CAM on patch tokens on shapes-vit, gradient × embedding on a sentence. The page
picks its methods from the table, so each appears among its choices, and what it draws is what
``explain.attributions.attribute`` computes for the same model, input and class."""
from __future__ import annotations

import numpy as np
import pytest

from explain.attributions import IMAGE_METHODS, TEXT_METHODS, attribute, image_baseline
from models import build_model, presets
from tests.app_helpers import figure, open_page, run, values
from training.datasets import load_dataset
from viz.attributions import attribution_map

CAMS = ["grad_cam_plus_plus", "hires_cam", "xgrad_cam", "layer_cam", "score_cam", "ablation_cam", "eigen_cam"]


def heatmaps(at) -> list[np.ndarray]:
    return [values(trace["z"]) for trace in figure(at, "attr_grid")["data"] if trace["type"] == "heatmap"]


def choose(at, methods: list[str]):
    pills = [g for g in at.get("button_group") if g.key == "attr_methods"][0]
    labels = {**{k: m.label for k, m in TEXT_METHODS.items()}, **{k: m.label for k, m in IMAGE_METHODS.items()}}
    assert {labels[method] for method in methods} <= set(pills.options)  # the choices show the table's labels
    pills.set_value(methods)
    return run(at)


@pytest.mark.parametrize("preset, dataset, methods", [("digits-cnn", "digits", CAMS),
                                                     ("shapes-vit", "shapes", ["attention_rollout", "vit_grad_cam"])])
def test_the_new_picture_methods_are_offered_and_drawn_as_explain_computes_them(preset, dataset, methods):
    model = build_model(presets.get(preset), seed=0)
    data = load_dataset(dataset)
    at = choose(open_page("attributions", model), methods)
    x = data.x_val[0]  # the page starts on validation example 1
    predicted = int(model(x.unsqueeze(0)).argmax())
    maps = heatmaps(at)
    assert len(maps) == len(methods)
    for drawn, method in zip(maps, methods):
        result = attribute(model, x, predicted, method, baselines=image_baseline(x, data.normalization))
        np.testing.assert_allclose(drawn, attribution_map(result.values, "signed"), rtol=1e-4, atol=1e-6)
    assert not at.error and not at.exception


def test_gradient_x_embedding_is_offered_for_sentences():
    model = build_model(presets.get("sentiment-lstm"), seed=0)
    at = open_page("attributions", model)
    at.text_area(key="attr_text").set_value("the film was not good")
    at = choose(run(at), ["gradient_x_activation"])
    ids = load_dataset("sentiment").preprocess("the film was not good")
    ids = ids[ids != 0]
    predicted = int(model(ids.unsqueeze(0)).argmax())
    expected = attribute(model, ids, predicted, "gradient_x_activation").values
    bars = [trace for trace in figure(at, "attr_tokens_0")["data"] if trace["type"] == "bar"]
    drawn = np.concatenate([values(trace["y"]) for trace in bars])
    np.testing.assert_allclose(np.sort(drawn), np.sort(expected), rtol=1e-4, atol=1e-6)
    assert not at.error
