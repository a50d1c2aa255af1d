"""explain.familiarity: a photo given to the digits CNN and a sentence of made-up words are called
far from the training data, validation examples are not, and the distance is Lee et al.'s
Mahalanobis distance worked out by hand."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from app_pages import shared_views
from explain.familiarity import (MARGIN, SHRINKAGE, familiarity, fit_gaussians, fit_reference, input_statistics,
                                 knows_phrase, model_features, trained_on, unknown_share)
from explain.inputs import input_context, prepare_image, prepare_sentence, read_image
from models import build_model, presets
from models.pretrained import BUILTIN_TEXT, load_pretrained
from tests.make_photo import PHOTO
from tests.trained_models import dataset_of, trained

MADE_UP = "blorf quazzle mimbo trank zeeble wuggish"


def reference_for(preset: str):
    model, dataset = trained(preset), dataset_of(preset)
    return model, dataset, fit_reference(model, dataset.x_train, dataset.y_train, dataset.x_val,
                                         dataset.class_names, dataset.name)


# ---- the distance, by hand ---------------------------------------------------------------------
def test_the_distance_is_the_mahalanobis_distance_to_the_nearest_class_mean_worked_out_by_hand():
    features = np.array([[0.0, 1.0], [2.0, 1.0], [1.0, 3.0],  # class 0
                         [5.0, 5.0], [7.0, 6.0], [6.0, 7.0]])  # class 1
    labels = np.array([0, 0, 0, 1, 1, 1])
    gaussians = fit_gaussians(features, labels, num_classes=2)
    # By hand: class means, the covariance of every row around its own class mean, shrunk.
    mean0, mean1 = np.array([1.0, 5 / 3]), np.array([6.0, 6.0])
    centred = np.array([row - (mean0 if label == 0 else mean1) for row, label in zip(features, labels)])
    covariance = sum(np.outer(row, row) for row in centred) / 6
    average = (covariance[0, 0] + covariance[1, 1]) / 2
    shrunk = (1 - SHRINKAGE) * covariance + SHRINKAGE * average * np.eye(2)
    a, b, c, d = shrunk[0, 0], shrunk[0, 1], shrunk[1, 0], shrunk[1, 1]
    inverse = np.array([[d, -b], [-c, a]]) / (a * d - b * c)  # a 2 × 2 inverse, by its formula
    np.testing.assert_allclose(gaussians.means, [mean0, mean1])
    np.testing.assert_allclose(gaussians.precision, inverse, rtol=1e-10)
    points = np.array([[1.0, 2.0], [10.0, -4.0], [6.0, 6.0]])
    by_hand = []
    for point in points:
        squared = [float((point - mean) @ inverse @ (point - mean)) for mean in (mean0, mean1)]
        by_hand.append(min(squared) ** 0.5)
    np.testing.assert_allclose(gaussians.distance(points), by_hand, rtol=1e-10)
    assert gaussians.distance(points)[2] == pytest.approx(0.0, abs=1e-12)  # a class mean is at distance 0


def test_a_class_with_no_example_takes_the_overall_mean_and_the_fit_survives_dead_units():
    features = np.array([[1.0, 0.0], [3.0, 0.0]])  # the second unit never fires: a singular covariance
    gaussians = fit_gaussians(features, np.array([0, 0]), num_classes=2)
    np.testing.assert_allclose(gaussians.means, [[2.0, 0.0], [2.0, 0.0]])
    assert np.all(np.isfinite(gaussians.distance(np.array([[2.0, 5.0]]))))


def test_the_features_are_what_the_classifier_reads():
    """Reference: the input of each family's last linear layer, caught with a forward pre-hook."""
    for preset, head_of in (("digits-cnn", lambda m: m.fc[-1]), ("sentiment-lstm", lambda m: m.head),
                            ("sentiment-transformer", lambda m: m.head)):
        model = build_model(presets.get(preset), seed=0).eval()
        x = torch.randn(2, 1, 16, 16) if preset == "digits-cnn" else torch.tensor([[2, 5, 7, 0], [3, 4, 0, 0]])
        seen = []
        handle = head_of(model).register_forward_pre_hook(lambda module, args: seen.append(args[0].flatten(1)))
        try:
            with torch.no_grad():
                _, cache = model.run_with_cache(x, names=[model.features_hook()])
        finally:
            handle.remove()
        torch.testing.assert_close(cache[model.features_hook()].flatten(1), seen[0])


# ---- pictures --------------------------------------------------------------------------------------
def test_a_photo_given_to_the_digits_cnn_is_called_far_and_its_words_say_what_the_model_knows():
    model, dataset, reference = reference_for("digits-cnn")
    context = input_context(model, dataset)
    photo = prepare_image(context, read_image(PHOTO.read_bytes(), "photo.png"), "upload: photo.png")
    found = familiarity(model, reference, photo.x)
    assert found.far and found.score > found.threshold
    assert found.reason.startswith("This model only knows the digits 0–9 (the digits data it was trained on); "
                                   "this picture looks nothing like them")
    assert found.reason.endswith("so its answer means little.")
    # Each threshold is MARGIN times the largest validation distance of its check.
    for check in reference.checks:
        distances = check.gaussians.distance(
            model_features(model, dataset.x_val) if check.measure == "features" else input_statistics(dataset.x_val))
        assert check.threshold == pytest.approx(MARGIN * distances.max())


