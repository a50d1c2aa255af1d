"""explain.tokens and explain.predictions, the helpers every sentence view shares: padding is
stripped, ids become words, and probabilities are the softmax of the logits."""
import numpy as np
import torch

from explain import predictions, tokens

VOCAB = ["<pad>", "<unk>", "the", "plot", "is", "boring", "but", "acting", "good", "film", "was", "not", "bad"]


def test_padding_is_stripped_but_one_token_is_always_kept():
    assert tokens.strip_padding(torch.tensor([5, 6, 0, 0])).tolist() == [5, 6]
    assert tokens.strip_padding(torch.tensor([0, 0])).tolist() == [0]
    assert tokens.sentence_of(torch.tensor([2, 3, 0, 0]), VOCAB) == "the plot"
    assert tokens.words_of([2, 99], None) == ["2", "99"]


def test_softmax_gives_cpu_numpy_probabilities():
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], requires_grad=True)
    probabilities = predictions.softmax(logits)
    assert isinstance(probabilities, np.ndarray) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, torch.softmax(logits, dim=-1).detach().numpy(), atol=1e-7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
