"""What a model knows about where it came from: ``ModelMeta``.

A checkpoint's ``meta.json`` and a pretrained model both carry it: the data a model was
trained on and how that data was prepared (so a picture or sentence given later is prepared
the same way), the run and step it came from, and for a pretrained Hugging Face model its
source, family and picture settings. On disk it stays a plain JSON object (older checkpoints
load unchanged); in code it is this typed record, and keys a later Glassbox writes that this
one does not know are kept in ``extra`` and written back.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

KNOWN_SCALARS = {"dataset": str, "input_kind": str, "run_id": str, "step": int, "epoch": int,
                 "pretrained": str, "family": str}


@dataclass
class ModelMeta:
    dataset: str | None = None  # name of the data set it was trained on ("digits", "upload: faces.zip")
    input_kind: str | None = None  # "image" or "tokens": how that data was prepared
    input_shape: list[int] = field(default_factory=list)  # (C, H, W) of a picture, (T,) of a sentence
    class_names: list[str] = field(default_factory=list)  # the data's names of its classes, in order
    vocab: list[str] | None = None  # the tokenizer's words, id = position (sentence models)
    normalization: dict | None = None  # {"mean": [...], "std": [...]} per channel (picture models)
    image_options: dict = field(default_factory=dict)  # resizing / inverting a drawing, as in training
    run_id: str | None = None  # the training run this checkpoint came from
    step: int | None = None  # the optimiser step it was saved at
    epoch: int | None = None
    pretrained: str | None = None  # a pretrained model's source (a Hugging Face id or a folder)
    family: str | None = None  # a pretrained model's family ("bert", "gpt2", "vit", "resnet")
    classifier: bool = False  # a pretrained model with a classification head
    image: dict | None = None  # a pretrained image model's own preprocessing (size, mean, std)
    extra: dict = field(default_factory=dict)  # keys this Glassbox does not know, kept for the round trip

    @classmethod
    def from_dict(cls, document: Mapping | None) -> ModelMeta:
        """The record of a meta.json object; unknown keys go to ``extra``, wrong types to None."""
        document = dict(document or {})
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {key: copy.deepcopy(value) for key, value in document.items() if key in known}
        for key, kind in KNOWN_SCALARS.items():
            if key in values and not (isinstance(values[key], kind) and not isinstance(values[key], bool)):
                values[key] = None  # a damaged field is as good as a missing one
        for key in ("input_shape", "class_names"):
            if not isinstance(values.get(key, []), list):
                values[key] = []
        if not isinstance(values.get("vocab"), (list, type(None))):
            values["vocab"] = None
        for key in ("normalization", "image"):
            if not isinstance(values.get(key), (dict, type(None))):
                values[key] = None
        if not isinstance(values.get("image_options", {}), dict):
            values["image_options"] = {}
        values["classifier"] = bool(values.get("classifier", False))
        extra = {key: copy.deepcopy(value) for key, value in document.items() if key not in known}
        return cls(**values, extra=extra)

    def to_dict(self) -> dict:
        """The plain JSON object for meta.json: what is set, plus ``extra``."""
        document = copy.deepcopy(self.extra)
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None or value == [] or value == {} or (f.name == "classifier" and not value):
                continue
            document[f.name] = copy.deepcopy(value)
        return document

    def with_run(self, run_id: str, step: int, epoch: int) -> ModelMeta:
        """A copy saying which run, step and epoch a checkpoint was saved at."""
        updated = copy.deepcopy(self)
        updated.run_id, updated.step, updated.epoch = run_id, step, epoch
        return updated
