"""App tests (Streamlit AppTest) for the faithfulness section of the Attributions page: the table
and curves show what explain.faithfulness computes for the same trained model, input, class and
maps, for a picture model (digits-cnn) and a sentence model (an LSTM)."""
from __future__ import annotations

import numpy as np
import pytest

from app_pages import attribution_faithfulness
from explain.attributions import attribute, image_baseline
from explain.faithfulness import deletion_curve, eraser_scores, insertion_curve
from explain.faithfulness_report import RANDOM_LABEL
from tests.app_helpers import figure, open_page, run, values
from tests.trained_models import dataset_of, trained

DELETION = "Deletion area ↓"
INSERTION = "Insertion area ↑"


def table(at):
    found = [frame.value for frame in at.dataframe if DELETION in frame.value.columns]
    assert found, "no faithfulness table"
    return found[0]


def test_digits_cnn_ranks_its_methods_by_the_curves():
    model = trained("digits-cnn")
    dataset = dataset_of("digits-cnn")
    at = open_page("attributions", model)
    x = dataset.x_val[0]  # the page starts on validation example 1
    predicted = int(model(x.unsqueeze(0)).argmax())
    baseline = image_baseline(x, model.meta.normalization)
    frame = table(at)
    assert list(frame["Rank"]) == ["1", "2", "3", "reference"]
    assert list(frame["Method"])[-1] == RANDOM_LABEL
    gaps = list(frame["Insertion − deletion ↑"])[:3]
    assert gaps == sorted(gaps, reverse=True)
    saliency = attribute(model, x, predicted, "saliency", baselines=baseline).values
    deletion = deletion_curve(model, x, predicted, saliency, baseline=baseline)
    insertion = insertion_curve(model, x, predicted, saliency, baseline=baseline)
    row = frame[frame["Method"] == "Saliency"].iloc[0]
    assert row[DELETION] == pytest.approx(round(deletion.auc, 3), abs=1e-9)
    assert row[INSERTION] == pytest.approx(round(insertion.auc, 3), abs=1e-9)
    curves = figure(at, "attr_faith_curves")["data"]
    assert len(curves) == 8  # three methods and the random ranking, each in both panels
    drawn = {(trace["name"], trace["xaxis"]): values(trace["y"]) for trace in curves}
    np.testing.assert_allclose(drawn[("Saliency", "x")], deletion.probabilities, rtol=1e-5)
    np.testing.assert_allclose(drawn[("Saliency", "x2")], insertion.probabilities, rtol=1e-5)
    assert not at.error


def test_infidelity_and_max_sensitivity_on_demand():
    at = open_page("attributions", trained("digits-cnn"))
    assert "Infidelity ↓" not in table(at).columns
    at.toggle(key="attr_faith_captum").set_value(True)
    run(at)
    frame = table(at)
    assert frame["Infidelity ↓"].notna().all()
    assert frame["Max-sensitivity ↓"].notna().sum() == 3  # not for the random ranking
    assert not at.error


def test_an_lstm_gets_comprehensiveness_and_sufficiency():
    model = trained("sentiment-lstm")
    at = open_page("attributions", model)
    at.text_area(key="attr_text").set_value("the film was not good")
    pills = [g for g in at.get("button_group") if g.key == "attr_methods"][0]
    pills.set_value(["integrated_gradients", "occlusion"])
    run(at)
    ids = dataset_of("sentiment-lstm").preprocess("the film was not good")
    ids = ids[ids != 0]
    predicted = int(model(ids.unsqueeze(0)).argmax())
    frame = table(at)
    assert len(frame) == 3 and list(frame["Rank"])[-1] == "reference"
    occlusion = attribute(model, ids, predicted, "occlusion").values
    expected = eraser_scores(model, ids, predicted, occlusion)
    row = frame[frame["Method"] == "Occlusion (one word at a time)"].iloc[0]
    assert row["Comprehensiveness ↑"] == pytest.approx(expected.comprehensiveness, rel=5e-3)  # 3 significant digits
    assert row["Sufficiency ↓"] == pytest.approx(expected.sufficiency, rel=5e-3)
    curves = figure(at, "attr_faith_curves")["data"]
    assert len(curves) == 6
    drawn = {(trace["name"], trace["xaxis"]): values(trace["y"]) for trace in curves}
    np.testing.assert_allclose(drawn[("Occlusion (one word at a time)", "x")],
                               deletion_curve(model, ids, predicted, occlusion).probabilities, rtol=1e-5)
    assert not at.error


def test_a_failure_leaves_the_maps_and_says_so_in_words(monkeypatch):
    def failing(*args, **kwargs):
        raise ValueError("the model gives no probability for some of the changed inputs")

    monkeypatch.setattr(attribution_faithfulness, "faithfulness_report", failing)
    attribution_faithfulness.shared_report.clear()
    at = open_page("attributions", trained("digits-cnn"))
    assert any("could not be computed" in w.value and "no probability" in w.value for w in at.warning)
    assert not [frame for frame in at.dataframe if DELETION in frame.value.columns]
    assert figure(at, "attr_grid")  # the maps are still there
    attribution_faithfulness.shared_report.clear()
