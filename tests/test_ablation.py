"""explain.ablation against references: the plain forward pass, a block recomputed by hand without
one head, a hand-unrolled LSTM whose unit is switched off at every step, a Hugging Face model whose
head's value weights are zeroed, and one-at-a-time ablations for the batched importance."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from explain.ablation import ablatable, ablated_logits, ablation_means, importance
from models import build_model, presets
from models.hooks import count_hooks
from models.pretrained import BUILTIN_TEXT, load_pretrained, tokenize
from tests.test_pretrained import tiny  # noqa: F401 - the fixture of tiny model folders
from tests.test_pretrained_vision import folders  # noqa: F401 - the fixture of tiny ResNet / ViT folders
from tests.test_pretrained_vision import pictures as vision_pictures

IDS = torch.tensor([[5, 17, 42, 9, 3, 0, 0], [8, 8, 100, 2, 0, 0, 0]])  # two padded sentences


def built(preset: str, seed: int = 0):
    return build_model(presets.get(preset), seed=seed).eval()


def pictures(model, batch: int = 2) -> torch.Tensor:
    inp = model.spec.input
    return torch.randn(batch, inp.channels, inp.height, inp.width, generator=torch.Generator().manual_seed(1))


def untouched(model):
    """(hook count, a copy of every weight): what a clean call leaves as it found."""
    return count_hooks(model), {k: v.clone() for k, v in model.state_dict().items()}


def assert_same(model, before) -> None:
    hooks, weights = before
    assert count_hooks(model) == hooks
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights[name]), name


@pytest.mark.parametrize("preset", ["sentiment-transformer", "sentiment-lstm", "sentiment-gru", "digits-cnn",
                                    "shapes-vit"])
def test_ablating_nothing_is_the_plain_forward_pass(preset):
    model = built(preset)
    x = pictures(model) if model.spec.input.kind == "image" else IDS
    for hook in ablatable(model):
        torch.testing.assert_close(ablated_logits(model, x, {hook: []}), model(x).detach(), rtol=1e-5, atol=1e-5)


def block_without_head(block, h: torch.Tensor, allowed: torch.Tensor, head: int) -> torch.Tensor:
    """One Block written out with head ``head``'s attention weights set to 0."""
    attn = block.attn
    x = block.ln1(h) if block.pre_norm else h
    B, T, D = x.shape
    q, k, v = (part.view(B, T, attn.num_heads, -1).transpose(1, 2) for part in attn.qkv(x).split(D, dim=-1))
    scores = (q @ k.transpose(-2, -1) / math.sqrt(attn.head_dim)).masked_fill(~allowed, float("-inf"))
    pattern = torch.softmax(scores, dim=-1)  # (B, heads, T, T)
    pattern[:, head] = 0
    out = attn.proj((pattern @ v).transpose(1, 2).reshape(B, T, D))
    if block.pre_norm:
        h = h + out
        return h + block.mlp(block.ln2(h))
    h = block.ln1(h + out)
    return block.ln2(h + block.mlp(h))


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_ablating_a_head_is_its_block_recomputed_by_hand_without_it(norm):
    spec = presets.get("sentiment-transformer")
    spec.transformer.norm = norm
    model = build_model(spec, seed=3).eval()
    _, cache = model.run_with_cache(IDS, names=["embed.out"])
    real = torch.cat([torch.ones(2, 1, dtype=torch.bool), IDS != 0], dim=1)  # the class token first
    allowed = real[:, None, None, :]
    with torch.no_grad():
        h = model.blocks[0](cache["embed.out"], allowed)
        h = block_without_head(model.blocks[1], h, allowed, head=2)
        expected = model.head(model.norm(h)[:, 0])
    got = ablated_logits(model, IDS, {"blocks.1.attn.pattern": [2]})
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got, model(IDS))


def test_a_switched_off_lstm_unit_is_what_the_next_step_reads():
    model = built("sentiment-lstm", seed=4)
    net, unit = model.rnn.net, 5
    ids = IDS[:1, :5]  # (1, 5), no padding: the classifier reads the last step
    with torch.no_grad():
        x = model.embed.tokens(ids)[0]  # (T, E)
        h, c = torch.zeros(net.hidden_size), torch.zeros(net.hidden_size)
        for t in range(x.shape[0]):
            gates = net.weight_ih_l0 @ x[t] + net.bias_ih_l0 + net.weight_hh_l0 @ h + net.bias_hh_l0
            i, f, g, o = gates.chunk(4)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            h[unit] = 0  # switched off: the next step reads 0 from this unit
        expected = model.head(h)[None]
    torch.testing.assert_close(ablated_logits(model, ids, {"rnn.hidden": [unit]}), expected, rtol=1e-5, atol=1e-6)


def test_mean_ablation_puts_the_validation_mean_in_place():
    model = built("digits-cnn", seed=5)
    x_val, x = pictures(model, 6), pictures(model, 1)
    means = ablation_means(model, x_val, ["conv.1.act"])
    _, cache = model.run_with_cache(x_val, names=["conv.1.act"])
    torch.testing.assert_close(means["conv.1.act"], cache["conv.1.act"].mean(0))
    captured = {}

    def replace(module, inputs, output):
        output = output.clone()
        output[:, 3] = cache["conv.1.act"][:, 3].mean(0)
        captured["logits"] = None
        return output
    handle = model.conv[1].act.register_forward_hook(replace)
    try:
        expected = model(x).detach()
    finally:
        handle.remove()
    got = ablated_logits(model, x, {"conv.1.act": [3]}, mode="mean", means=means)
    torch.testing.assert_close(got, expected)


