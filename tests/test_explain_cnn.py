"""explain.cnn against references: every conv view is F.conv2d of its own input, every activated
map is the activation (after eval-mode batch norm) of the raw map, every pool view is F.max/avg_pool2d,
one value opened by hand equals the cached value, and a receptive field is the bounding box of
the input pixels that get a gradient from that position in a network of positive weights."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explain import cnn
from models import InputSpec, Layer, ModelSpec, build_model, count_hooks, presets


def custom_spec(layers, channels=2, side=12, name="custom") -> ModelSpec:
    return ModelSpec(name=name, kind="cnn", num_classes=3, input=InputSpec(kind="image", channels=channels, height=side, width=side),
                     layers=layers)


# stride-2 conv, batch norm, leaky ReLU, an overlapping padded avg pool, tanh, a conv with no activation
MIXED = [
    Layer("conv", channels=4, kernel=3, stride=2, padding=1), Layer("batchnorm"), Layer("act", activation="leaky_relu"),
    Layer("pool", kernel=3, stride=2, padding=1, pool="avg"),
    Layer("conv", channels=5, kernel=3, padding=1), Layer("act", activation="tanh"),
    Layer("conv", channels=3, kernel=2, stride=1, padding=0),
    Layer("fc", channels=8), Layer("act", activation="gelu"),
]


def randomise_batchnorm(model, seed=0):
    """Running statistics and affine terms that are not the identity, so batch norm is tested."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.2)
    return model


def built(spec):
    return randomise_batchnorm(build_model(spec, seed=0))


def random_input(spec, seed=1):
    inp = spec.input
    return torch.rand(inp.channels, inp.height, inp.width, generator=torch.Generator().manual_seed(seed)) - 0.3


MODELS = {"digits-cnn": lambda: presets.get("digits-cnn"), "shapes-cnn": lambda: presets.get("shapes-cnn"),
          "mixed": lambda: custom_spec(MIXED)}


@pytest.mark.parametrize("which", list(MODELS))
def test_conv_and_pool_views_equal_torch_functional_references(which):
    spec = MODELS[which]()
    model = built(spec)
    x = random_input(spec)
    view = cnn.inspect_cnn(model, x)
    np.testing.assert_array_equal(view.input, x.numpy())
    expected = torch.softmax(model(x[None]), dim=-1)[0].detach().numpy()
    np.testing.assert_allclose(view.probabilities, expected, atol=1e-6)
    assert view.class_names == (spec.class_names or ["0", "1", "2"])
    for conv in view.convs:
        source = torch.from_numpy(view.activations[conv.input_name])[None]  # (1, I, H, W)
        reference = F.conv2d(source, torch.from_numpy(conv.weight), torch.from_numpy(conv.bias),
                             stride=conv.stride, padding=conv.padding)[0]
        np.testing.assert_allclose(conv.pre, reference.numpy(), atol=1e-5)
        value = reference
        stage = model.conv[conv.index]
        if conv.batchnorm:
            bn = stage.batchnorm
            value = (value - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps) \
                * bn.weight[:, None, None] + bn.bias[:, None, None]
        by_name = {"relu": torch.relu, "tanh": torch.tanh, "leaky_relu": lambda v: F.leaky_relu(v, 0.01)}
        if conv.activation is None:
            assert conv.post is None and conv.post_name is None
        else:
            np.testing.assert_allclose(conv.post, by_name[conv.activation](value).detach().numpy(), atol=1e-5)
            assert conv.post_name == f"{conv.name}.act"
    for pool in view.pools:
        before = torch.from_numpy(pool.before)[None]  # (1, C, H, W)
        function = F.max_pool2d if pool.kind == "max" else F.avg_pool2d
        reference = function(before, pool.kernel, pool.stride, pool.padding)[0]
        np.testing.assert_allclose(pool.after, reference.numpy(), atol=1e-6)
    assert count_hooks(model) == 0


