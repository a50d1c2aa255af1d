"""Token ids and what they stand for: padding, the words a sentence's ids spell, and the labels
of a sequence's positions ([CLS] first when a transformer pools with one, or image patches).

Shared by every view of a sentence (the Inspect pages, the Train page's probe, attributions);
nothing here runs a model.
"""
from __future__ import annotations

import torch

from training.tokenizer import PAD_ID  # Glassbox's own tokenizer pads with id 0

from .counting import numbered

CLS_TOKEN = "[CLS]"


def pad_id_of(model) -> int:
    """The id a model pads with: 0 for Glassbox's own models, the tokenizer's for a pretrained one."""
    return int(model.pad_id)


def strip_padding(ids: torch.Tensor, pad_id: int = PAD_ID) -> torch.Tensor:
    """(T,) token ids without the ``pad_id`` ids at the end; at least one id is kept."""
    ids = torch.as_tensor(ids, dtype=torch.int64).flatten()
    real = torch.nonzero(ids != pad_id).flatten()
    end = int(real[-1]) + 1 if len(real) else 1
    return ids[:end]


def words_of(ids, vocab: list[str] | None) -> list[str]:
    """Token ids -> words (<pad> dropped); ids are shown as numbers when there is no vocabulary."""
    words = []
    for i in (int(v) for v in torch.as_tensor(ids).flatten()):
        if i == PAD_ID:
            continue
        words.append(vocab[i] if vocab is not None and 0 <= i < len(vocab) else str(i))
    return words


def sentence_of(ids, vocab: list[str] | None) -> str:
    return " ".join(words_of(ids, vocab))


def attention_labels(spec, tokens: list[str], length: int) -> list[str]:
    """The labels of the attention pattern's rows and columns: [CLS] first when the model
    pools with one, then the words (or the image's patches, numbered row by row)."""
    cls = [CLS_TOKEN] if spec.transformer.pooling == "cls" else []
    rest = list(tokens) if spec.input.kind == "tokens" else [numbered("patch", i) for i in range(length - len(cls))]
    return (cls + rest)[:length]
