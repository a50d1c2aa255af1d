"""Faithfulness metrics against hand computations: deletion and insertion curves on a linear model
whose probabilities are known in closed form, ERASER's comprehensiveness and sufficiency on a
5-word sentence, and infidelity / max-sensitivity equal to calling captum.metrics directly."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from captum.attr import Saliency
from captum.metrics import infidelity, sensitivity_max
from torch import nn

from explain.attributions import attribute, image_baseline
from explain.faithfulness import (ERASER_BINS, deletion_curve, eraser_scores, insertion_curve, random_ranking)
from explain.faithfulness_captum import infidelity_of, max_sensitivity_of
from explain.faithfulness_report import RANDOM_LABEL, default_patch, faithfulness_report
from models import build_model, presets
from viz.faithfulness import faithfulness_curves, faithfulness_table


class LinearPicture(nn.Module):
    """Two classes; logit of class 0 = w·x + b, class 1 = 0: p(class 0) = sigmoid(w·x + b), so
    removing pixel i (onto a zero baseline) changes the logit by exactly −w_i x_i."""

    def __init__(self, weights: torch.Tensor, bias: float):
        super().__init__()
        self.weights, self.bias = nn.Parameter(weights.clone()), bias

    def forward(self, x):  # (B, C, H, W) -> (B, 2)
        logit = (x * self.weights).flatten(1).sum(dim=1) + self.bias
        return torch.stack([logit, torch.zeros_like(logit)], dim=1)


class BagOfWords(nn.Module):
    """Logit of class 0 = sum of each word's weight (the pad id 0 weighs nothing), class 1 = 0."""
    pad_id = 0

    def __init__(self, weights: list[float]):
        super().__init__()
        self.weights = nn.Parameter(torch.tensor([0.0, *weights]))

    def forward(self, ids):  # (B, T) -> (B, 2)
        logit = self.weights[ids].sum(dim=1)
        return torch.stack([logit, torch.zeros_like(logit)], dim=1)


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


@pytest.fixture
def linear():
    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(1, 2, 3, generator=generator)
    x = torch.rand(1, 2, 3, generator=generator) + 0.5
    return LinearPicture(weights, 0.3), x


def hand_curve(contributions: np.ndarray, order, bias: float, deletion: bool) -> np.ndarray:
    """p(class 0) after removing (deletion) or revealing (insertion) units in ``order``, one at a time."""
    probabilities = []
    for k in range(len(order) + 1):
        changed = list(order[:k])
        present = [u for u in range(len(contributions)) if (u not in changed) == deletion]
        probabilities.append(sigmoid(bias + contributions[present].sum()))
    return np.array(probabilities)


def test_curves_equal_the_hand_computation_on_a_linear_model(linear):
    model, x = linear
    contributions = (model.weights * x).detach().numpy().ravel()  # w_i x_i per pixel
    values = (model.weights * x).detach().numpy()
    order = np.argsort(-contributions, kind="stable")
    baseline = torch.zeros_like(x)
    deletion = deletion_curve(model, x, 0, values, steps=6, baseline=baseline)
    insertion = insertion_curve(model, x, 0, values, steps=6, baseline=baseline)
    np.testing.assert_allclose(deletion.fractions, np.arange(7) / 6)
    np.testing.assert_allclose(deletion.probabilities, hand_curve(contributions, order, 0.3, True), rtol=1e-6)
    np.testing.assert_allclose(insertion.probabilities, hand_curve(contributions, order, 0.3, False), rtol=1e-6)
    assert deletion.auc == pytest.approx(np.trapezoid(deletion.probabilities, np.arange(7) / 6))
    assert insertion.auc == pytest.approx(np.trapezoid(insertion.probabilities, np.arange(7) / 6))


