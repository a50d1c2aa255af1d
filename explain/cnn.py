"""What a CNN computes for one input, stage by stage, as plain arrays for the Inspect page.

``inspect_cnn`` runs the model once with every hook cached and groups what it saw by stage:
each conv's filters, raw output and activated output (``ConvView``), each pool's input and
output (``PoolView``). On top of that:

- ``conv_arithmetic`` opens one feature-map value: the input patch under the filter, the
  products, the sum, the bias, batch norm and the activation, with the numbers, so a student
  can check by hand that a convolution is only multiply-and-add.
- ``receptive_field`` says which input pixels can reach one position of a conv or pool stage,
  composing the kernel, stride and padding of every conv and pool before it.
- ``pool_windows`` / ``pool_argmax`` give the window a pooled value was taken from.

Arguments and fields are 0-based indices (code); the formulas and messages a student reads count
rows, columns, channels and layers from 1 (``explain.counting``), as the page's inputs do.

Nothing here plots or imports Streamlit; ``viz.cnn`` draws these.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .counting import FIRST, counted, one_to
from .predictions import class_names_of, softmax

ACTIVATION_LATEX = {"relu": r"\mathrm{ReLU}", "leaky_relu": r"\mathrm{LeakyReLU}", "tanh": r"\tanh",
                    "sigmoid": r"\mathrm{sigmoid}", "gelu": r"\mathrm{GELU}"}


@dataclass
class ConvView:
    """One conv stage of the model, for one input."""

    name: str  # "conv.0"
    index: int  # 0
    kernel: int  # side of the square filter
    stride: int
    padding: int  # zeros added on each side of the input
    weight: np.ndarray  # (O, I, k, k) float32
    bias: np.ndarray  # (O,)
    input_name: str  # hook whose value this conv reads: "input", "pool.0.out", "conv.0.act", ...
    pre: np.ndarray  # (O, H, W) the raw convolution, hook conv.i.out
    post: np.ndarray | None  # (O, H, W) after the stage's activation (conv.i.act), None without one
    post_name: str | None  # "conv.0.act" or None
    batchnorm: bool  # the stage normalises between conv and activation (conv.i.bn exists)
    activation: str | None  # "relu", "tanh", ... (from the spec's layer rows) or None


@dataclass
class PoolView:
    name: str  # "pool.0"
    index: int  # 0
    kind: str  # "max" | "avg"
    kernel: int  # side of the square window
    stride: int  # already resolved (0 in a spec means = kernel)
    padding: int
    input_name: str  # the hook it reads
    before: np.ndarray  # (C, H, W) its input
    after: np.ndarray  # (C, H', W') pool.i.out


@dataclass
class CNNInspection:
    class_names: list[str]  # (K,) names
    probabilities: np.ndarray  # (K,)
    input: np.ndarray  # (C, H, W) the preprocessed input as the model received it
    convs: list[ConvView]  # in model order
    pools: list[PoolView]  # in model order
    stages: list[str]  # every stage in order: ["conv.0", "pool.0", "conv.1", ..., "fc.0", "fc.1"]
    activations: dict[str, np.ndarray]  # every hook's value for this input, batch dim removed


@dataclass
class ConvArithmetic:
    """How one feature-map value is computed, with the numbers."""

    layer: str  # "conv.1"
    channel: int  # output channel c (0-based)
    row: int  # output row i
    col: int  # output column j
    patch: np.ndarray  # (I, k, k) input values under the window; zeros where it hangs over the padding
    kernel: np.ndarray  # (I, k, k) the filter of output channel c
    products: np.ndarray  # (I, k, k) patch * kernel
    weighted_sum: float  # products.sum()
    bias: float
    pre: float  # weighted_sum + bias; equals ConvView.pre[channel, row, col]
    batchnorm: dict | None  # {"mean", "var", "eps", "gamma", "beta", "value"} (eval-mode formula)
    activation: str | None  # "relu", ... or None
    post: float | None  # after the activation; equals ConvView.post[channel, row, col]
    formula: str  # LaTeX of the general formula, for st.latex
    numbers: str  # LaTeX of the same computation with this position's numbers


# ---- stage structure -----------------------------------------------------------------------

def stage_hooks(stage_module, name: str) -> list[str]:
    """The hook names of one stage in execution order, e.g. ["conv.0.out", "conv.0.act"]."""
    return stage_module.hook_names(name)


def stage_inputs(model) -> dict[str, str]:
    """For every stage, the hook it reads: the last hook of the stage before ("input" first)."""
    inputs, previous = {}, "input"
    for group, index in model.order:
        name = f"{group}.{index}"
        inputs[name] = previous
        hooks = stage_hooks(getattr(model, group)[index], name)
        previous = hooks[-1] if hooks else previous
    return inputs


def _activations_by_stage(spec) -> dict[str, str]:
    """Stage name -> its activation as written in the spec's layer rows ("conv.0" -> "relu")."""
    counters, stage, found = {"conv": 0, "pool": 0, "fc": 0}, None, {}
    for layer in spec.layers:
        if layer.type in counters:
            stage = f"{layer.type}.{counters[layer.type]}"
            counters[layer.type] += 1
        elif layer.type == "act" and stage is not None:
            found[stage] = layer.activation
    return found


