"""explain.probe against references: the filters are the conv weights, the feature maps are
F.conv2d by hand, a prefix prediction is the model run on that prefix alone, the attention is
the cached pattern's head mean, and batched validation predictions equal one big batch."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explain import probe as probes
from models import build_model, count_hooks, example_input, presets

VOCAB = ["<pad>", "<unk>", "the", "plot", "is", "boring", "but", "acting", "good", "film", "was", "not", "bad"]


def sentence_ids(words: str, length: int = 12) -> torch.Tensor:
    ids = [VOCAB.index(w) for w in words.split()]
    return torch.tensor(ids + [0] * (length - len(ids)))  # right-padded, as datasets store them


def token_model(preset: str):
    spec = presets.get(preset)
    spec.input.vocab_size, spec.input.max_len = len(VOCAB), 12
    return build_model(spec, seed=0)


def test_cnn_filters_feature_maps_and_probabilities_match_references():
    model = build_model(presets.get("digits-cnn"), seed=0)
    x = example_input(model.spec, batch=1)[0]  # (1, 16, 16)
    view = probes.probe(model, x)
    conv = model.conv[0].conv
    np.testing.assert_array_equal(view.filters, conv.weight.detach().numpy())
    assert view.filters.shape == (8, 1, 3, 3)
    by_hand = F.conv2d(x[None], conv.weight, conv.bias, padding=1)[0]  # (8, 16, 16)
    np.testing.assert_allclose(view.feature_maps, by_hand.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(view.activations, by_hand.clamp(min=0).detach().numpy(), atol=1e-5)
    expected = torch.softmax(model(x[None]), dim=-1)[0].detach().numpy()
    np.testing.assert_allclose(view.probabilities, expected, atol=1e-6)
    assert view.predicted == int(expected.argmax()) and view.class_names == [str(d) for d in range(10)]
    assert count_hooks(model) == 0


@pytest.mark.parametrize("preset", ["sentiment-lstm", "sentiment-gru", "sentiment-rnn"])
def test_rnn_prefix_predictions_are_the_model_on_each_prefix_alone(preset):
    model = token_model(preset)
    ids = sentence_ids("the plot is boring but the acting is good")
    view = probes.probe(model, ids, vocab=VOCAB)
    assert view.family == "rnn" and view.tokens == "the plot is boring but the acting is good".split()
    assert view.prefix_probabilities.shape == (9, 2)
    for t in range(9):
        alone = torch.softmax(model(ids[: t + 1][None]), dim=-1)[0].detach().numpy()  # no padding at all
        np.testing.assert_allclose(view.prefix_probabilities[t], alone, atol=1e-5)
    np.testing.assert_allclose(view.prefix_probabilities[-1], view.probabilities, atol=1e-5)
    _, cache = model.run_with_cache(ids[:9][None], names=["rnn.hidden"])
    np.testing.assert_allclose(view.hidden, cache["rnn.hidden"][0].numpy(), atol=1e-6)
    assert view.hidden.shape == (9, 64) and view.attention is None
    assert count_hooks(model) == 0


def test_transformer_attention_is_the_last_blocks_pattern_averaged_over_heads():
    model = token_model("sentiment-transformer")
    ids = sentence_ids("the film was not bad")
    view = probes.probe(model, ids, vocab=VOCAB)
    _, cache = model.run_with_cache(ids[:5][None], names=["blocks.1.attn.pattern"])
    heads = cache["blocks.1.attn.pattern"][0].numpy()  # (4, 6, 6): [CLS] + 5 words
    np.testing.assert_allclose(view.attention_heads, heads, atol=1e-6)
    np.testing.assert_allclose(view.attention, heads.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(view.attention.sum(axis=1), 1.0, atol=1e-5)
    assert view.attention_tokens == ["[CLS]", "the", "film", "was", "not", "bad"]
    assert view.prefix_probabilities.shape == (5, 2) and view.hidden is None


def test_vision_transformer_attention_is_labelled_by_patch():
    model = build_model(presets.get("shapes-vit"), seed=0)
    view = probes.probe(model, example_input(model.spec, batch=1)[0])
    assert view.family == "transformer" and view.attention.shape == (17, 17)
    assert view.attention_tokens[:3] == ["[CLS]", "patch 1", "patch 2"] and len(view.attention_tokens) == 17
    assert view.tokens == [] and view.prefix_probabilities is None


def test_the_default_probe_sentence():
    assert probes.default_probe_sentence(VOCAB) == "the plot is boring but the acting is good"
    small = ["<pad>", "<unk>", "hello", "world"]
    assert probes.default_probe_sentence(small, torch.tensor([[3, 2, 0]])) == "world hello"
    assert probes.default_probe_sentence(small) == ""


def test_validation_predictions_in_batches_equal_one_big_batch():
    model = build_model(presets.get("digits-cnn"), seed=0)
    x = example_input(model.spec, batch=37)
    predicted, probabilities = probes.validation_predictions(model, x, batch_size=8)
    expected = torch.softmax(model(x), dim=-1).detach().numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_array_equal(predicted, expected.argmax(axis=1))
    empty_predicted, empty_probabilities = probes.validation_predictions(model, x[:0])
    assert empty_predicted.shape == (0,) and empty_probabilities.shape == (0, 10)


def test_misclassified_most_confident_first():
    true = np.array([0, 1, 1, 0, 2])
    predicted = np.array([0, 0, 2, 1, 2])
    probabilities = np.array([[.9, .1, 0], [.6, .4, 0], [0, .1, .9], [.3, .7, 0], [0, 0, 1]])
    assert probes.misclassified(true, predicted, probabilities).tolist() == [2, 3, 1]
    assert probes.misclassified(true, predicted, probabilities, limit=2).tolist() == [2, 3]
    assert probes.misclassified(true, predicted).tolist() == [1, 2, 3]