def test_stage_structure_of_the_presets_and_a_mixed_model():
    digits = build_model(presets.get("digits-cnn"), seed=0)
    assert cnn.stage_inputs(digits) == {"conv.0": "input", "pool.0": "conv.0.act", "conv.1": "pool.0.out",
                                        "pool.1": "conv.1.act", "fc.0": "pool.1.out", "fc.1": "fc.0.act"}
    view = cnn.inspect_cnn(digits, torch.zeros(1, 16, 16))
    assert view.stages == ["conv.0", "pool.0", "conv.1", "pool.1", "fc.0", "fc.1"]
    assert [(c.kernel, c.stride, c.padding, c.activation, c.batchnorm) for c in view.convs] == [(3, 1, 1, "relu", False)] * 2
    assert [(p.kind, p.kernel, p.stride, p.padding) for p in view.pools] == [("max", 2, 2, 0)] * 2  # stride 2 resolved
    assert set(view.activations) == set(digits.hook_names()) and view.activations["conv.1.out"].shape == (16, 8, 8)
    mixed = build_model(custom_spec(MIXED), seed=0)
    assert cnn.stage_inputs(mixed) == {"conv.0": "input", "pool.0": "conv.0.act", "conv.1": "pool.0.out",
                                       "conv.2": "conv.1.act", "fc.0": "conv.2.out", "fc.1": "fc.0.act"}
    view = cnn.inspect_cnn(mixed, torch.zeros(2, 12, 12))
    assert [(c.activation, c.batchnorm, c.stride) for c in view.convs] == [("leaky_relu", True, 2), ("tanh", False, 1), (None, False, 1)]
    shapes = build_model(presets.get("shapes-cnn"), seed=0)
    assert cnn.stage_inputs(shapes)["fc.1"] == "fc.0.act"  # dropout has no hook, the activation before it is read


def test_inspect_runs_the_model_once_and_rejects_a_wrong_shape(monkeypatch):
    model = build_model(presets.get("digits-cnn"), seed=0)
    calls = []
    original = model.run_with_cache
    monkeypatch.setattr(model, "run_with_cache", lambda *a, **k: calls.append(1) or original(*a, **k))
    cnn.inspect_cnn(model, torch.zeros(1, 16, 16))
    assert calls == [1]
    with pytest.raises(ValueError, match="1×16×16"):
        cnn.inspect_cnn(model, torch.zeros(3, 16, 16))


