"""Models against references: hand-written PyTorch for every hook point a view will show."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from models import (InputSpec, Layer, LayerRow, ModelSpec, RNNConfig, SpecError, TransformerConfig, build_model,
                    count_hooks, example_input, presets, shape_text)
from models.transformer import sinusoidal_positions

REQUIRED_PRESETS = {"digits-cnn", "shapes-cnn", "sentiment-rnn", "sentiment-lstm", "sentiment-gru",
                    "sentiment-transformer", "shapes-vit"}


@pytest.fixture(params=presets.names())
def preset(request):
    return request.param


def test_required_presets_exist():
    assert REQUIRED_PRESETS <= set(presets.names())


def test_preset_is_valid_and_round_trips_json(preset):
    spec = presets.get(preset)
    assert spec.validate() == []
    assert ModelSpec.from_json(spec.to_json()) == spec
    assert presets.get(preset) is not presets.get(preset)  # each call is a fresh, editable copy


def test_layer_table_counts_match_the_built_model(preset):
    spec = presets.get(preset)
    model = build_model(spec)
    assert spec.parameter_count() == sum(p.numel() for p in model.parameters())


def test_layer_table_shapes_match_the_activations(preset):
    spec = presets.get(preset)
    model = build_model(spec, seed=0)
    x = example_input(spec, batch=3)
    logits, cache = model.run_with_cache(x)
    rows = {row.name: row.output for row in spec.layer_table()}
    checked = 0
    for name, shape in rows.items():
        aliases = ["rnn.hidden"] if spec.rnn and name == f"rnn.{spec.rnn.num_layers - 1}" else []
        for hook in (name, name + ".out", *aliases):
            if hook in cache.names() and cache[hook].dim() == len(shape) + 1:
                assert tuple(cache[hook].shape) == (3, *shape), hook
                checked += 1
    assert checked >= 2
    assert tuple(logits.shape) == (3, spec.num_classes)


def test_cached_logits_equal_uncached(preset):
    spec = presets.get(preset)
    model = build_model(spec, seed=1)
    x = example_input(spec, batch=4, seed=2)
    with torch.no_grad():
        plain = model(x)
        cached, cache = model.run_with_cache(x)
    torch.testing.assert_close(cached, plain, rtol=0, atol=1e-5)
    assert len(cache) == len(cache.names()) > 0
    assert all(t.device.type == "cpu" and not t.requires_grad for t in cache.values())


def test_cnn_hook_names_follow_the_design():
    model = build_model(presets.get("shapes-cnn"))
    names = model.hook_names()
    for expected in ("conv.0.out", "conv.0.bn", "conv.0.act", "pool.0.out", "conv.2.act", "fc.0.out", "fc.0.act", "fc.1.out"):
        assert expected in names


def test_cache_lists_activations_in_execution_order():
    model = build_model(presets.get("digits-cnn"))
    _, cache = model.run_with_cache(example_input(model.spec))
    assert cache.names()[:6] == ["input", "conv.0.out", "conv.0.act", "pool.0.out", "conv.1.out", "conv.1.act"]


def test_conv_feature_map_equals_f_conv2d_by_hand():
    spec = presets.get("digits-cnn")
    model = build_model(spec, seed=3)
    x = example_input(spec, batch=2)
    _, cache = model.run_with_cache(x, names=["conv.0.out", "conv.0.act", "conv.1.out", "pool.0.out"])
    conv = model.conv[0].conv
    expected = F.conv2d(x, conv.weight, conv.bias, stride=1, padding=1)
    torch.testing.assert_close(cache["conv.0.out"], expected)
    torch.testing.assert_close(cache["conv.0.act"], torch.relu(expected))
    # And one value by the arithmetic a student would do: patch ⊙ kernel summed, plus bias.
    patch = F.pad(x, (1, 1, 1, 1))[0, :, 4:7, 5:8]  # (C, 3, 3) around output position (4, 5)
    by_hand = (patch * conv.weight[2]).sum() + conv.bias[2]
    torch.testing.assert_close(cache["conv.0.out"][0, 2, 4, 5], by_hand)
    conv1 = model.conv[1].conv
    torch.testing.assert_close(cache["conv.1.out"], F.conv2d(cache["pool.0.out"], conv1.weight, conv1.bias, padding=1))


def test_max_pool_equals_f_max_pool2d_of_its_input():
    spec = presets.get("digits-cnn")
    model = build_model(spec, seed=4)
    _, cache = model.run_with_cache(example_input(spec))
    torch.testing.assert_close(cache["pool.0.out"], F.max_pool2d(cache["conv.0.act"], kernel_size=2, stride=2))
    torch.testing.assert_close(cache["pool.1.out"], F.max_pool2d(cache["conv.1.act"], kernel_size=2, stride=2))


def test_average_pool_and_other_activations():
    spec = ModelSpec(name="t", kind="cnn", num_classes=3, input=InputSpec(channels=2, height=9, width=9), layers=[
        Layer("conv", channels=4, kernel=3, stride=2, padding=1), Layer("act", activation="tanh"),
        Layer("pool", pool="avg", kernel=3, stride=0), Layer("fc", channels=5), Layer("act", activation="gelu")])
    assert spec.validate() == []
    model = build_model(spec, seed=0)
    x = example_input(spec)
    _, cache = model.run_with_cache(x)
    conv = model.conv[0].conv
    torch.testing.assert_close(cache["conv.0.act"], torch.tanh(F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1)))
    torch.testing.assert_close(cache["pool.0.out"], F.avg_pool2d(cache["conv.0.act"], 3, 3))
    fc = model.fc[0].linear
    torch.testing.assert_close(cache["fc.0.act"], F.gelu(cache["pool.0.out"].flatten(1) @ fc.weight.T + fc.bias))


def _attention_reference(model, cache, block: int, allowed):
    attn = model.blocks[block].attn
    q, k, v = cache[f"blocks.{block}.attn.q"], cache[f"blocks.{block}.attn.k"], cache[f"blocks.{block}.attn.v"]
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    return attn, expected


def test_attention_equals_scaled_dot_product_attention_with_padding():
    spec = presets.get("sentiment-transformer")
    model = build_model(spec, seed=5)
    x = example_input(spec, batch=3)
    x[0, 10:] = 0  # padding at the end of the first sentence
    x[2, 3:] = 0
    _, cache = model.run_with_cache(x)
    real = torch.cat([torch.ones(3, 1, dtype=torch.bool), x != 0], dim=1)  # CLS first
    allowed = real[:, None, None, :]
    for block in range(spec.transformer.num_layers):
        _, expected = _attention_reference(model, cache, block, allowed)
        torch.testing.assert_close(cache[f"blocks.{block}.attn.z"], expected, rtol=1e-5, atol=1e-6)
        pattern = cache[f"blocks.{block}.attn.pattern"]
        assert pattern.shape == (3, spec.transformer.num_heads, 33, 33)
        torch.testing.assert_close(pattern.sum(-1), torch.ones(pattern.shape[:-1]))
        assert float(pattern[0, :, :, 11:].abs().max()) == 0.0  # nobody attends to padding
        scores = cache[f"blocks.{block}.attn.scores"]
        q, k = cache[f"blocks.{block}.attn.q"], cache[f"blocks.{block}.attn.k"]
        torch.testing.assert_close(scores, q @ k.transpose(-2, -1) / math.sqrt(spec.transformer.d_model // spec.transformer.num_heads))


def test_attention_queries_come_from_the_normed_residual_stream():
    spec = presets.get("sentiment-transformer")
    model = build_model(spec, seed=6)
    _, cache = model.run_with_cache(example_input(spec))
    block = model.blocks[0]
    qkv = block.ln1(cache["embed.out"]) @ block.attn.qkv.weight.T + block.attn.qkv.bias  # (B, T, 3D)
    D, h = spec.transformer.d_model, spec.transformer.num_heads
    q = qkv[..., :D].view(2, -1, h, D // h).transpose(1, 2)
    torch.testing.assert_close(cache["blocks.0.attn.q"], q.detach())


def test_vit_attention_covers_cls_and_patches():
    spec = presets.get("shapes-vit")
    model = build_model(spec, seed=7)
    _, cache = model.run_with_cache(example_input(spec))
    n_patches = (32 // 8) ** 2
    pattern = cache["blocks.1.attn.pattern"]
    assert pattern.shape == (2, 4, n_patches + 1, n_patches + 1)
    torch.testing.assert_close(pattern.sum(-1), torch.ones(2, 4, n_patches + 1))
    _, expected = _attention_reference(model, cache, 1, None)
    torch.testing.assert_close(cache["blocks.1.attn.z"], expected, rtol=1e-5, atol=1e-6)


def test_vanilla_rnn_hidden_equals_tanh_recurrence_by_hand():
    spec = presets.get("sentiment-rnn")
    model = build_model(spec, seed=8)
    x = example_input(spec, batch=2)
    _, cache = model.run_with_cache(x)
    net = model.rnn.net
    W, U = net.weight_ih_l0, net.weight_hh_l0
    b = net.bias_ih_l0 + net.bias_hh_l0
    embedded = cache["embed.out"]  # (B, T, E)
    h = torch.zeros(2, spec.rnn.hidden_size)
    for t in range(x.shape[1]):
        h = torch.tanh(embedded[:, t] @ W.T + h @ U.T + b)  # h_t = tanh(W x_t + U h_{t-1} + b)
        torch.testing.assert_close(cache["rnn.hidden"][:, t], h.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cache["embed.out"], model.embed.tokens.weight[x].detach())


def test_lstm_cell_state_and_gates_are_consistent():
    spec = presets.get("sentiment-lstm")
    model = build_model(spec, seed=9)
    x = example_input(spec)
    _, cache = model.run_with_cache(x)
    gates = cache["rnn.gates"]  # (B, T, 4, H): input, forget, candidate, output
    assert gates.shape == (2, spec.input.max_len, 4, spec.rnn.hidden_size)
    i, f, g, o = gates.unbind(2)
    c = cache["rnn.cell"]
    torch.testing.assert_close(cache["rnn.hidden"], o * torch.tanh(c))
    torch.testing.assert_close(c[:, 1:], f[:, 1:] * c[:, :-1] + i[:, 1:] * g[:, 1:])
    with torch.no_grad():
        fused, _ = model.rnn.net(cache["embed.out"])
    torch.testing.assert_close(cache["rnn.hidden"], fused, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_stacked_bidirectional_unrolled_path_matches_fused_kernel(cell):
    spec = ModelSpec(name="bi", kind="rnn", num_classes=3, input=InputSpec(kind="tokens", vocab_size=30, max_len=7),
                     rnn=RNNConfig(cell=cell, embed_dim=5, hidden_size=6, num_layers=2, bidirectional=True, dropout=0.2))
    model = build_model(spec, seed=10)
    x = example_input(spec, batch=3)
    x[1, 4:] = 0
    with torch.no_grad():
        plain = model(x)
        cached, cache = model.run_with_cache(x)
        fused, _ = model.rnn.net(cache["embed.out"])
    torch.testing.assert_close(cached, plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cache["rnn.hidden"], fused, rtol=1e-5, atol=1e-6)
    assert cache["rnn.final"].shape == (3, 12)


def test_right_padding_does_not_change_a_prediction():
    for name in ("sentiment-lstm", "sentiment-transformer"):
        spec = presets.get(name)
        model = build_model(spec, seed=11)
        short = torch.tensor([[5, 9, 17, 3]])
        padded = torch.cat([short, torch.zeros(1, 6, dtype=torch.long)], dim=1)
        with torch.no_grad():
            torch.testing.assert_close(model(padded), model(short), rtol=1e-5, atol=1e-6)


def test_transformer_variants_build_and_agree_with_cache():
    spec = presets.get("sentiment-transformer")
    spec.transformer = TransformerConfig(d_model=24, num_heads=3, num_layers=1, positional="sinusoidal", norm="post", pooling="mean")
    assert spec.validate() == []
    model = build_model(spec, seed=12)
    assert spec.parameter_count() == sum(p.numel() for p in model.parameters())
    x = example_input(spec)
    x[0, 20:] = 0
    with torch.no_grad():
        torch.testing.assert_close(model.run_with_cache(x)[0], model(x))


def test_numeric_sequence_rnn():
    spec = ModelSpec(name="seq", kind="rnn", num_classes=2, input=InputSpec(kind="sequence", features=3, max_len=12),
                     rnn=RNNConfig(cell="gru", embed_dim=8, hidden_size=8))
    model = build_model(spec)
    _, cache = model.run_with_cache(example_input(spec))
    assert cache["rnn.hidden"].shape == (2, 12, 8)
    assert spec.parameter_count() == sum(p.numel() for p in model.parameters())


def test_sinusoidal_positions_reference_values():
    table = sinusoidal_positions(5, 6)
    torch.testing.assert_close(table[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(table[3, 2], torch.tensor(math.sin(3 / 10000 ** (2 / 6))))
    torch.testing.assert_close(table[3, 3], torch.tensor(math.cos(3 / 10000 ** (2 / 6))))


def test_no_hook_is_left_after_run_with_cache_raises():
    for name in presets.names():
        model = build_model(presets.get(name))
        before = count_hooks(model)
        bad = torch.zeros(1, 99, 3, 3) if model.spec.input.kind == "image" else torch.zeros(1, 0, dtype=torch.long)
        with pytest.raises((RuntimeError, ValueError)):
            model.run_with_cache(bad)
        assert count_hooks(model) == before == 0
        assert model._caching is False
        model.run_with_cache(example_input(model.spec))  # and after a clean run
        assert count_hooks(model) == 0


def test_run_with_cache_selects_names_and_refuses_unknown_ones():
    model = build_model(presets.get("digits-cnn"))
    _, cache = model.run_with_cache(example_input(model.spec), names=["pool.1.out"])
    assert cache.names() == ["pool.1.out"]
    with pytest.raises(KeyError, match="pool.0.out"):
        cache["pool.0.out"]
    with pytest.raises(KeyError, match="unknown hook"):
        model.run_with_cache(example_input(model.spec), names=["conv.9.out"])
    assert count_hooks(model) == 0


def test_too_long_sequence_is_refused_in_plain_words():
    model = build_model(presets.get("sentiment-transformer"))
    with pytest.raises(ValueError, match="longer than this model's maximum of 32"):
        model(torch.ones(1, 40, dtype=torch.long))


# ---- validation messages -----------------------------------------------------------------
def _cnn(*layers, size=16):
    return ModelSpec(name="t", kind="cnn", num_classes=10, input=InputSpec(channels=1, height=size, width=size), layers=list(layers))


def test_kernel_larger_than_its_input_names_the_layer():
    spec = _cnn(Layer("conv", channels=4, kernel=3), Layer("pool", kernel=2, stride=2), Layer("pool", kernel=2, stride=2),
                Layer("pool", kernel=2, stride=2), Layer("conv", channels=4, kernel=5))  # 16 -> 14 -> 7 -> 3 -> 1
    errors = spec.validate()
    assert errors == ["layer 5 (conv.1): kernel 5 is larger than its 1×1 input"]
    with pytest.raises(SpecError) as err:
        build_model(spec)
    assert err.value.messages == errors


def test_layer_order_mistakes_are_explained():
    assert "must follow a conv, pool or fc layer" in _cnn(Layer("act"), Layer("conv", channels=2)).validate()[0]
    assert "must come before the fully connected layers" in _cnn(
        Layer("conv", channels=2), Layer("fc", channels=4), Layer("conv", channels=2)).validate()[0]
    assert "already has an act layer" in _cnn(Layer("conv", channels=2), Layer("act"), Layer("act")).validate()[0]
    assert "unknown type 'dense'" in _cnn(Layer("conv", channels=2), Layer("dense")).validate()[0]
    assert "at least one conv layer" in _cnn(Layer("fc", channels=4)).validate()[0]
    assert "unknown activation 'swish'" in _cnn(Layer("conv", channels=2), Layer("act", activation="swish")).validate()[0]
    assert "channels must be between" in _cnn(Layer("conv", channels=0)).validate()[0]


def test_layer_table_shapes_are_numbers_and_are_written_only_for_display():
    rows = presets.get("digits-cnn").layer_table()
    assert all(isinstance(row, LayerRow) for row in rows)
    assert all(isinstance(row.output, tuple) and all(type(d) is int for d in row.output) for row in rows)
    assert rows[0] == LayerRow("input", "image", (1, 16, 16), 0)
    assert rows[-1].output == (10,)
    assert shape_text((8, 16, 16)) == "8×16×16" and shape_text((10,)) == "10"
    with pytest.raises(AttributeError):  # a row is a record, not an editable dict
        rows[0].params = 1


def test_layer_table_stops_at_the_first_broken_layer():
    spec = _cnn(Layer("conv", channels=4, kernel=3), Layer("conv", channels=4, kernel=30), Layer("act"))
    rows = spec.layer_table()
    assert [r.name for r in rows] == ["input", "conv.0"]
    assert rows[1].output == (4, 14, 14) and rows[1].params == 4 * 9 + 4


def test_transformer_and_rnn_validation():
    spec = presets.get("sentiment-transformer")
    spec.transformer.num_heads = 5
    assert spec.validate() == ["transformer: d_model 64 does not split evenly into 5 heads"]
    vit = presets.get("shapes-vit")
    vit.transformer.patch_size = 5
    assert "does not split into 5×5 patches" in vit.validate()[0]
    rnn = presets.get("sentiment-gru")
    rnn.rnn.cell = "lstm2"
    assert "unknown cell 'lstm2'" in rnn.validate()[0]
    wrong = presets.get("digits-cnn")
    wrong.num_classes = 1
    assert "between 2 and" in wrong.validate()[0]
    named = presets.get("digits-cnn")
    named.class_names = ["a", "b"]
    assert named.validate() == ["there are 2 class names for 10 classes"]


def test_a_vit_conv_stem_keeps_the_patch_grid_and_is_checked_in_plain_words():
    vit = presets.get("shapes-vit")
    assert vit.transformer.stem_channels and vit.transformer.patch_size == 8
    plain = presets.get("shapes-vit")
    plain.transformer.stem_channels = []
    for spec in (vit, plain):  # with or without a stem: 16 patches of 8×8 pixels, and the CLS token
        assert [row.output for row in spec.layer_table() if row.name == "embed"] == [(17, 64)]
        assert build_model(spec, seed=0).run_with_cache(example_input(spec))[1]["blocks.0.attn.pattern"].shape[-1] == 17
    assert ModelSpec.from_json(vit.to_json()) == vit
    vit.transformer.patch_size = 2  # two pools need a patch that divides by 4
    assert vit.validate() == ["transformer: a conv stem of 3 layers halves the picture 2 times, so the patch size "
                              "must divide by 4, not 2"]
    vit.transformer.patch_size, vit.transformer.stem_channels = 8, [16, 0]
    assert "the conv stem takes at most 4 layers of 1 to" in vit.validate()[0]
    text = presets.get("sentiment-transformer")
    text.transformer.stem_channels = [8]
    assert text.validate() == ["transformer: a conv stem is for pictures only; remove it for text"]


def test_from_json_explains_bad_input():
    with pytest.raises(ValueError, match="not valid JSON"):
        ModelSpec.from_json("{not json")
    data = presets.get("digits-cnn").to_dict()
    data["layers"][0]["colour"] = "red"
    with pytest.raises(ValueError, match="layer 1 has unknown field"):
        ModelSpec.from_dict(data)
    with pytest.raises(ValueError, match="needs at least a 'name' and a 'kind'"):
        ModelSpec.from_dict({"layers": []})


def test_build_model_copies_the_spec():
    spec = presets.get("digits-cnn")
    model = build_model(spec)
    spec.layers[0].channels = 99
    assert model.spec.layers[0].channels == 8
    assert copy.deepcopy(model.spec) == presets.get("digits-cnn")


def test_model_tokens_are_never_reused_after_a_model_is_freed():
    import gc

    from models.hooks import token_of

    first = build_model(presets.get("digits-cnn"), seed=0)
    token = token_of(first)
    assert token_of(first) == token
    del first
    gc.collect()
    later = [build_model(presets.get("digits-cnn"), seed=0) for _ in range(3)]  # one may get the freed id
    assert token not in {token_of(model) for model in later}
