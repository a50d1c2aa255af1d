"""What a model spec may hold, and the arithmetic that checks and sizes it.

``infer(spec)`` is what ``ModelSpec.validate()`` and ``ModelSpec.layer_table()`` read: every
problem in plain words ("conv 3: kernel 5 is larger than its 4×4 input"), and every layer's
output shape and parameter count, worked out without building anything. Shapes are numbers
(``LayerRow.output == (8, 16, 16)``); ``shape_text`` writes one for display ("8×16×16").

The spec is read by attribute only: this module does not import ``models.spec`` (which imports
it), so the kinds, layer types and limits a spec may use are defined here and re-exported there.
"""
from __future__ import annotations

from dataclasses import dataclass

from .words import with_article

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu")
LAYER_TYPES = ("conv", "pool", "fc", "batchnorm", "act", "dropout")
STAGE_TYPES = ("conv", "pool", "fc")  # layers that start a new named stage
CONV_AFTER_FC = "layers must come before the fully connected layers"  # the Model page adds how to move one
FOLLOWER_TYPES = ("batchnorm", "act", "dropout")  # layers that belong to the stage before them
FOLLOWER_HOOK = {"batchnorm": "bn", "act": "act", "dropout": "dropout"}  # e.g. conv.0.act
KINDS = ("cnn", "rnn", "transformer")
INPUT_KINDS = ("image", "tokens", "sequence")
CELLS = ("rnn", "lstm", "gru")
GATES_PER_CELL = {"rnn": 1, "lstm": 4, "gru": 3}

# Limits that keep a classroom machine responsive; far above what the presets use.
MAX_IMAGE_SIDE = 512
MAX_CHANNELS = 1024
MAX_FEATURES = 16384
MAX_VOCAB = 200_000
MAX_LEN = 4096
MAX_CLASSES = 1000
MAX_PARAMETERS = 200_000_000


@dataclass(frozen=True)
class LayerRow:
    """One row of a spec's layer table: a hook-point name ("conv.0", "blocks.1"), what the layer
    does in words, its output shape for one example (no batch dimension) and its parameters."""

    name: str
    layer: str
    output: tuple[int, ...]
    params: int


def shape_text(shape) -> str:
    """A shape as the pages show it: (8, 16, 16) -> "8×16×16"."""
    return "×".join(str(int(d)) for d in shape)


def _window_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _is_int(value, low: int, high: int | None = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)


def _check_input(spec, errors: list[str]) -> None:
    inp = spec.input
    if not isinstance(spec.name, str) or not spec.name.strip():
        errors.append("the model needs a name")
    if spec.kind not in KINDS:
        errors.append(f"unknown model kind '{spec.kind}': choose one of {', '.join(KINDS)}")
        return
    if inp.kind not in INPUT_KINDS:
        errors.append(f"unknown input kind '{inp.kind}': choose one of {', '.join(INPUT_KINDS)}")
        return
    expected = {"cnn": ("image",), "rnn": ("tokens", "sequence"), "transformer": ("tokens", "image")}[spec.kind]
    if inp.kind not in expected:
        errors.append(f"this {spec.family()} model takes {' or '.join(expected)} input, not {inp.kind}")
    if inp.kind == "image":
        if not _is_int(inp.channels, 1, 16):
            errors.append(f"input: channels must be between 1 and 16, not {inp.channels}")
        for side in ("height", "width"):
            if not _is_int(getattr(inp, side), 1, MAX_IMAGE_SIDE):
                errors.append(f"input: {side} must be between 1 and {MAX_IMAGE_SIDE}, not {getattr(inp, side)}")
    else:
        if not _is_int(inp.max_len, 1, MAX_LEN):
            errors.append(f"input: max_len must be between 1 and {MAX_LEN}, not {inp.max_len}")
        if inp.kind == "tokens" and not _is_int(inp.vocab_size, 2, MAX_VOCAB):
            errors.append(f"input: vocab_size must be between 2 and {MAX_VOCAB} (<pad> and <unk> count), not {inp.vocab_size}")
        if inp.kind == "sequence" and not _is_int(inp.features, 1, MAX_FEATURES):
            errors.append(f"input: features must be between 1 and {MAX_FEATURES}, not {inp.features}")
    if not _is_int(spec.num_classes, 2, MAX_CLASSES):
        errors.append(f"the classifier needs between 2 and {MAX_CLASSES} classes, not {spec.num_classes}")
    if spec.class_names and len(spec.class_names) != spec.num_classes:
        errors.append(f"there are {len(spec.class_names)} class names for {spec.num_classes} classes")