def test_the_perfect_ranking_beats_every_other_and_the_random_one(linear):
    model, x = linear
    perfect = (model.weights * x).detach().numpy()
    baseline = torch.zeros_like(x)
    best_deletion = deletion_curve(model, x, 0, perfect, steps=6, baseline=baseline).auc
    best_insertion = insertion_curve(model, x, 0, perfect, steps=6, baseline=baseline).auc
    for permutation in itertools.islice(itertools.permutations(range(6)), 0, 720, 7):
        values = (6.0 - np.argsort(permutation)).reshape(1, 2, 3)  # ranks units in this order
        assert deletion_curve(model, x, 0, values, steps=6, baseline=baseline).auc >= best_deletion - 1e-12
        assert insertion_curve(model, x, 0, values, steps=6, baseline=baseline).auc <= best_insertion + 1e-12
    random = random_ranking(x, seed=0)
    assert random.shape == (1, 2, 3)
    assert deletion_curve(model, x, 0, random, steps=6, baseline=baseline).auc > best_deletion
    assert insertion_curve(model, x, 0, random, steps=6, baseline=baseline).auc < best_insertion
    np.testing.assert_array_equal(random, random_ranking(x, seed=0))  # seeded: the same reference every time


def test_patches_rank_by_their_mean_and_change_all_their_pixels():
    generator = torch.Generator().manual_seed(1)
    weights, x = torch.randn(1, 4, 4, generator=generator), torch.rand(1, 4, 4, generator=generator)
    model = LinearPicture(weights, -0.2)
    values = torch.rand(1, 4, 4, generator=generator).numpy()
    contributions = (weights * x)[0].numpy()  # (4, 4)
    blocks = [(r, c) for r in (0, 2) for c in (0, 2)]  # 2×2 patches, numbered along rows
    patch_scores = np.array([values[0, r:r + 2, c:c + 2].mean() for r, c in blocks])
    patch_contributions = np.array([contributions[r:r + 2, c:c + 2].sum() for r, c in blocks])
    order = np.argsort(-patch_scores, kind="stable")
    curve = deletion_curve(model, x, 0, values, steps=4, baseline=torch.zeros_like(x), patch=2)
    assert curve.units == 4
    np.testing.assert_allclose(curve.probabilities, hand_curve(patch_contributions, order, -0.2, True), rtol=1e-6)


def test_maps_that_rank_nothing_are_refused_in_words(linear):
    model, x = linear
    with pytest.raises(ValueError, match="NaN"):
        deletion_curve(model, x, 0, np.full((1, 2, 3), np.nan), baseline=torch.zeros_like(x))
    with pytest.raises(ValueError, match="needs"):
        deletion_curve(model, x, 0, np.zeros((1, 3, 2)), baseline=torch.zeros_like(x))
    with pytest.raises(ValueError, match="at least 1 step"):
        insertion_curve(model, x, 0, np.zeros((1, 2, 3)), steps=0, baseline=torch.zeros_like(x))


def test_the_baseline_is_the_attributions_pages(linear):
    model, x = linear
    normalization = {"mean": [0.5], "std": [0.25]}
    model.meta = type("Meta", (), {"normalization": normalization})()
    values = (model.weights * x).detach().numpy()
    found = deletion_curve(model, x, 0, values, steps=6)
    given = deletion_curve(model, x, 0, values, steps=6, baseline=image_baseline(x, normalization))
    np.testing.assert_array_equal(found.probabilities, given.probabilities)
    everything_removed = torch.softmax(model(image_baseline(x, normalization).unsqueeze(0)), dim=-1)[0, 0].detach()
    assert found.probabilities[-1] == pytest.approx(float(everything_removed))


def test_batching_gives_the_same_numbers_as_one_by_one():
    model = build_model(presets.get("digits-cnn"), seed=0).eval()
    x = torch.rand(1, 16, 16)
    values = torch.rand(1, 16, 16).numpy()
    calls = []
    batched = deletion_curve(model, x, 2, values, steps=10, batch_size=64, progress=lambda d, t: calls.append((d, t)))
    single = deletion_curve(model, x, 2, values, steps=10, batch_size=1)
    np.testing.assert_allclose(batched.probabilities, single.probabilities, rtol=1e-5, atol=1e-7)
    assert calls == [(0, 11), (11, 11)]  # one forward pass for all 11 inputs
    # one-by-one by hand: the k·U/steps top-ranked pixels set to the baseline (zeros here)
    order = np.argsort(-values.ravel(), kind="stable")
    with torch.no_grad():
        for k, probability in enumerate(batched.probabilities):
            covered = x.clone().reshape(-1)
            covered[torch.as_tensor(order[:round(k * 256 / 10)])] = 0.0
            expected = torch.softmax(model(covered.reshape(1, 1, 16, 16)), dim=-1)[0, 2]
            assert probability == pytest.approx(float(expected), rel=1e-5)


