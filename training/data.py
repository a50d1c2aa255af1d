"""The Dataset every trainer, page and checkpoint shares, and how a spec is fitted to one.

A Dataset is tensors already prepared for the model (images normalised, sentences turned into
padded token ids) plus everything needed to prepare one more input the same way: an uploaded
image or a typed sentence goes through ``preprocess`` and so reaches the model exactly as the
training data did. ``meta()`` is what a checkpoint stores so that a loaded model can rebuild
that ``preprocess`` without the dataset (see ``preprocessor_from_meta``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from models import ModelSpec


class DatasetError(ValueError):
    """A dataset could not be made or read; the message says why in plain words."""


@dataclass(eq=False)  # one data set is one object: hashable by identity (caches hold it weakly)
class Dataset:
    name: str  # "digits", "shapes", "my-photos.zip"
    input_kind: str  # image | tokens
    x_train: torch.Tensor  # image: float32 (N, C, H, W) normalised; tokens: int64 (N, T), 0 = <pad>
    y_train: torch.Tensor  # int64 (N,) class indices
    x_val: torch.Tensor  # the held-out split, prepared the same way
    y_val: torch.Tensor
    class_names: list[str]
    preprocess: Callable[[Any], torch.Tensor]  # one raw input (PIL image / str) -> one model input, no batch dim
    # How to make this dataset again in another process: {"builtin": name, "options": {...}} for
    # a built-in one; None for uploaded data, whose tensors the job saves into its run folder.
    source: dict | None = None
    vocab: list[str] | None = None  # tokens: id -> word, with "<pad>" = 0 and "<unk>" = 1
    normalization: dict | None = None  # image: {"mean": [...], "std": [...]} per channel
    image_options: dict = field(default_factory=dict)  # image: e.g. {"invert_light_background": True}
    description: str = ""  # one line for the UI
    warnings: list[str] = field(default_factory=list)  # what the user should know, e.g. files skipped in an upload

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(C, H, W) for images, (T,) for token sequences."""
        return tuple(self.x_train.shape[1:])

    def meta(self) -> dict:
        """What a checkpoint keeps so that a loaded model prepares inputs as in training."""
        return {
            "dataset": self.name,
            "input_kind": self.input_kind,
            "input_shape": list(self.input_shape),
            "class_names": list(self.class_names),
            "vocab": list(self.vocab) if self.vocab is not None else None,
            "normalization": copy.deepcopy(self.normalization),
            "image_options": copy.deepcopy(self.image_options),
        }


def fit_spec_to_dataset(spec: ModelSpec, dataset: Dataset) -> ModelSpec:
    """A copy of ``spec`` whose input and classifier match the data; DatasetError if it cannot.

    A preset is designed for one dataset, but its layers often work for another (digits-cnn on
    1×28×28 MNIST); the input size, vocabulary and class count are taken from the data, and the
    result must still validate.
    """
    fitted = copy.deepcopy(spec)
    wants = "image" if spec.input.kind == "image" else "tokens"
    if spec.input.kind == "sequence" or wants != dataset.input_kind:
        kind = {"image": "images", "tokens": "sentences"}[dataset.input_kind]
        raise DatasetError(f"the {spec.family()} model '{spec.name}' cannot train on {kind}: "
                           f"choose a model that takes {'an image' if dataset.input_kind == 'image' else 'text'}")
    if dataset.input_kind == "image":
        fitted.input.channels, fitted.input.height, fitted.input.width = dataset.input_shape
    else:
        fitted.input.vocab_size = len(dataset.vocab or [])
        fitted.input.max_len = dataset.input_shape[0]
    fitted.num_classes = dataset.num_classes
    fitted.class_names = list(dataset.class_names)
    problems = fitted.validate()
    if problems:
        raise DatasetError(f"the model '{spec.name}' does not fit the {dataset.name} data: " + "; ".join(problems))
    return fitted
