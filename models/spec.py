"""ModelSpec: a model described as plain data, checked and sized before anything is built.

A spec is what the Model page edits, what a checkpoint stores as ``spec.json`` and what the
trainer rebuilds a model from. ``validate()`` speaks to a student ("conv 3: kernel 5 is larger
than its 4×4 input"), and ``layer_table()`` gives every layer's output shape and parameter
count by arithmetic alone, so a bad design is caught before a single tensor is allocated.
Both are worked out in ``models.shapes``; this module holds the data and its JSON.
"""
from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields

# What a spec may hold (kinds, layer types, limits) is defined beside the checks that read it,
# in models.shapes, and stays importable from here: ``from models.spec import ACTIVATIONS``.
from .shapes import (ACTIVATIONS, CELLS, FOLLOWER_HOOK, FOLLOWER_TYPES, GATES_PER_CELL, INPUT_KINDS,  # noqa: F401
                     KINDS, LAYER_TYPES, MAX_CHANNELS, MAX_CLASSES, MAX_FEATURES, MAX_IMAGE_SIDE, MAX_LEN,
                     MAX_PARAMETERS, MAX_VOCAB, STAGE_TYPES, LayerRow, infer, shape_text)


@dataclass
class InputSpec:
    kind: str = "image"  # image | tokens | sequence (numbers per time step)
    channels: int = 1  # image: 1 for grey, 3 for RGB
    height: int = 16  # image height in pixels
    width: int = 16  # image width in pixels
    vocab_size: int = 0  # tokens: vocabulary size, id 0 is <pad> and id 1 is <unk>
    max_len: int = 32  # tokens/sequence: the longest sequence the model accepts
    features: int = 0  # sequence: numbers per time step


@dataclass
class Layer:
    """One row of a CNN's layer table; each type reads only the fields it needs."""

    type: str  # conv | pool | fc | batchnorm | act | dropout
    channels: int = 0  # conv: output channels; fc: output features
    kernel: int = 3  # conv/pool: window size (square)
    stride: int = 1  # conv/pool: step; for pool, 0 means "same as the kernel"
    padding: int = 0  # conv/pool: zeros added on each side
    activation: str = "relu"  # act: relu | leaky_relu | tanh | sigmoid | gelu
    pool: str = "max"  # pool: max | avg
    p: float = 0.5  # dropout: probability of zeroing a unit while training


@dataclass
class RNNConfig:
    cell: str = "lstm"  # rnn (tanh) | lstm | gru
    embed_dim: int = 32  # size of each token's embedding vector
    hidden_size: int = 64  # units in the hidden state h_t
    num_layers: int = 1  # stacked recurrent layers
    bidirectional: bool = False  # also read the sequence right to left
    dropout: float = 0.0  # between stacked layers (training only)


@dataclass
class TransformerConfig:
    d_model: int = 64  # width of every token vector
    num_heads: int = 4  # attention heads per block; d_model must divide evenly
    num_layers: int = 2  # transformer blocks
    mlp_ratio: int = 2  # MLP hidden width = mlp_ratio * d_model
    dropout: float = 0.1  # on attention weights and residual branches (training only)
    positional: str = "learned"  # learned | sinusoidal
    norm: str = "pre"  # pre (LayerNorm before each sub-layer) | post (after, as in 2017)
    pooling: str = "cls"  # cls (a learned summary token) | mean (average of tokens)
    patch_size: int = 4  # image input only: side of each square patch (ViT)
    # Image input only: a small conv stem before the patches, one 3×3 conv (batch norm, ReLU) per
    # entry with that many channels and a 2×2 max pool between entries; [] = plain ViT patches.
    # Tokens stay the picture's patch_size × patch_size patches (patch_size must divide by the pools).
    stem_channels: list[int] = field(default_factory=list)


@dataclass
class ModelSpec:
    name: str  # shown in the sidebar and stored with checkpoints
    kind: str  # cnn | rnn | transformer
    input: InputSpec = field(default_factory=InputSpec)
    num_classes: int = 2  # outputs of the classifier
    layers: list[Layer] = field(default_factory=list)  # cnn only, in order
    rnn: RNNConfig | None = None  # rnn only
    transformer: TransformerConfig | None = None  # transformer only
    class_names: list[str] = field(default_factory=list)  # optional, one per class

    # ---- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        if not isinstance(data, dict):
            raise ValueError("a model spec must be a JSON object")
        data = dict(data)
        _check_keys(cls, data, "model spec")
        if "name" not in data or "kind" not in data:
            raise ValueError("a model spec needs at least a 'name' and a 'kind'")
        if not isinstance(data["name"], str) or not data["name"].strip():
            raise ValueError("the model's 'name' must be a non-empty text")
        data["input"] = _from_fields(InputSpec, data.get("input", {}), "input")
        layers = data.get("layers") or []
        if not isinstance(layers, list):
            raise ValueError("'layers' must be a list")
        data["layers"] = [_from_fields(Layer, row, f"layer {i + 1}") for i, row in enumerate(layers)]
        if data.get("rnn") is not None:
            data["rnn"] = _from_fields(RNNConfig, data["rnn"], "rnn")
        if data.get("transformer") is not None:
            data["transformer"] = _from_fields(TransformerConfig, data["transformer"], "transformer")
        class_names = data.get("class_names") or []
        if not isinstance(class_names, list):
            raise ValueError("'class_names' must be a list of names")
        data["class_names"] = [str(c) for c in class_names]
        return cls(**data)

    @classmethod
    def from_json(cls, text: str | bytes) -> "ModelSpec":
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"the model spec is not valid JSON ({err})") from None
        return cls.from_dict(data)

    # ---- checking and sizing ----------------------------------------------------------
    @property
    def is_vision_transformer(self) -> bool:
        return self.kind == "transformer" and self.input.kind == "image"

    def validate(self) -> list[str]:
        """Every problem in plain words; [] when the spec can be built."""
        return infer(self)[1]

    def layer_table(self) -> list[LayerRow]:
        """One LayerRow(name, layer, output, params) per layer; shapes are tuples of ints
        (``shape_text`` writes one for display), computed without building anything.

        Rows stop at the first layer whose input shape cannot be worked out.
        """
        return infer(self)[0]

    def parameter_count(self) -> int:
        return sum(row.params for row in self.layer_table())

    def family(self) -> str:
        """A short human name: 'CNN', 'LSTM', 'Transformer', 'Vision Transformer'."""
        if self.kind == "cnn":
            return "CNN"
        if self.kind == "rnn":
            return (self.rnn.cell.upper() if self.rnn else "RNN")
        return "Vision Transformer" if self.is_vision_transformer else "Transformer"

    def class_label(self, index: int) -> str:
        if 0 <= index < len(self.class_names):
            return self.class_names[index]
        return str(index)


def _check_keys(cls, data: dict, where: str) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where} has unknown field(s): {', '.join(unknown)}")


def _from_fields(cls, data, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a JSON object")
    _check_keys(cls, data, where)
    try:
        return cls(**data)
    except TypeError:  # a required field is missing
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        raise ValueError(f"{where} needs the field(s): {', '.join(required)}") from None