def infer(spec) -> tuple[list[LayerRow], list[str]]:
    """(the layer table, every problem in plain words) of a ModelSpec; rows stop at the first
    layer whose input shape cannot be worked out, and the problems are [] for a buildable spec."""
    errors: list[str] = []
    _check_input(spec, errors)
    if errors:
        return [], errors
    if spec.kind == "cnn":
        rows = _infer_cnn(spec, errors)
    elif spec.kind == "rnn":
        rows = _infer_rnn(spec, errors)
    else:
        rows = _infer_transformer(spec, errors)
    total = sum(row.params for row in rows)
    if total > MAX_PARAMETERS:
        errors.append(f"this model has {total:,} parameters; the limit is {MAX_PARAMETERS:,}")
    return rows, errors


def _infer_cnn(spec, errors: list[str]) -> list[LayerRow]:
    inp = spec.input
    if spec.rnn is not None or spec.transformer is not None:
        errors.append("a CNN spec must not carry rnn or transformer settings")
    shape: tuple[int, ...] = (inp.channels, inp.height, inp.width)
    rows = [LayerRow("input", "image", shape, 0)]
    counters = {"conv": 0, "pool": 0, "fc": 0}
    stage: str | None = None  # e.g. "conv.1", the stage that followers attach to
    stage_followers: set[str] = set()
    broken = False
    for position, layer in enumerate(spec.layers, start=1):
        where = f"layer {position} ({layer.type})"
        if layer.type not in LAYER_TYPES:
            errors.append(f"layer {position}: unknown type '{layer.type}'; choose one of {', '.join(LAYER_TYPES)}")
            broken = True
            continue
        if layer.type in STAGE_TYPES:
            name = f"{layer.type}.{counters[layer.type]}"
            counters[layer.type] += 1
            where = f"layer {position} ({name})"
            stage, stage_followers = name, set()
            if layer.type in ("conv", "pool") and counters["fc"] > 0:
                errors.append(f"{where}: {layer.type} {CONV_AFTER_FC}")
                broken = True
                continue
        else:
            if stage is None:
                errors.append(f"{where}: {with_article(layer.type)} layer must follow a conv, pool or fc layer")
                broken = True
                continue
            if layer.type in stage_followers:
                errors.append(f"{where}: {stage} already has {with_article(layer.type)} layer")
                broken = True
                continue
            stage_followers.add(layer.type)
            name = f"{stage}.{FOLLOWER_HOOK[layer.type]}"
        if broken:
            continue  # shapes after an error are unknown; keep collecting the other messages
        params = 0
        if layer.type == "conv":
            c, h, w = shape
            if not _is_int(layer.channels, 1, MAX_CHANNELS):
                errors.append(f"{where}: channels must be between 1 and {MAX_CHANNELS}, not {layer.channels}")
                broken = True
                continue
            if not (_is_int(layer.kernel, 1) and _is_int(layer.stride, 1) and _is_int(layer.padding, 0)):
                errors.append(f"{where}: kernel and stride must be at least 1 and padding at least 0")
                broken = True
                continue
            if layer.kernel > min(h, w) + 2 * layer.padding:
                errors.append(f"{where}: kernel {layer.kernel} is larger than its {h}×{w} input"
                              + (f" (with padding {layer.padding})" if layer.padding else ""))
                broken = True
                continue
            shape = (layer.channels, _window_out(h, layer.kernel, layer.stride, layer.padding),
                     _window_out(w, layer.kernel, layer.stride, layer.padding))
            params = layer.channels * c * layer.kernel * layer.kernel + layer.channels
            text = f"conv {layer.kernel}×{layer.kernel}, {layer.channels} channels, stride {layer.stride}, padding {layer.padding}"
        elif layer.type == "pool":
            c, h, w = shape
            stride = layer.stride or layer.kernel
            if layer.pool not in ("max", "avg"):
                errors.append(f"{where}: pooling must be 'max' or 'avg', not '{layer.pool}'")
                broken = True
                continue
            if not (_is_int(layer.kernel, 1) and _is_int(stride, 1) and _is_int(layer.padding, 0)):
                errors.append(f"{where}: kernel and stride must be at least 1 and padding at least 0")
                broken = True
                continue
            if layer.padding * 2 > layer.kernel:
                errors.append(f"{where}: padding {layer.padding} must be at most half the window {layer.kernel}")
                broken = True
                continue
            if layer.kernel > min(h, w) + 2 * layer.padding:
                errors.append(f"{where}: window {layer.kernel} is larger than its {h}×{w} input")
                broken = True
                continue
            shape = (c, _window_out(h, layer.kernel, stride, layer.padding),
                     _window_out(w, layer.kernel, stride, layer.padding))
            text = f"{layer.pool} pool {layer.kernel}×{layer.kernel}, stride {stride}"
        elif layer.type == "fc":
            in_features = 1
            for d in shape:
                in_features *= d
            if not _is_int(layer.channels, 1, MAX_FEATURES):
                errors.append(f"{where}: output features must be between 1 and {MAX_FEATURES}, not {layer.channels}")
                broken = True
                continue
            shape = (layer.channels,)
            params = in_features * layer.channels + layer.channels
            text = f"fully connected {in_features} → {layer.channels}"
        elif layer.type == "batchnorm":
            params = 2 * shape[0]
            text = "batch norm"
        elif layer.type == "act":
            if layer.activation not in ACTIVATIONS:
                errors.append(f"{where}: unknown activation '{layer.activation}'; choose one of {', '.join(ACTIVATIONS)}")
                broken = True
                continue
            text = layer.activation
        else:  # dropout
            if not (isinstance(layer.p, (int, float)) and 0.0 <= layer.p < 1.0):
                errors.append(f"{where}: dropout probability must be at least 0 and below 1, not {layer.p}")
                broken = True
                continue
            text = f"dropout p={layer.p:g}"
        rows.append(LayerRow(name, text, shape, params))
    if counters["conv"] == 0 and not broken and not errors:
        errors.append("a CNN needs at least one conv layer")
    if broken:
        return rows
    in_features = 1
    for d in shape:
        in_features *= d
    classifier = f"fc.{counters['fc']}"
    rows.append(LayerRow(classifier, f"classifier {in_features} → {spec.num_classes}", (spec.num_classes,),
                         in_features * spec.num_classes + spec.num_classes))
    return rows


