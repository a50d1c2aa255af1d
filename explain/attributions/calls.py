"""The calls the Attributions page makes: check the model, the input and the class in plain
words, then run each method with the model held and given back as found."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from explain.model_guard import model_left_as_found, seeded
from explain.tokens import pad_id_of, strip_padding

from .images import image_attribution, image_baseline
from .methods import Attribution, Settings, available_methods, label_of
from .sentences import token_attribution

NOT_EXPLAINABLE = "attributions need a model that reads pictures or sentences; this one reads sequences of numbers"
NO_CLASSIFIER = ("attributions explain the score of a class, and this model has no classifier (it turns sentences "
                 "into vectors); load one with a classification head, such as an SST-2 sentiment model")
NO_IMAGE_CLASSIFIER = ("attributions explain the score of a class, and this model has no classifier (it turns "
                       "pictures into vectors); load one with an image-classification head, such as an ImageNet "
                       "ResNet or ViT")


def predicted_class(model, x) -> int:
    x = check_input(model, x)
    with model_left_as_found(model) as device, torch.no_grad():
        return int(model(x.unsqueeze(0).to(device)).argmax(dim=-1)[0])


def attribute(model, x: torch.Tensor, target: int | None, method: str, settings: Settings | None = None,
              baselines: torch.Tensor | None = None) -> Attribution:
    """One method on one input: ``x`` is a (C, H, W) picture or (T,) token ids (trailing <pad>
    dropped). ``target`` None means the predicted class. ``baselines``: pictures, the reference
    picture (default: black in the model's normalisation, when its checkpoint has one, else
    zeros); sentences, reference ids (default: all <pad>); shaped like ``x``."""
    settings = settings or Settings()
    check_method(model, method)
    x = check_input(model, x)
    target = predicted_class(model, x) if target is None else check_target(model, target)
    if baselines is None:
        baselines = image_baseline(x, model.meta.normalization) if x.dim() == 3 else torch.full_like(x, pad_id_of(model))
    baselines = torch.as_tensor(baselines).to(x.dtype)
    if baselines.shape != x.shape:
        raise ValueError(f"the baseline has shape {tuple(baselines.shape)}, the input {tuple(x.shape)}: "
                         "they must match")
    with model_left_as_found(model) as device, seeded(settings.seed, device):
        x, baselines = x.to(device), baselines.to(device)
        if model.spec.input.kind == "tokens":
            return token_attribution(model, x, target, method, settings, baselines)
        return image_attribution(model, x, target, method, settings, baselines)


def attribute_many(model, x, target: int | None, methods: list[str], settings: Settings | None = None,
                   baselines: torch.Tensor | None = None,
                   progress: Callable[[int, int, str], None] | None = None) -> list[Attribution]:
    """``attribute`` for each method, all for the same target (predicted when None).
    ``progress(done, total, label)`` is called before each method (done = methods finished)."""
    settings = settings or Settings()
    for method in methods:
        check_method(model, method)  # a bad list fails before minutes of work, not after
    target = predicted_class(model, x) if target is None else check_target(model, target)
    results = []
    for done, method in enumerate(methods):
        if progress is not None:
            progress(done, len(methods), label_of(model, method, settings))
        results.append(attribute(model, x, target, method, settings, baselines))
    return results


# ---- checks, in plain words ----------------------------------------------------------------------

def check_method(model, method: str) -> None:
    if model.spec.num_classes < 1:
        raise ValueError(NO_IMAGE_CLASSIFIER if model.spec.input.kind == "image" else NO_CLASSIFIER)
    methods = available_methods(model)
    if not methods:
        raise ValueError(NOT_EXPLAINABLE)
    if method not in methods:
        raise ValueError(f"'{method}' is not available for this {model.spec.family()}; "
                         f"choose one of {', '.join(methods)}")


def check_input(model, x) -> torch.Tensor:
    """``x`` as the model reads it: a float (C, H, W) picture, or (T,) token ids without trailing <pad>."""
    inp = model.spec.input
    x = torch.as_tensor(x)
    if inp.kind == "image":
        expected = (inp.channels, inp.height, inp.width)
        if tuple(x.shape) != expected:
            raise ValueError(f"this model reads {inp.channels}×{inp.height}×{inp.width} pictures "
                             f"(channels × height × width), not an input of shape {tuple(x.shape)}")
        return x.detach().float()
    if inp.kind != "tokens":
        raise ValueError(NOT_EXPLAINABLE)
    if x.dim() != 1 or x.dtype.is_floating_point or x.dtype == torch.bool:
        raise ValueError(f"a sentence is a row of whole-number token ids, not a {x.dtype} tensor "
                         f"of shape {tuple(x.shape)}")
    ids = strip_padding(x, pad_id_of(model))
    if bool((ids == pad_id_of(model)).all()):
        raise ValueError("the sentence has no words to explain")
    if len(ids) > inp.max_len:
        raise ValueError(f"the sentence has {len(ids)} tokens; this model reads at most {inp.max_len}")
    if int(ids.min()) < 0 or int(ids.max()) >= inp.vocab_size:
        raise ValueError(f"token ids must be between 0 and {inp.vocab_size - 1} for this model's vocabulary")
    return ids


def check_target(model, target) -> int:
    classes = model.spec.num_classes
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise ValueError(f"the class to explain must be a class number, not {target!r}")
    if not 0 <= int(target) < classes:
        raise ValueError(f"there is no class {target}: this model's classes are numbered 0 to {classes - 1}")
    return int(target)