def test_words_are_replaced_by_the_pad_id():
    weights = [0.8, -0.5, 1.5, 0.1, -1.2]
    model = BagOfWords(weights)
    ids = torch.tensor([1, 2, 3, 4, 5])
    values = np.array(weights)  # each word's exact share of the logit
    order = np.argsort(-values, kind="stable")
    curve = deletion_curve(model, ids, 0, values, steps=5)
    np.testing.assert_allclose(curve.probabilities, hand_curve(values, order, 0.0, True), rtol=1e-6)
    curve = insertion_curve(model, ids, 0, values, steps=5)
    np.testing.assert_allclose(curve.probabilities, hand_curve(values, order, 0.0, False), rtol=1e-6)
    assert random_ranking(ids).shape == (5,)


def test_comprehensiveness_and_sufficiency_by_hand_on_five_words():
    weights = [0.8, -0.5, 1.5, 0.1, -1.2]
    model = BagOfWords(weights)
    ids = torch.tensor([1, 2, 3, 4, 5])
    values = np.array([0.3, 0.1, 0.9, 0.5, -0.4])  # ranks words 3, 4, 1, 2, 5
    scores = eraser_scores(model, ids, 0, values)
    # ceil(share × 5): 1% 5% 10% 20% -> the top word (3); 50% -> the top three (3, 4, 1)
    assert scores.words == (1, 1, 1, 1, 3)
    full = sigmoid(sum(weights))
    without_top1, top1_alone = sigmoid(sum(weights) - 1.5), sigmoid(1.5)
    without_top3, top3_alone = sigmoid(sum(weights) - 1.5 - 0.1 - 0.8), sigmoid(1.5 + 0.1 + 0.8)
    comprehensiveness = [full - without_top1] * 4 + [full - without_top3]
    sufficiency = [full - top1_alone] * 4 + [full - top3_alone]
    assert scores.bins == ERASER_BINS
    np.testing.assert_allclose(scores.comprehensiveness_per_bin, comprehensiveness, rtol=1e-6)
    np.testing.assert_allclose(scores.sufficiency_per_bin, sufficiency, rtol=1e-6)
    assert scores.comprehensiveness == pytest.approx(np.mean(comprehensiveness))
    assert scores.sufficiency == pytest.approx(np.mean(sufficiency))


@pytest.fixture(scope="module")
def digits_cnn():
    model = build_model(presets.get("digits-cnn"), seed=0).eval()
    x = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(3))
    return model, x


def test_infidelity_equals_captums(digits_cnn):
    model, x = digits_cnn
    values = attribute(model, x, 4, "integrated_gradients").values
    found = infidelity_of(model, x, 4, values, noise=0.1, n_perturb_samples=16, seed=5)
    sigma = 0.1 * float(x.max() - x.min())

    def perturb(inputs):
        change = torch.randn_like(inputs) * sigma
        return change, inputs - change

    torch.manual_seed(5)
    with torch.no_grad():
        expected = infidelity(model, perturb, x.unsqueeze(0), torch.as_tensor(values).unsqueeze(0), target=4,
                              n_perturb_samples=16, normalize=True)
    assert found == pytest.approx(float(expected[0]), rel=1e-5)


def test_max_sensitivity_equals_captums(digits_cnn):
    model, x = digits_cnn
    found = max_sensitivity_of(model, x, 4, "saliency", radius=0.05, n_perturb_samples=4, seed=2)
    torch.manual_seed(2)
    expected = sensitivity_max(lambda inputs: Saliency(model).attribute(inputs, target=4, abs=True), x.unsqueeze(0),
                               perturb_radius=0.05 * float(x.max() - x.min()), n_perturb_samples=4)
    assert found == pytest.approx(float(expected[0]), rel=1e-5)


