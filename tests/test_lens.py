"""explain.lens against references: the model's own output for the last block, the head applied by
hand to an earlier block's output, and for GPT-2 the language-model head that ``transformers``
builds on the same weights (its unembedding is the tied word embedding)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import GPT2LMHeadModel

from explain.lens import CLASSIFIER, LOGIT_LENS, block_answers, lens_kind, logit_lens
from models import build_model, presets
from models.pretrained import BUILTIN_TEXT, load_pretrained, tokenize
from tests.test_pretrained import tiny  # noqa: F401 - the fixture of tiny model folders

IDS = torch.tensor([[5, 17, 42, 9, 3, 0, 0]])


@pytest.mark.parametrize("preset,pooling", [("sentiment-transformer", "cls"), ("sentiment-transformer", "mean"),
                                            ("shapes-vit", None)])
def test_each_blocks_answer_ends_with_the_models_own(preset, pooling):
    spec = presets.get(preset)
    if pooling:
        spec.transformer.pooling = pooling
    model = build_model(spec, seed=2).eval()
    inp = spec.input
    x = IDS if inp.kind == "tokens" else torch.randn(1, inp.channels, inp.height, inp.width)
    assert lens_kind(model) == CLASSIFIER
    answers = block_answers(model, x)
    assert answers.probabilities.shape == (spec.transformer.num_layers, spec.num_classes)
    np.testing.assert_allclose(answers.probabilities[-1], torch.softmax(model(x), -1)[0].detach().numpy(), atol=1e-6)
    _, cache = model.run_with_cache(x, names=["blocks.0.out"])
    first = cache["blocks.0.out"]
    with torch.no_grad():  # by hand: the final norm, the class token or the mean of the real tokens, the head
        normed = model.norm(first)
        if pooling == "mean":
            real = (IDS != 0).float()[..., None]
            pooled = (normed * real).sum(1) / real.sum(1)
        else:
            pooled = normed[:, 0]
        expected = torch.softmax(model.head(pooled), -1)[0].numpy()
    np.testing.assert_allclose(answers.probabilities[0], expected, atol=1e-6)


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_a_pretrained_classifiers_last_block_answers_as_the_model(tiny, family):  # noqa: F811
    model = load_pretrained(str(tiny[family]))
    ids, _, _ = tokenize(model, "the film was not bad")
    assert lens_kind(model) == CLASSIFIER
    answers = block_answers(model, ids[None])
    assert answers.probabilities.shape == (2, model.spec.num_classes)
    np.testing.assert_allclose(answers.probabilities[-1], torch.softmax(model(ids[None]), -1)[0].detach().numpy(),
                               atol=1e-6)
    assert not np.allclose(answers.probabilities[0], answers.probabilities[1])


def test_the_logit_lens_last_block_is_gpt2s_own_next_token_logits(tiny):  # noqa: F811
    model = load_pretrained(str(tiny["gpt2"]))
    assert lens_kind(model) == LOGIT_LENS
    ids, _, _ = tokenize(model, "the the cat sat")
    lens = logit_lens(model, ids[None], top_k=3)
    reference = GPT2LMHeadModel.from_pretrained(tiny["gpt2"], attn_implementation="eager").eval()
    with torch.no_grad():
        out = reference(input_ids=ids[None], output_hidden_states=True)
        first = reference.lm_head(reference.transformer.ln_f(out.hidden_states[1]))[0]  # block 1's stream, by hand
    np.testing.assert_allclose(lens.logits, out.logits[0].numpy(), rtol=1e-5, atol=1e-5)
    T = ids.shape[0]
    assert lens.top_ids.shape == (2, T, 3) and len(lens.top_tokens[0]) == T
    np.testing.assert_array_equal(lens.top_ids[0], first.topk(3, dim=-1).indices.numpy())
    np.testing.assert_array_equal(lens.top_ids[-1], out.logits[0].topk(3, dim=-1).indices.numpy())
    assert lens.top_tokens[-1][0] == model.tokens_of(lens.top_ids[-1, 0])
    np.testing.assert_allclose(lens.top_probabilities[-1], torch.softmax(out.logits[0], -1).topk(3).values.numpy(),
                               atol=1e-6)


def test_models_without_a_blockwise_answer_say_so():
    assert lens_kind(build_model(presets.get("sentiment-lstm"), seed=0)) is None
    assert lens_kind(build_model(presets.get("digits-cnn"), seed=0)) is None
    assert lens_kind(load_pretrained(BUILTIN_TEXT)) is None  # a sentence encoder has no classifier


def test_each_blocks_answer_with_a_head_switched_off_ends_with_the_ablated_output(tiny):  # noqa: F811
    from explain.ablation import ablated_logits
    from models.hooks import count_hooks

    model = build_model(presets.get("sentiment-transformer"), seed=4).eval()
    ablate = {"blocks.1.attn.pattern": [0, 2]}
    answers = block_answers(model, IDS, ablate)
    expected = torch.softmax(ablated_logits(model, IDS, ablate), -1)[0].numpy()
    np.testing.assert_allclose(answers.probabilities[-1], expected, atol=1e-6)
    np.testing.assert_allclose(answers.probabilities[0], block_answers(model, IDS).probabilities[0], atol=1e-6)
    gpt = load_pretrained(str(tiny["gpt2"]))
    ids, _, _ = tokenize(gpt, "the the cat")
    hooks = count_hooks(gpt)
    changed = logit_lens(gpt, ids[None], ablate={"blocks.0.attn.pattern": [0, 1]})
    assert count_hooks(gpt) == hooks
    assert not np.allclose(changed.logits, logit_lens(gpt, ids[None]).logits)