def _infer_rnn(spec, errors: list[str]) -> list[LayerRow]:
    cfg, inp = spec.rnn, spec.input
    if cfg is None:
        errors.append("an RNN spec needs its rnn settings")
        return []
    if spec.layers or spec.transformer is not None:
        errors.append("an RNN spec must not carry CNN layers or transformer settings")
    if cfg.cell not in CELLS:
        errors.append(f"unknown cell '{cfg.cell}': choose one of {', '.join(CELLS)}")
    for label, value, high in (("embedding size", cfg.embed_dim, MAX_FEATURES), ("hidden size", cfg.hidden_size, MAX_FEATURES),
                               ("number of layers", cfg.num_layers, 16)):
        if not _is_int(value, 1, high):
            errors.append(f"rnn: {label} must be between 1 and {high}, not {value}")
    if not (isinstance(cfg.dropout, (int, float)) and 0.0 <= cfg.dropout < 1.0):
        errors.append(f"rnn: dropout must be at least 0 and below 1, not {cfg.dropout}")
    if not isinstance(cfg.bidirectional, bool):
        errors.append(f"rnn: bidirectional must be true or false, not {cfg.bidirectional!r}")
    if errors:
        return []
    T = inp.max_len
    if inp.kind == "tokens":
        rows = [LayerRow("embed", f"embedding {inp.vocab_size} words → {cfg.embed_dim}", (T, cfg.embed_dim),
                         inp.vocab_size * cfg.embed_dim)]
    else:
        rows = [LayerRow("embed", f"linear {inp.features} → {cfg.embed_dim} per step", (T, cfg.embed_dim),
                         inp.features * cfg.embed_dim + cfg.embed_dim)]
    gates = GATES_PER_CELL[cfg.cell]
    directions = 2 if cfg.bidirectional else 1
    H = cfg.hidden_size
    size_in = cfg.embed_dim
    for layer in range(cfg.num_layers):
        params = directions * (gates * H * (size_in + H) + 2 * gates * H)
        rows.append(LayerRow(f"rnn.{layer}", f"{cfg.cell.upper()} {size_in} → {H}" + (" ×2 directions" if directions == 2 else ""),
                             (T, H * directions), params))
        size_in = H * directions
    rows.append(LayerRow("head", f"classifier {size_in} → {spec.num_classes}", (spec.num_classes,),
                         size_in * spec.num_classes + spec.num_classes))
    return rows