def _square(value) -> int:
    """nn.Conv2d keeps kernel/stride/padding as pairs, pools often as ints; the spec makes them square."""
    return int(value[0]) if isinstance(value, (tuple, list)) else int(value)


def _geometry(model, stage: str) -> tuple[int, int, int]:
    """(kernel, stride, padding) of a conv or pool stage."""
    group, index = stage.split(".")
    module = getattr(model, group)[int(index)]
    main = module.conv if group == "conv" else module.pool
    return _square(main.kernel_size), _square(main.stride), _square(main.padding)


def _spatial_stages(model, stage: str) -> list[str]:
    """The conv and pool stages from the first up to and including ``stage``."""
    names = [f"{group}.{index}" for group, index in model.order]
    if stage not in names:
        raise ValueError(f"this model has no stage '{stage}'; it has {', '.join(names)}")
    if stage.startswith("fc."):
        raise ValueError(f"{stage} is fully connected: every input pixel reaches it, so it has no receptive field box")
    return [name for name in names[: names.index(stage) + 1] if not name.startswith("fc.")]


# ---- one forward pass -----------------------------------------------------------------------

@torch.no_grad()
def inspect_cnn(model, x: torch.Tensor) -> CNNInspection:
    """Everything the CNN computes for one (C, H, W) input, from a single cached forward pass."""
    spec = model.spec
    expected = (spec.input.channels, spec.input.height, spec.input.width)
    if tuple(x.shape) != expected:
        raise ValueError(f"this model takes a {'×'.join(map(str, expected))} image (channels × height × width), "
                         f"not {'×'.join(map(str, x.shape))}")
    model.eval()
    device = next(model.parameters()).device
    logits, cache = model.run_with_cache(x.unsqueeze(0).to(device))  # (1, C, H, W) in, (1, K) out
    activations = {name: cache[name][0].float().numpy() for name in cache}
    inputs, acts = stage_inputs(model), _activations_by_stage(spec)
    convs, pools = [], []
    for group, index in model.order:
        name = f"{group}.{index}"
        kernel, stride, padding = _geometry(model, name) if group != "fc" else (0, 0, 0)
        if group == "conv":
            conv = model.conv[index].conv
            bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
            post_name = f"{name}.act" if f"{name}.act" in activations else None
            convs.append(ConvView(
                name, index, kernel, stride, padding, weight=conv.weight.detach().cpu().float().numpy(),
                bias=bias.detach().cpu().float().numpy(), input_name=inputs[name], pre=activations[f"{name}.out"],
                post=activations[post_name] if post_name else None, post_name=post_name,
                batchnorm=f"{name}.bn" in activations, activation=acts.get(name)))
        elif group == "pool":
            kind = "max" if isinstance(model.pool[index].pool, torch.nn.MaxPool2d) else "avg"
            pools.append(PoolView(name, index, kind, kernel, stride, padding, input_name=inputs[name],
                                  before=activations[inputs[name]], after=activations[f"{name}.out"]))
    return CNNInspection(class_names_of(model), softmax(logits)[0], x.detach().cpu().float().numpy(),
                         convs, pools, [f"{g}.{i}" for g, i in model.order], activations)


# ---- windows and receptive fields -------------------------------------------------------------

