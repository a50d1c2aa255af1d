"""What a model predicts, as CPU numpy: class probabilities from logits, the names of the
classes, and the prediction after each prefix of a sentence (how an opinion forms word by word).

Shared by the Inspect views, the Train page's probe and the Attributions page.
"""
from __future__ import annotations

import numpy as np
import torch

from .tokens import pad_id_of, strip_padding

PREFIX_BATCH = 64  # prefixes scored at once (a sentence has at most a few dozen words)


def softmax(logits: torch.Tensor) -> np.ndarray:
    """Class probabilities over the last axis, as float32 numpy on the CPU."""
    return torch.softmax(logits.detach().float(), dim=-1).cpu().numpy()


def class_names_of(model) -> list[str]:
    spec = model.spec
    names = list(spec.class_names or [])
    return names if len(names) == spec.num_classes else [str(i) for i in range(spec.num_classes)]


@torch.no_grad()
def prefix_probabilities(model, ids: torch.Tensor) -> np.ndarray:
    """(T, K): the class probabilities after reading words 1..t, for every t.

    Each prefix is the sentence cut after t words and padded on the right, exactly as a
    sentence of t words reaches the model.
    """
    pad = pad_id_of(model)
    ids = strip_padding(ids, pad)
    length = len(ids)
    if model.spec.num_classes == 0:  # a pretrained encoder without a head: nothing to predict
        return np.zeros((length, 0), dtype=np.float32)
    rows = torch.full((length, length), pad, dtype=torch.int64)  # (T prefixes, T positions), the rest <pad>
    for t in range(length):
        rows[t, : t + 1] = ids[: t + 1]
    out = [softmax(model(rows[start:start + PREFIX_BATCH])) for start in range(0, length, PREFIX_BATCH)]
    return np.concatenate(out, axis=0)