@pytest.mark.parametrize("which", list(MODELS))
def test_conv_arithmetic_equals_the_cached_values_including_padded_edges(which):
    spec = MODELS[which]()
    model = built(spec)
    view = cnn.inspect_cnn(model, random_input(spec))
    for conv in view.convs:
        out_c, out_h, out_w = conv.pre.shape
        positions = [(0, 0, 0), (out_c - 1, out_h - 1, out_w - 1), (1 % out_c, 0, out_w // 2), (0, out_h // 2, out_w // 2)]
        for channel, row, col in positions:
            arith = cnn.conv_arithmetic(model, view, conv.index, channel, row, col)
            assert arith.pre == pytest.approx(float(conv.pre[channel, row, col]), abs=1e-5)
            assert arith.weighted_sum == pytest.approx(float((arith.patch * arith.kernel).sum()), abs=1e-9)
            assert arith.pre == pytest.approx(arith.weighted_sum + arith.bias, abs=1e-12)
            np.testing.assert_array_equal(arith.kernel, conv.weight[channel].astype(np.float64))
            if conv.post is None:
                assert arith.post is None and arith.activation is None
            else:
                assert arith.post == pytest.approx(float(conv.post[channel, row, col]), abs=1e-5)
                assert arith.activation == conv.activation
            assert (arith.batchnorm is not None) == conv.batchnorm
            if conv.batchnorm:
                assert arith.batchnorm["value"] == pytest.approx(float(view.activations[f"{conv.name}.bn"][channel, row, col]), abs=1e-5)


def test_patch_is_the_padded_window_of_the_conv_input():
    spec = custom_spec(MIXED)
    model = built(spec)
    x = random_input(spec)
    view = cnn.inspect_cnn(model, x)
    arith = cnn.conv_arithmetic(model, view, 0, 2, 0, 3)  # stride 2, padding 1: rows -1..1, cols 5..7
    expected = np.zeros((2, 3, 3))
    expected[:, 1:, :] = x.numpy()[:, 0:2, 5:8]  # the top row of the window is padding
    np.testing.assert_allclose(arith.patch, expected, atol=1e-7)
    assert r"2i+u-3" in arith.formula and r"\mathrm{LeakyReLU}" in arith.formula and r"\gamma_c" in arith.formula
    assert f"{arith.weighted_sum:.4g}" in arith.numbers and f"{arith.post:.4g}" in arith.numbers
    assert arith.batchnorm["gamma"] == pytest.approx(float(model.conv[0].batchnorm.weight[2].detach()))


def test_the_formulas_indices_count_from_one_as_the_inputs_do():
    """x_{c', s(i-1)+u-p, ...}: with i the output row and u the filter row counted from 1 (as the
    page's Row input and the figure's hover count them), the formula names the input row (from 1)
    whose value the patch holds; a row outside the input is padding, a zero."""
    spec = custom_spec(MIXED)
    model = built(spec)
    x = random_input(spec)
    view = cnn.inspect_cnn(model, x)
    for row, col in ((0, 3), (2, 5)):
        arith = cnn.conv_arithmetic(model, view, 0, 1, row, col)
        rows, cols = re.search(r"x_\{c',\\,(.+?),\\,(.+?)\}", arith.formula).groups()
        for u in range(1, 4):
            for v in range(1, 4):
                i, j = eval_index(rows, "i", "u", row + 1, u), eval_index(cols, "j", "v", col + 1, v)
                inside = 1 <= i <= spec.input.height and 1 <= j <= spec.input.width
                expected = x.numpy()[:, i - 1, j - 1] if inside else np.zeros(2)
                np.testing.assert_allclose(arith.patch[:, u - 1, v - 1], expected, atol=1e-7)


def eval_index(expression: str, out: str, offset: str, out_value: int, offset_value: int) -> int:
    """'2i+u-3' with i and u given -> the number (only +, - and a factor before the output index)."""
    text = expression.replace(out, f"*{out_value}").replace(offset, str(offset_value))
    text = text[1:] if text.startswith("*") else text
    return int(eval(text, {"__builtins__": {}}))  # the test's own parse of a formula it checked the shape of


def test_conv_arithmetic_refuses_positions_outside_the_map():
    model = build_model(presets.get("digits-cnn"), seed=0)
    view = cnn.inspect_cnn(model, torch.zeros(1, 16, 16))
    for args, message in (((2, 0, 0, 0), "conv layers 1 to 2, not 3"), ((0, 8, 0, 0), "channels 1 to 8, not 9"),
                          ((1, 0, 8, 0), "8×8: rows are 1 to 8"), ((0, 0, 0, -1), "16×16")):
        with pytest.raises(ValueError, match=message):
            cnn.conv_arithmetic(model, view, *args)


def test_pool_windows_and_argmax_match_a_hand_search():
    model = build_model(presets.get("digits-cnn"), seed=0)
    view = cnn.inspect_cnn(model, random_input(model.spec))
    pool = view.pools[0]
    assert cnn.pool_windows(pool, 3, 5) == (6, 10, 8, 12)
    for channel, row, col in ((0, 0, 0), (3, 3, 5), (7, 7, 7)):
        r, c = cnn.pool_argmax(pool, channel, row, col)
        assert 2 * row <= r < 2 * row + 2 and 2 * col <= c < 2 * col + 2
        assert pool.before[channel, r, c] == pool.after[channel, row, col]
    padded = cnn.inspect_cnn(build_model(custom_spec(MIXED), seed=0), torch.zeros(2, 12, 12)).pools[0]
    assert cnn.pool_windows(padded, 0, 0) == (0, 0, 2, 2)  # kernel 3, padding 1: clipped at the corner
    with pytest.raises(ValueError, match="averages"):
        cnn.pool_argmax(padded, 0, 0, 0)
    with pytest.raises(ValueError, match="8×8"):
        cnn.pool_windows(pool, 8, 0)


# ---- receptive fields, against autograd on a network of positive weights ---------------------

def positive_twin(spec):
    """The same geometry with avg pools (a max pool passes gradient to one pixel only), every
    weight 0.1 and every bias 0: with a positive input nothing cancels or is cut off by ReLU."""
    for layer in spec.layers:
        if layer.type == "pool":
            layer.pool = "avg"
    model = build_model(spec, seed=0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.fill_(0.0 if name.endswith("bias") else 0.1)
    return model


def gradient_box(model, stage, row, col):
    """Bounding box (exclusive bottom/right) of the input pixels with a nonzero gradient."""
    inp = model.spec.input
    x = torch.ones(1, inp.channels, inp.height, inp.width, requires_grad=True)
    value = model.input(x)
    for group, index in model.order:
        value = getattr(model, group)[index](value)
        if f"{group}.{index}" == stage:
            break
    value[0, :, row, col].sum().backward()
    rows, cols = np.nonzero(x.grad[0].abs().sum(dim=0).numpy())
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


RF_SPECS = {
    "digits-cnn": lambda: presets.get("digits-cnn"),
    "shapes-cnn": lambda: presets.get("shapes-cnn"),
    "mixed": lambda: custom_spec(MIXED, side=24),
    "overlap": lambda: custom_spec([Layer("conv", channels=2, kernel=5, stride=2, padding=2), Layer("act"),
                                    Layer("pool", kernel=3, stride=1, padding=0),
                                    Layer("conv", channels=2, kernel=3, stride=2, padding=0), Layer("act")], side=29),
}


@pytest.mark.parametrize("which", list(RF_SPECS))
def test_receptive_field_is_the_set_of_pixels_with_gradient(which):
    model = positive_twin(RF_SPECS[which]())
    inp = model.spec.input
    _, cache = model.run_with_cache(torch.ones(1, inp.channels, inp.height, inp.width))
    for stage in [f"{g}.{i}" for g, i in model.order if g != "fc"]:
        _, _, height, width = cache[f"{stage}.out"].shape
        for row, col in {(0, 0), (height - 1, width - 1), (height // 2, width // 2), (0, width - 1)}:
            assert cnn.receptive_field(model, stage, row, col) == gradient_box(model, stage, row, col), (stage, row, col)


def test_receptive_field_size_and_jump_by_formula():
    model = build_model(presets.get("shapes-cnn"), seed=0)  # 3×(conv 3 pad 1 + pool 2)
    # walking back from pool.2: r = 1 -> pool 2 -> conv 4 -> pool 8 -> conv 10 -> pool 20 -> conv 22, r_in = (r - 1)s + k
    assert [cnn.receptive_field_size(model, s) for s in ("conv.0", "pool.0", "conv.1", "pool.1", "conv.2", "pool.2")] \
        == [3, 4, 8, 10, 18, 22]
    assert [cnn.jump(model, s) for s in ("conv.0", "pool.0", "conv.1", "pool.2")] == [1, 2, 2, 8]
    top, left, bottom, right = cnn.receptive_field(model, "conv.2", 4, 4)  # an interior position: nothing clipped
    assert bottom - top == right - left == 18 == cnn.receptive_field_size(model, "conv.2")
    with pytest.raises(ValueError, match="fully connected"):
        cnn.receptive_field(model, "fc.0", 0, 0)
    with pytest.raises(ValueError, match="no stage 'conv.9'"):
        cnn.receptive_field(model, "conv.9", 0, 0)
    with pytest.raises(ValueError, match="8×8"):
        cnn.receptive_field(model, "conv.2", 8, 0)