def window_box(row: int, col: int, kernel: int, stride: int, padding: int, height: int, width: int
               ) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), bottom/right exclusive: the input cells under the window of
    output (row, col), clipped to the height × width input (the padding is not part of it)."""
    top, left = row * stride - padding, col * stride - padding
    return max(top, 0), max(left, 0), min(top + kernel, height), min(left + kernel, width)


def _check_position(what: str, row: int, col: int, height: int, width: int) -> None:
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"{what} is {height}×{width}: rows are {one_to(height)} and columns {one_to(width)}, "
                         f"not row {counted(row)}, column {counted(col)}")


def pool_windows(pool: PoolView, row: int, col: int) -> tuple[int, int, int, int]:
    """The window output (row, col) of ``pool`` was taken from, in the pool's input coordinates."""
    _, out_h, out_w = pool.after.shape
    _check_position(f"the output of {pool.name}", row, col, out_h, out_w)
    _, in_h, in_w = pool.before.shape
    return window_box(row, col, pool.kernel, pool.stride, pool.padding, in_h, in_w)


def pool_argmax(pool: PoolView, channel: int, row: int, col: int) -> tuple[int, int]:
    """(row, col) in the pool's input of the value a max pool kept for output (channel, row, col)."""
    if pool.kind != "max":
        raise ValueError(f"{pool.name} averages its window, so no single input value is kept")
    if not 0 <= channel < pool.before.shape[0]:
        raise ValueError(f"{pool.name} has channels {one_to(pool.before.shape[0])}, not {counted(channel)}")
    top, left, bottom, right = pool_windows(pool, row, col)
    window = pool.before[channel, top:bottom, left:right]  # (h, w) part of the window inside the input
    r, c = np.unravel_index(int(np.argmax(window)), window.shape)
    return top + int(r), left + int(c)


