"""Shared steps: a seeded stratified split, and Datasets made from pictures or sentences."""
from __future__ import annotations

import numpy as np
import torch

from ..data import Dataset, DatasetError
from ..tokenizer import Tokenizer
from .preprocess import ImagePreprocessor, TextPreprocessor, channel_stats, normalize_uint8

VAL_FRACTION = 0.2
MAX_TEXT_LEN = 32  # longest token sequence a text dataset keeps


def stratified_split(labels: np.ndarray, seed: int, val_fraction: float = VAL_FRACTION):
    """(train_idx, val_idx): about ``val_fraction`` of every class held out, shuffled by ``seed``.

    A class with at least two examples always keeps one in each split."""
    rng = np.random.default_rng([int(seed), 7])
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = min(len(idx) - 1, max(1, round(len(idx) * val_fraction))) if len(idx) > 1 else 0
        val.append(idx[:n_val]), train.append(idx[n_val:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(val))


def image_dataset(name: str, images: np.ndarray, labels: np.ndarray, class_names: list[str], *,
                  preprocessor: ImagePreprocessor, seed: int, split=None, source=None,
                  description: str = "", warnings=()) -> Dataset:
    """A Dataset from (N, H, W, C) uint8 pictures already prepared as ``preprocessor.prepare`` does.

    ``split`` = (train_idx, val_idx) for data that comes with its own; otherwise stratified."""
    train_idx, val_idx = split if split is not None else stratified_split(labels, seed)
    stats = channel_stats(images[train_idx])
    preprocessor.normalization = stats
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    return Dataset(
        name=name, input_kind="image",
        x_train=normalize_uint8(images[train_idx], stats["mean"], stats["std"]), y_train=labels[train_idx],
        x_val=normalize_uint8(images[val_idx], stats["mean"], stats["std"]), y_val=labels[val_idx],
        class_names=list(class_names), preprocess=preprocessor, source=source,
        normalization=stats, image_options=preprocessor.options(), description=description,
        warnings=list(warnings))


def text_dataset(name: str, texts: list[str], labels: np.ndarray, class_names: list[str], *, seed: int,
                 source=None, description: str = "", warnings=(), max_len_cap: int = MAX_TEXT_LEN) -> Dataset:
    """A Dataset of sentences: the tokenizer is built on the training split only, and every
    sentence is cut or padded to the longest training sentence (at most ``max_len_cap`` tokens)."""
    labels = np.asarray(labels)
    train_idx, val_idx = stratified_split(labels, seed)
    train_texts = [texts[i] for i in train_idx]
    tokenizer = Tokenizer.build(train_texts)
    max_len = max(1, min(max_len_cap, max(tokenizer.length(t) for t in train_texts)))
    y = torch.as_tensor(labels, dtype=torch.int64)
    return Dataset(
        name=name, input_kind="tokens",
        x_train=tokenizer.encode_batch(train_texts, max_len), y_train=y[train_idx],
        x_val=tokenizer.encode_batch([texts[i] for i in val_idx], max_len), y_val=y[val_idx],
        class_names=list(class_names), preprocess=TextPreprocessor(tokenizer.vocab, max_len), source=source,
        vocab=tokenizer.vocab, description=description, warnings=list(warnings))


def check_options(name: str, options: dict, defaults: dict) -> dict:
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        accepted = ", ".join(defaults) or "none"
        raise DatasetError(f"the {name} dataset has no option {', '.join(map(repr, unknown))}; "
                           f"its options are: {accepted}")
    return {**defaults, **options}


def int_option(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise DatasetError(f"'{name}' must be a whole number from {low} to {high}, not {value!r}")
    return int(value)


def float_option(name: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise DatasetError(f"'{name}' must be a number from {low} to {high}, not {value!r}")
    return float(value)