def test_head_means_are_each_heads_output_over_the_real_tokens():
    model = built("sentiment-transformer", seed=6)
    means = ablation_means(model, IDS, ["blocks.0.attn.pattern"])["blocks.0.attn.pattern"]  # (heads, dh)
    _, cache = model.run_with_cache(IDS, names=["blocks.0.attn.z"])
    z = cache["blocks.0.attn.z"]  # (B, heads, 1 + T, dh)
    real = torch.cat([torch.ones(2, 1), (IDS != 0).float()], dim=1)  # (B, 1 + T)
    expected = (z * real[:, None, :, None]).sum((0, 2)) / real.sum()
    torch.testing.assert_close(means, expected)


def test_importance_is_each_part_switched_off_alone():
    model = built("sentiment-transformer", seed=7)
    x = IDS[:1]
    result = importance(model, x, "blocks.0.attn.pattern", target=1, batch_rows=3)  # rows span blocks
    assert result.drops.shape == (2, 4)
    before = torch.softmax(model(x).detach(), -1)[0, 1]
    for block in range(2):
        for head in range(4):
            after = torch.softmax(ablated_logits(model, x, {f"blocks.{block}.attn.pattern": [head]}), -1)[0, 1]
            assert result.drops[block, head] == pytest.approx(float(before - after), abs=1e-5)
    units = importance(built("sentiment-gru"), x, "rnn.hidden", target=0)
    assert units.drops.shape == (64,)


def test_nothing_is_left_behind_also_after_an_error():
    model = built("sentiment-lstm")
    before = untouched(model)
    ablated_logits(model, IDS, {"rnn.hidden": [1, 2]})
    importance(model, IDS[:1], "rnn.hidden", target=0)
    assert_same(model, before)
    unknown_id = torch.full((1, 4), model.spec.input.vocab_size + 5)  # fails inside the forward pass
    with pytest.raises(IndexError):
        ablated_logits(model, unknown_id, {"rnn.hidden": [1]})
    assert_same(model, before)
    with pytest.raises(ValueError, match="numbered 1 to 64"):
        ablated_logits(model, IDS, {"rnn.hidden": [64]})
    assert_same(model, before)


def test_a_pretrained_head_is_switched_off_where_the_model_reads_it(tiny):  # noqa: F811
    model = load_pretrained(str(tiny["bert"]))
    ids, _, _ = tokenize(model, "the film was not bad")
    x = ids[None]
    before = untouched(model)
    got = ablated_logits(model, x, {"blocks.1.attn.pattern": [1]})
    assert_same(model, before)
    # Reference: the same model with head 2's values zeroed, so its weighted sum of values is 0.
    reference = copy.deepcopy(model.hf)
    value = reference.base_model.encoder.layer[1].attention.self.value
    dh = model.head_dim
    with torch.no_grad():
        value.weight[dh:2 * dh] = 0
        value.bias[dh:2 * dh] = 0
        expected = reference(input_ids=x).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got, model(x))


def test_gpt2_heads_switch_off_and_importance_covers_every_head(tiny):  # noqa: F811
    model = load_pretrained(str(tiny["gpt2"]))
    ids, _, _ = tokenize(model, "the the cat")
    x = ids[None]
    torch.testing.assert_close(ablated_logits(model, x, {"blocks.0.attn.pattern": []}), model(x))
    assert not torch.allclose(ablated_logits(model, x, {"blocks.0.attn.pattern": [0, 1]}), model(x))
    result = importance(model, x, "blocks.0.attn.pattern", target=0)
    assert result.drops.shape == (2, 2)


def test_every_minilm_head_moves_its_sentence_vector():
    model = load_pretrained(BUILTIN_TEXT)
    ids, _, _ = tokenize(model, "the film was not good")
    before = untouched(model)
    result = importance(model, ids[None], "blocks.0.attn.pattern", target=None)
    assert_same(model, before)
    assert result.drops.shape == (6, 12)
    assert result.before == 1.0 and np.all(result.drops > -1e-5) and result.drops.max() > 1e-3
    _, plain = model.run_with_cache(ids[None], names=["pooled"])
    probe = []

    def keep(module, inputs):
        edited = inputs[0].clone()
        edited[..., 3 * model.head_dim:4 * model.head_dim] = 0  # block 3, head 4 by hand
        probe.append(True)
        return (edited,)
    handle = model.head_mixer(2).register_forward_pre_hook(keep)
    try:
        _, ablated = model.run_with_cache(ids[None], names=["pooled"])
    finally:
        handle.remove()
    similarity = torch.cosine_similarity(ablated["pooled"], plain["pooled"], dim=-1)
    assert probe and result.drops[2, 3] == pytest.approx(1 - float(similarity), abs=1e-5)


def test_pretrained_image_models_switch_heads_and_channels_off(folders):  # noqa: F811
    x = vision_pictures(1)
    for key, hook in (("vit", "blocks.0.attn.pattern"), ("resnet", "conv.1.out")):
        model = load_pretrained(str(folders[key]))
        assert hook in ablatable(model)
        before = untouched(model)
        torch.testing.assert_close(ablated_logits(model, x, {hook: []}), model(x))
        assert not torch.allclose(ablated_logits(model, x, {hook: [0, 1]}), model(x))
        assert_same(model, before)