def receptive_field(model, stage: str, row: int, col: int) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), bottom/right exclusive, in input pixels: the region that can
    influence position (row, col) of conv/pool stage ``stage``, clipped to the image."""
    stages = _spatial_stages(model, stage)
    height, width = _output_size(model, stages)
    _check_position(f"the output of {stage}", row, col, height, width)
    top, left, bottom, right = row, col, row, col  # inclusive box, walked back one stage at a time
    for name in reversed(stages):
        kernel, stride, padding = _geometry(model, name)
        top, left = top * stride - padding, left * stride - padding
        bottom, right = bottom * stride - padding + kernel - 1, right * stride - padding + kernel - 1
    inp = model.spec.input
    return max(top, 0), max(left, 0), min(bottom + 1, inp.height), min(right + 1, inp.width)


def receptive_field_size(model, stage: str) -> int:
    """Side of the receptive field of one position of ``stage`` before clipping to the image."""
    size = 1
    for name in reversed(_spatial_stages(model, stage)):
        kernel, stride, _ = _geometry(model, name)
        size = (size - 1) * stride + kernel
    return size


def jump(model, stage: str) -> int:
    """Input pixels between neighbouring positions of ``stage``: the product of the strides."""
    total = 1
    for name in _spatial_stages(model, stage):
        total *= _geometry(model, name)[1]
    return total


def _output_size(model, stages: list[str]) -> tuple[int, int]:
    height, width = model.spec.input.height, model.spec.input.width
    for name in stages:
        kernel, stride, padding = _geometry(model, name)
        height, width = ((side + 2 * padding - kernel) // stride + 1 for side in (height, width))
    return height, width


# ---- one value, by hand -----------------------------------------------------------------------

@torch.no_grad()  # reading parameters as plain numbers; nothing here needs gradients
def conv_arithmetic(model, inspection: CNNInspection, conv_index: int, channel: int, row: int, col: int
                    ) -> ConvArithmetic:
    """The multiply-and-add behind ``inspection.convs[conv_index].pre/post[channel, row, col]``."""
    if not 0 <= conv_index < len(inspection.convs):
        raise ValueError(f"this model has conv layers {one_to(len(inspection.convs))}, not {counted(conv_index)}")
    view = inspection.convs[conv_index]
    out_channels, out_h, out_w = view.pre.shape
    if not 0 <= channel < out_channels:
        raise ValueError(f"{view.name} has channels {one_to(out_channels)}, not {counted(channel)}")
    _check_position(f"the output of {view.name}", row, col, out_h, out_w)
    k, s, p = view.kernel, view.stride, view.padding
    source = inspection.activations[view.input_name].astype(np.float64)  # (I, H_in, W_in)
    padded = np.pad(source, ((0, 0), (p, p), (p, p)))  # (I, H_in + 2p, W_in + 2p), zeros as the conv sees them
    patch = padded[:, row * s: row * s + k, col * s: col * s + k]  # (I, k, k)
    kernel = view.weight[channel].astype(np.float64)  # (I, k, k)
    products = patch * kernel  # (I, k, k)
    weighted_sum, bias = float(products.sum()), float(view.bias[channel])
    value = pre = weighted_sum + bias
    numbers = [rf"\sum (\text{{patch}} \odot \text{{kernel}}) = {_num(weighted_sum)}",
               rf"{_num(weighted_sum)} + {_num(bias, signed=True)} = {_num(pre)}"]
    steps = [rf"z_{{c,i,j}} = \sum_{{c',u,v}} x_{{c',\,{_index('i', 'u', s, p)},\,{_index('j', 'v', s, p)}}}\, "
             r"w_{c,c',u,v} + b_c"]
    symbol, batchnorm, post = "z", None, None
    stage = model.conv[view.index]
    for module_name, hook in stage.steps[1:]:  # what follows the convolution, in the stage's own order
        module = getattr(stage, module_name)
        if module_name == "batchnorm":
            mean, var = float(module.running_mean[channel]), float(module.running_var[channel])
            gamma = float(module.weight[channel]) if module.weight is not None else 1.0
            beta = float(module.bias[channel]) if module.bias is not None else 0.0
            normalised = (value - mean) / np.sqrt(var + module.eps) * gamma + beta
            batchnorm = {"mean": mean, "var": var, "eps": float(module.eps), "gamma": gamma, "beta": beta,
                         "value": float(normalised)}
            steps.append(rf"\hat z_{{c,i,j}} = \gamma_c \frac{{{symbol}_{{c,i,j}} - \mu_c}}{{\sqrt{{\sigma_c^2 + \epsilon}}}}"
                         r" + \beta_c")
            numbers.append(rf"\frac{{{_num(value)} - {_num(mean, signed=True)}}}{{\sqrt{{{_num(var)} + {_num(module.eps)}}}}}"
                           rf" \cdot {_num(gamma, signed=True)} + {_num(beta, signed=True)} = {_num(normalised)}")
            value, symbol = float(normalised), r"\hat z"
        elif module_name == "nonlinearity":
            name = view.activation or type(module).__name__.lower()
            latex = ACTIVATION_LATEX.get(name, rf"\mathrm{{{type(module).__name__}}}")
            activated = float(module(torch.tensor([value], dtype=torch.float64))[0])  # the model's own function
            steps.append(rf"a_{{c,i,j}} = {latex}({symbol}_{{c,i,j}})")
            numbers.append(rf"{latex}({_num(value)}) = {_num(activated)}")
            value, symbol, post = activated, "a", activated
        # dropout passes values through unchanged outside training, so it adds no step
    return ConvArithmetic(view.name, channel, row, col, patch, kernel, products, weighted_sum, bias, pre, batchnorm,
                          view.activation if post is not None else None, post,
                          formula=r",\quad ".join(steps), numbers=r",\quad ".join(numbers))


def _index(out: str, offset: str, stride: int, padding: int) -> str:
    """The input row (column) a window position reads, with this conv's numbers, every index
    counted from 1 as the page counts them: output row i, filter row u -> input row
    s(i-1) + u - p, written 'i+u-1' (stride 1, no padding) or '2i+u-3' (stride 2, padding 1);
    a row below 1 or past the input is padding, a zero."""
    return f"{stride if stride != 1 else ''}{out}+{offset}-{stride * FIRST + padding}"


def _num(value: float, signed: bool = False) -> str:
    """A number for the LaTeX line; negatives in brackets where they follow an operator."""
    text = f"{value:.4g}"
    if "e" in text:  # 1e-05 -> 1 \times 10^{-5}: LaTeX has no e-notation
        mantissa, exponent = text.split("e")
        text = rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return f"({text})" if signed and value < 0 else text