def test_the_report_has_every_method_then_the_random_reference(digits_cnn):
    model, x = digits_cnn
    maps = [(m, m, attribute(model, x, 4, m).values) for m in ("saliency", "grad_cam")]
    calls = []
    report = faithfulness_report(model, x, 4, maps, steps=8, baseline=torch.zeros_like(x), captum_metrics=True,
                                 progress=lambda done, total, label: calls.append(label))
    assert [s.label for s in report] == ["saliency", "grad_cam", RANDOM_LABEL] == calls
    saliency = report[0]
    expected = deletion_curve(model, x, 4, maps[0][2], steps=8, baseline=torch.zeros_like(x))
    np.testing.assert_allclose(saliency.deletion.probabilities, expected.probabilities)
    assert saliency.infidelity == pytest.approx(infidelity_of(model, x, 4, maps[0][2]))
    assert report[-1].max_sensitivity is None and report[-1].infidelity is not None
    assert default_patch(x) == 1 and default_patch(torch.zeros(3, 224, 224)) == 7


def test_the_figure_draws_each_method_in_both_panels_and_escapes_text():
    fractions = np.linspace(0, 1, 5)
    deletion = {"Saliency": np.linspace(0.9, 0.1, 5), RANDOM_LABEL: np.linspace(0.9, 0.5, 5)}
    insertion = {"Saliency": np.linspace(0.1, 0.9, 5), RANDOM_LABEL: np.linspace(0.1, 0.5, 5)}
    fig = faithfulness_curves(fractions, deletion, insertion, reference=RANDOM_LABEL, class_name="<b>cat</b>")
    assert len(fig.data) == 4
    np.testing.assert_allclose(fig.data[0].x, 100 * fractions)
    np.testing.assert_allclose(fig.data[1].y, insertion["Saliency"])
    assert fig.data[2].line.dash == "dash" and fig.data[0].line.dash is None
    assert fig.data[0].line.color == fig.data[1].line.color
    assert "&lt;b&gt;cat" in fig.layout.yaxis.title.text and "<b>cat" not in fig.layout.yaxis.title.text


def test_the_table_ranks_by_insertion_minus_deletion_with_the_reference_last():
    rows = [{"method": "A", "deletion": 0.4, "insertion": 0.5}, {"method": RANDOM_LABEL, "deletion": 0.5, "insertion": 0.3},
            {"method": "B", "deletion": 0.2, "insertion": 0.6}]
    table = faithfulness_table(rows, reference=RANDOM_LABEL)
    assert [r["Method"] for r in table] == ["B", "A", RANDOM_LABEL]
    assert [r["Rank"] for r in table] == ["1", "2", "reference"]
    assert table[0]["Insertion − deletion ↑"] == pytest.approx(0.4)
    assert "Infidelity ↓" not in table[0]
    rows[0]["infidelity"] = 0.000123456
    assert faithfulness_table(rows, reference=RANDOM_LABEL)[1]["Infidelity ↓"] == 0.000123  # 3 significant digits
    assert faithfulness_table(rows, reference=RANDOM_LABEL)[0]["Infidelity ↓"] is None


class NothingLeft(nn.Module):
    """Gives NaN once every pixel is the baseline (zeros), as a model that masks everything might."""

    def forward(self, x):  # (B, C, H, W) -> (B, 2)
        total = x.flatten(1).sum(dim=1)
        logit = torch.where(total == 0, torch.full_like(total, float("nan")), total)
        return torch.stack([logit, torch.zeros_like(logit)], dim=1)


def test_a_model_with_nothing_left_to_read_is_said_in_words():
    x = torch.ones(1, 2, 2)
    with pytest.raises(ValueError, match="no probability"):
        deletion_curve(NothingLeft(), x, 0, np.ones((1, 2, 2)), steps=4, baseline=torch.zeros_like(x))