def test_no_validation_digit_is_called_far():
    model, dataset, reference = reference_for("digits-cnn")
    flagged = [i for i, x in enumerate(dataset.x_val) if familiarity(model, reference, x).far]
    assert flagged == []  # none of the 359: each threshold is 1.5 × the farthest of them


def test_digits_the_threshold_never_saw_are_rarely_called_far():
    """The stronger claim: with the thresholds set on the first half of the validation digits
    only, at most 1 % of the other half (2 of 180) is called far."""
    model, dataset = trained("digits-cnn"), dataset_of("digits-cnn")
    half = len(dataset.x_val) // 2
    reference = fit_reference(model, dataset.x_train, dataset.y_train, dataset.x_val[:half], dataset.class_names,
                              dataset.name)
    unseen = dataset.x_val[half:]
    flagged = sum(familiarity(model, reference, x).far for x in unseen)
    assert flagged <= 0.01 * len(unseen) + 1e-9
    photo = input_context(model, dataset).preprocess(Image.open(PHOTO))
    assert familiarity(model, reference, photo).far


# ---- sentences -------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["sentiment-lstm", "sentiment-transformer"])
def test_a_sentence_of_made_up_words_is_far_and_validation_sentences_are_not(preset):
    model, dataset, reference = reference_for(preset)
    context = input_context(model, dataset)
    made_up = prepare_sentence(context, MADE_UP)
    found = familiarity(model, reference, made_up.ids, context.vocab)
    assert found.far and found.measure == "words" and found.unknown_share == 1.0
    assert found.reason == ("This model only knows sentences like those of the sentiment data it was trained on, "
                            "each sorted as negative or positive; 100% of the words of this sentence are not in its "
                            "vocabulary (it reads each as <unk>), so its answer means little.")
    flagged = [i for i, ids in enumerate(dataset.x_val) if familiarity(model, reference, ids, context.vocab).far]
    assert flagged == []


def test_the_share_of_unknown_words_leaves_out_padding():
    vocab = ["<pad>", "<unk>", "good", "film"]
    assert unknown_share(torch.tensor([2, 1, 3, 1, 0, 0]), vocab) == 0.5
    assert unknown_share(torch.tensor([0, 0]), vocab) == 0.0


# ---- when there is nothing to measure against ---------------------------------------------------
def test_only_a_model_trained_on_the_data_at_hand_is_measured():
    digits = dataset_of("digits-cnn")
    model = trained("digits-cnn")
    assert trained_on(model, digits)
    untrained = build_model(presets.get("digits-cnn"), seed=0)  # its meta names no data
    assert not trained_on(untrained, digits)
    assert not trained_on(model, None)
    assert not trained_on(model, replace(digits, name="upload: my-digits.zip"))
    sentiment = trained("sentiment-lstm")
    vocab = dataset_of("sentiment-lstm").vocab
    assert trained_on(sentiment, dataset_of("sentiment-lstm"), vocab)
    assert not trained_on(sentiment, dataset_of("sentiment-lstm"), vocab[:-1] + ["zzz"])
    pretrained = load_pretrained(BUILTIN_TEXT)
    assert pretrained.features_hook() is None and not trained_on(pretrained, dataset_of("sentiment-lstm"), vocab)


def test_what_a_model_knows_is_said_from_its_classes_and_data():
    assert knows_phrase("image", [str(d) for d in range(10)], "digits") == \
        "the digits 0–9 (the digits data it was trained on)"
    assert knows_phrase("image", ["circle", "square", "cross"], "shapes") == \
        "pictures of a circle, a square or a cross (the shapes data it was trained on)"
    assert knows_phrase("tokens", ["negative", "positive"], "sentiment") == \
        "sentences like those of the sentiment data it was trained on, each sorted as negative or positive"



# ---- fitted once per server -----------------------------------------------------------------------
def test_a_reference_is_fitted_once_per_model_content_and_data():
    shared_views.clear()
    calls = []

    def fit(model, x_train):
        calls.append(model)
        return len(x_train)

    digits = dataset_of("digits-cnn")
    key = shared_views.dataset_key(digits)
    assert key == f"digits {json.dumps(digits.source, sort_keys=True)}"  # a built-in one: by its source
    first, copy, other = (build_model(presets.get("digits-cnn"), seed=seed) for seed in (0, 0, 1))
    try:
        assert shared_views.fitted_once(fit, first, key, digits.x_train) == len(digits.x_train)
        shared_views.fitted_once(fit, copy, key, digits.x_train)  # another session's copy: same weights
        assert calls == [first]
        shared_views.fitted_once(fit, other, key, digits.x_train)  # other weights
        uploaded = replace(digits, source=None, name="upload: digits.zip")
        upload_key = shared_views.dataset_key(uploaded)  # by its tensors
        assert upload_key != key and upload_key == shared_views.dataset_key(replace(uploaded))
        assert upload_key != shared_views.dataset_key(replace(uploaded, y_train=1 - uploaded.y_train))
        shared_views.fitted_once(fit, first, upload_key, digits.x_train)
        assert calls == [first, other, first]
    finally:
        shared_views.clear()