def _infer_transformer(spec, errors: list[str]) -> list[LayerRow]:
    cfg, inp = spec.transformer, spec.input
    if cfg is None:
        errors.append("a transformer spec needs its transformer settings")
        return []
    if spec.layers or spec.rnn is not None:
        errors.append("a transformer spec must not carry CNN layers or rnn settings")
    for label, value, high in (("d_model", cfg.d_model, MAX_FEATURES), ("number of heads", cfg.num_heads, 64),
                               ("number of layers", cfg.num_layers, 48), ("mlp_ratio", cfg.mlp_ratio, 16)):
        if not _is_int(value, 1, high):
            errors.append(f"transformer: {label} must be between 1 and {high}, not {value}")
    if errors:
        return []
    if cfg.d_model % cfg.num_heads:
        errors.append(f"transformer: d_model {cfg.d_model} does not split evenly into {cfg.num_heads} heads")
    if cfg.positional not in ("learned", "sinusoidal"):
        errors.append(f"transformer: positional encoding must be 'learned' or 'sinusoidal', not '{cfg.positional}'")
    if cfg.norm not in ("pre", "post"):
        errors.append(f"transformer: norm must be 'pre' or 'post', not '{cfg.norm}'")
    if cfg.pooling not in ("cls", "mean"):
        errors.append(f"transformer: pooling must be 'cls' or 'mean', not '{cfg.pooling}'")
    if not (isinstance(cfg.dropout, (int, float)) and 0.0 <= cfg.dropout < 1.0):
        errors.append(f"transformer: dropout must be at least 0 and below 1, not {cfg.dropout}")
    D = cfg.d_model
    stem = list(cfg.stem_channels or [])
    if inp.kind == "image":
        p = cfg.patch_size
        if not _is_int(p, 1):
            errors.append(f"transformer: patch size must be at least 1, not {p}")
        elif inp.height % p or inp.width % p:
            errors.append(f"transformer: the {inp.height}×{inp.width} image does not split into {p}×{p} patches")
        else:
            _check_stem(stem, p, errors)
    elif stem:
        errors.append("transformer: a conv stem is for pictures only; remove it for text")
    if errors:
        return []
    extra = 1 if cfg.pooling == "cls" else 0
    if inp.kind == "image":
        n_tokens = (inp.height // p) * (inp.width // p)
        rows, channels, side = _stem_rows(stem, inp)
        k = p // side
        rows.append(LayerRow("embed", f"{p}×{p} patches → {D}" + (f" ({k}×{k} of the stem's map)" if stem else ""),
                             (n_tokens + extra, D), channels * k * k * D + D + extra * D))
    else:
        n_tokens = inp.max_len
        rows = [LayerRow("embed", f"embedding {inp.vocab_size} words → {D}", (n_tokens + extra, D),
                         inp.vocab_size * D + extra * D)]
    T = n_tokens + extra
    if cfg.positional == "learned":
        rows.append(LayerRow("pos", "learned positions", (T, D), T * D))
    else:
        rows.append(LayerRow("pos", "sinusoidal positions", (T, D), 0))
    hidden = cfg.mlp_ratio * D
    block_params = 2 * D + (3 * D * D + 3 * D) + (D * D + D) + 2 * D + (D * hidden + hidden) + (hidden * D + D)
    for i in range(cfg.num_layers):
        rows.append(LayerRow(f"blocks.{i}", f"{cfg.num_heads}-head attention + MLP {D}→{hidden}→{D}", (T, D),
                             block_params))
    if cfg.norm == "pre":
        rows.append(LayerRow("norm", "final layer norm", (T, D), 2 * D))
    rows.append(LayerRow("head", f"{cfg.pooling} pooling, classifier {D} → {spec.num_classes}", (spec.num_classes,),
                         D * spec.num_classes + spec.num_classes))
    return rows


MAX_STEM = 4  # conv layers a ViT's stem may have


def _check_stem(stem: list, patch: int, errors: list[str]) -> None:
    if len(stem) > MAX_STEM or not all(_is_int(c, 1, MAX_CHANNELS) for c in stem):
        errors.append(f"transformer: the conv stem takes at most {MAX_STEM} layers of 1 to {MAX_CHANNELS} channels, "
                      f"not {stem}")
    elif stem and patch % 2 ** (len(stem) - 1):
        errors.append(f"transformer: a conv stem of {len(stem)} layers halves the picture {len(stem) - 1} times, "
                      f"so the patch size must divide by {2 ** (len(stem) - 1)}, not {patch}")


def _stem_rows(stem: list[int], inp) -> tuple[list[LayerRow], int, int]:
    """The stem's rows, the channels it hands the patches and how many pixels one of its cells spans."""
    rows, channels, side = [], inp.channels, 1
    for i, width in enumerate(stem):
        if i:
            side *= 2  # the 2×2 max pool before every conv but the first
        rows.append(LayerRow(f"embed.stem.{i}", f"conv 3×3 → {width}, batch norm, ReLU"
                             + (", after a 2×2 max pool" if i else ""),
                             (width, inp.height // side, inp.width // side), channels * width * 9 + width + 2 * width))
        channels = width
    return rows, channels, side
