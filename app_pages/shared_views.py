"""Views that many sessions compute on the same model and input, computed once per server.

A class looks at the same thing at once: the teacher's shared model, or the same preset (built
with the same seed, so with the same weights), on the same example. What the Inspect pages
compute from it (an inspection, attributions) and the figures drawn from those are then the
same for every session, so they are kept in Streamlit's server-wide caches and shared.

The key is the *content* of every argument: a model by the digest of its class, spec and
weights (worked out once per model object, found by ``models.hooks.token_of``, never ``id()``),
an array or tensor by the digest of its dtype, shape and bytes, plain values by their ``repr``.
Two sessions' copies of the same model and input therefore find the same entry, and a different
input or a model with other weights never does. An argument of any other type makes the call
uncached (computed as before) rather than guessed at.

Cached results are shared by every session that asks: nothing that receives one may change it.
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import threading
import weakref

import numpy as np
import streamlit as st
import torch
from torch import nn

from models.hooks import token_of

FITTED_KEPT = 16  # references fitted on a model's training data (small; refitting takes about a second)
COMPUTED_KEPT = 8  # inspections and attributions (a pretrained model's can hold tens of MB of activations)
FIGURES_KEPT = 128  # figures (each up to a few MB of JSON for the largest)
KEPT_S = 30 * 60  # an entry nobody asked for this long is dropped (the lesson has moved on)
MODELS_DIGESTED = 256  # model objects whose digest is remembered


class Uncacheable(TypeError):
    """An argument whose content has no digest here: the call is made without the cache."""


# ---- digests ----------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=MODELS_DIGESTED)
def _model_digest(token: int, _model: nn.Module) -> str:
    """The digest of one model object's class, spec and weights (buffers included)."""
    digest = hashlib.sha256(type(_model).__qualname__.encode())
    spec = getattr(_model, "spec", None)
    if spec is not None:
        digest.update(json.dumps(spec.to_dict(), sort_keys=True, default=str).encode())
    for name, tensor in _model.state_dict().items():
        digest.update(name.encode())
        _update_with_tensor(digest, tensor)
    return digest.hexdigest()


def model_key(model: nn.Module) -> str:
    """A key for ``model`` that any copy of it with the same class, spec and weights shares.

    Worked out once per model object (by ``token_of``): a model is not changed in place once a
    session holds it (training happens in the workers, a checkpoint loads as a new object)."""
    return _model_digest(token_of(model), model)


def _update_with_tensor(digest, tensor: torch.Tensor) -> None:
    tensor = tensor.detach().cpu().contiguous()
    digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)};".encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


def _update(digest, value) -> None:
    if value is None or isinstance(value, (bool, int, float, str, bytes, enum.Enum)):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        digest.update(f"array {array.dtype.str} {array.shape};".encode())
        digest.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
    elif isinstance(value, np.generic):
        digest.update(f"{value.dtype.str}:{value.item()!r};".encode())
    elif isinstance(value, torch.Tensor):
        _update_with_tensor(digest, value)
    elif isinstance(value, nn.Module):
        digest.update(f"model {model_key(value)};".encode())
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__}[{len(value)}](".encode())
        for item in value:
            _update(digest, item)
        digest.update(b")")
    elif isinstance(value, dict):
        digest.update(f"dict[{len(value)}](".encode())
        for key in sorted(value, key=repr):
            _update(digest, key)
            _update(digest, value[key])
        digest.update(b")")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        digest.update(f"{type(value).__qualname__}(".encode())
        for field in dataclasses.fields(value):
            digest.update(field.name.encode())
            _update(digest, getattr(value, field.name))
        digest.update(b")")
    else:
        raise Uncacheable(f"no content digest for a {type(value).__name__}")


def content_key(*args, **kwargs) -> str:
    """The digest of the arguments' content (see the module's notes); Uncacheable if one has none."""
    digest = hashlib.sha256()
    _update(digest, list(args))
    _update(digest, kwargs)
    return digest.hexdigest()


def _name(function) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def _call_key(function, args, kwargs) -> tuple[str, str]:
    """(name, content key) of a call; a model called as the function is part of the content."""
    if isinstance(function, nn.Module):
        return "model forward", content_key(function, *args, **kwargs)
    return _name(function), content_key(*args, **kwargs)


# ---- the shared caches ----------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=COMPUTED_KEPT, ttl=KEPT_S)
def _computed(name: str, key: str, _function, _args, _kwargs):
    return _function(*_args, **_kwargs)


# Apart from the inspections: a class looking at many inputs would otherwise push a model's fit out.
@st.cache_resource(show_spinner=False, max_entries=FITTED_KEPT, ttl=KEPT_S)
def _fitted(name: str, key: str, _function, _args, _kwargs):
    return _function(*_args, **_kwargs)


@st.cache_resource(show_spinner=False, max_entries=FIGURES_KEPT, ttl=KEPT_S)
def _figure(name: str, key: str, _build, _args, _kwargs):
    return _build(*_args, **_kwargs)


def computed_once(function, *args, **kwargs):
    """``function(*args, **kwargs)`` (a computation on a model and an input), once per server
    for the same content of the arguments. An exception is not kept: the next call tries again."""
    try:
        name, key = _call_key(function, args, kwargs)
    except Uncacheable:
        return function(*args, **kwargs)
    return _computed(name, key, function, args, kwargs)


def fitted_once(function, model: nn.Module, data_key: str, *args):
    """``function(model, *args)`` (a fit on a model and its training data), once per server for the
    model's content and ``data_key`` (``dataset_key`` of the data in ``args``: digesting a large
    data set at every page run would cost more than the fit). Kept apart from the inspections, so
    that many inputs do not push it out; shared: read it only."""
    return _fitted(_name(function), content_key(model, data_key), function, (model, *args), {})


def dataset_key(dataset) -> str:
    """A key for a data set: a built-in one by its source (name, options and seed always make the
    same tensors), any other by the digest of its tensors, worked out once per data set object."""
    if dataset.source:
        return f"{dataset.name} {json.dumps(dataset.source, sort_keys=True, default=str)}"
    with _DIGESTS_LOCK:
        known = _DATASET_DIGESTS.get(dataset)
    if known is not None:
        return known
    digest = content_key(dataset.name, dataset.x_train, dataset.y_train, dataset.x_val, dataset.y_val,
                         list(dataset.class_names), dataset.vocab)
    with _DIGESTS_LOCK:
        _DATASET_DIGESTS[dataset] = digest
    return digest


# Held weakly: an entry goes when its data set does (a Dataset is hashable by identity, never by id()).
_DATASET_DIGESTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_DIGESTS_LOCK = threading.Lock()


def figure_once(build, *args, **kwargs):
    """``build(*args, **kwargs)`` (a viz function: arrays in, a Plotly figure out), once per
    server for the same content of the arguments. The figure is shared: draw it, never change it."""
    try:
        name, key = _call_key(build, args, kwargs)
    except Uncacheable:
        return build(*args, **kwargs)
    return _figure(name, key, build, args, kwargs)


def clear() -> None:
    """Forget every shared inspection and figure (tests; a teacher's fresh start)."""
    _computed.clear()
    _fitted.clear()
    _figure.clear()
