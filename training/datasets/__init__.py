"""Datasets: the built-in ones, downloaded classics, and the user's own uploads.

    load_dataset("shapes", seed=0, n=4000, size=32)  -> Dataset
    load_dataset(ds.source["builtin"], **ds.source["options"])  # the same data in another process
    dataset_from_upload(data, "pets.zip")             -> Dataset (source=None)
    preprocessor_from_meta(ds.meta())                 -> the same preprocess, from a checkpoint

Every Dataset's ``preprocess`` prepares one raw picture or sentence exactly as its training
data was prepared (see ``preprocess.py`` for how pictures are framed and normalised).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable

from ..data import Dataset, DatasetError
from . import brackets, digits, remote, sentiment, shapes
from .common import check_options
from .preprocess import ImagePreprocessor, TextPreprocessor
from .uploads import dataset_from_upload

__all__ = ["load_dataset", "builtin_names", "describe", "dataset_from_upload", "preprocessor_from_meta",
           "builtin_options", "needs_download", "Dataset", "DatasetError"]


@dataclass(frozen=True)
class _Builtin:
    load: Callable  # load(seed=..., source=..., **options) -> Dataset
    defaults: dict  # every option with its default value
    description: str
    downloads: bool = False


_BUILTINS = {
    "digits": _Builtin(digits.load, digits.DEFAULTS, digits.DESCRIPTION),
    "shapes": _Builtin(shapes.load, shapes.DEFAULTS, shapes.DESCRIPTION.format(size=32)),
    "sentiment": _Builtin(sentiment.load, sentiment.DEFAULTS, sentiment.DESCRIPTION),
    "brackets": _Builtin(brackets.load, brackets.DEFAULTS, brackets.DESCRIPTION),
    **{name: _Builtin(lambda name=name, **kw: remote.load(name, **kw), remote.DEFAULTS,
                      remote.DESCRIPTIONS[name], downloads=True) for name in ("mnist", "fashion-mnist", "cifar10")},
}
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10",
            "cifar_10": "cifar10"}


def builtin_names() -> list[str]:
    return list(_BUILTINS)


def _resolve(name: str) -> str:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _BUILTINS:
        raise DatasetError(f"there is no built-in dataset called '{name}'; choose one of {', '.join(_BUILTINS)}")
    return key


def describe(name: str) -> str:
    """One line for the UI."""
    return _BUILTINS[_resolve(name)].description


def builtin_options(name: str) -> dict:
    """The options ``load_dataset(name, **options)`` accepts, with their defaults."""
    return dict(_BUILTINS[_resolve(name)].defaults)


def needs_download(name: str) -> bool:
    return _BUILTINS[_resolve(name)].downloads


def load_dataset(name: str, seed: int = 0, **options) -> Dataset:
    """A built-in dataset; the same name, seed and options always give the same tensors.

    ``dataset.source`` = {"builtin": name, "options": {every option, and "seed"}}."""
    key = _resolve(name)
    builtin = _BUILTINS[key]
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise DatasetError(f"the seed must be a whole number, not {seed!r}")
    seed = int(seed)
    resolved = check_options(key, options, builtin.defaults)
    source = {"builtin": key, "options": {**resolved, "seed": seed}}
    return builtin.load(seed=seed, source=source, **resolved)


def preprocessor_from_meta(meta: dict) -> Callable:
    """The ``preprocess`` of the dataset a checkpoint was trained on, from its ``Dataset.meta()``."""
    if not isinstance(meta, dict) or meta.get("input_kind") not in ("image", "tokens"):
        raise DatasetError("the checkpoint does not say how its inputs were prepared (no dataset information)")
    shape = meta.get("input_shape") or []
    if meta["input_kind"] == "tokens":
        if not meta.get("vocab") or len(shape) != 1:
            raise DatasetError("the checkpoint has no vocabulary, so sentences cannot be turned into its inputs")
        return TextPreprocessor(meta["vocab"], shape[0])
    if len(shape) != 3 or not meta.get("normalization"):
        raise DatasetError("the checkpoint lacks the picture size or normalisation its inputs were prepared with")
    return ImagePreprocessor(*shape, meta["normalization"], meta.get("image_options") or {})
