"""Named model specs: the models a class starts from, and the fixtures the tests build."""
from __future__ import annotations

import copy

from .spec import InputSpec, Layer, ModelSpec, RNNConfig, TransformerConfig

DIGITS = [str(d) for d in range(10)]
SHAPES = ["circle", "square", "triangle", "cross"]
SENTIMENT = ["negative", "positive"]
# Room for the sentiment grammar's words plus <pad> and <unk>; training resizes it to the
# tokenizer's real vocabulary.
SENTIMENT_VOCAB = 256
SENTIMENT_LEN = 32


def _digits_cnn() -> ModelSpec:
    return ModelSpec(
        name="digits-cnn", kind="cnn", num_classes=10, class_names=DIGITS,
        input=InputSpec(kind="image", channels=1, height=16, width=16),
        layers=[
            Layer("conv", channels=8, kernel=3, padding=1), Layer("act", activation="relu"),
            Layer("pool", kernel=2, stride=2),
            Layer("conv", channels=16, kernel=3, padding=1), Layer("act", activation="relu"),
            Layer("pool", kernel=2, stride=2),
            Layer("fc", channels=64), Layer("act", activation="relu"),
        ])


def _shapes_cnn() -> ModelSpec:
    return ModelSpec(
        name="shapes-cnn", kind="cnn", num_classes=4, class_names=SHAPES,
        input=InputSpec(kind="image", channels=3, height=32, width=32),
        layers=[
            Layer("conv", channels=16, kernel=3, padding=1), Layer("batchnorm"), Layer("act", activation="relu"),
            Layer("pool", kernel=2, stride=2),
            Layer("conv", channels=32, kernel=3, padding=1), Layer("batchnorm"), Layer("act", activation="relu"),
            Layer("pool", kernel=2, stride=2),
            Layer("conv", channels=32, kernel=3, padding=1), Layer("act", activation="relu"),
            Layer("pool", kernel=2, stride=2),
            Layer("fc", channels=64), Layer("act", activation="relu"), Layer("dropout", p=0.2),
        ])


def _sentiment_rnn(cell: str) -> ModelSpec:
    return ModelSpec(
        name=f"sentiment-{cell}", kind="rnn", num_classes=2, class_names=SENTIMENT,
        input=InputSpec(kind="tokens", vocab_size=SENTIMENT_VOCAB, max_len=SENTIMENT_LEN),
        rnn=RNNConfig(cell=cell, embed_dim=32, hidden_size=64, num_layers=1))


def _sentiment_transformer() -> ModelSpec:
    return ModelSpec(
        name="sentiment-transformer", kind="transformer", num_classes=2, class_names=SENTIMENT,
        input=InputSpec(kind="tokens", vocab_size=SENTIMENT_VOCAB, max_len=SENTIMENT_LEN),
        transformer=TransformerConfig(d_model=64, num_heads=4, num_layers=2, mlp_ratio=2, pooling="cls"))


def _shapes_vit() -> ModelSpec:
    return ModelSpec(
        name="shapes-vit", kind="transformer", num_classes=4, class_names=SHAPES,
        input=InputSpec(kind="image", channels=3, height=32, width=32),
        # A plain linear patch cannot tell a shape's edge from its colours and learns next to
        # nothing on this data; a three-layer conv stem (the first stages of shapes-cnn) can, and
        # the blocks still attend over the picture's 4×4 grid of 8×8 patches.
        transformer=TransformerConfig(d_model=64, num_heads=4, num_layers=2, mlp_ratio=2, patch_size=8, pooling="cls",
                                      stem_channels=[16, 32, 32]))


_PRESETS = {
    "digits-cnn": _digits_cnn,
    "shapes-cnn": _shapes_cnn,
    "sentiment-rnn": lambda: _sentiment_rnn("rnn"),
    "sentiment-lstm": lambda: _sentiment_rnn("lstm"),
    "sentiment-gru": lambda: _sentiment_rnn("gru"),
    "sentiment-transformer": _sentiment_transformer,
    "shapes-vit": _shapes_vit,
}

# What each preset reaches with its defaults on its own data is measured by bench/presets_learn.py
# (bench/README.md has the table): validation accuracy, within a minute on a 2-core CPU.
DESCRIPTIONS = {
    "digits-cnn": "A small CNN for 16×16 handwritten digits: two conv + pool stages, then a classifier. "
                  "With its defaults it reaches 97 % on digits in about 10 s.",
    "shapes-cnn": "A CNN with batch norm for 32×32 colour pictures of circles, squares, triangles and crosses. "
                  "With its defaults it reaches 97 % on shapes in about 30 s.",
    "sentiment-rnn": "A plain (tanh) recurrent network reading a sentence word by word. "
                     "With its defaults it reaches 98 % on sentiment in about 10 s.",
    "sentiment-lstm": "An LSTM: a recurrent network with a cell state and gates that decide what to keep. "
                      "With its defaults it reaches 100 % on sentiment and 98.9 % on brackets in about 10 s.",
    "sentiment-gru": "A GRU: a recurrent network with reset and update gates. "
                     "With its defaults it reaches 100 % on sentiment in about 10 s.",
    "sentiment-transformer": "A two-block transformer encoder: every word attends to every other word. "
                             "With its defaults it reaches 97 % on sentiment in about 40 s.",
    "shapes-vit": "A vision transformer: a small conv stem finds edges, then the picture's 8×8 patches attend "
                  "to each other. With its defaults it reaches 93 % on shapes in about 40 s.",
}


def names() -> list[str]:
    return list(_PRESETS)


def get(name: str) -> ModelSpec:
    """A fresh copy of the named preset (safe to edit)."""
    try:
        return copy.deepcopy(_PRESETS[name]())
    except KeyError:
        raise KeyError(f"no preset named '{name}'; choose one of {', '.join(_PRESETS)}") from None


def describe(name: str) -> str:
    return DESCRIPTIONS.get(name, "")
