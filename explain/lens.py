"""Each block's answer: at which block a transformer's decision forms.

For a classifier (our transformers, BERT-style pretrained classifiers) the model's own head is
applied to every block's output, read as the head reads the last one (the class token or the
pooled tokens, after the final norm; ``classify_stream``): a probability per class per block, the
last block's being the model's own answer. For a decoder (GPT-2) it is the logit lens: the final
layer norm and the unembedding applied to every block's residual stream (``next_token_logits``),
the most likely next tokens at each position and block. An RNN reads word by word instead: its
"prediction after each word" is on the Hidden states page.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from explain.ablation import switched_off
from models.hooks import turn_of

CLASSIFIER, LOGIT_LENS = "classifier", "logit lens"


@dataclass(frozen=True)
class BlockAnswers:
    probabilities: np.ndarray  # (blocks, K): the head's answer after each block; the last is the model's
    class_names: list[str]


@dataclass(frozen=True)
class LogitLens:
    top_ids: np.ndarray  # (blocks, T, k): the k likeliest next tokens at each block and position
    top_tokens: list[list[list[str]]]  # the same as the tokenizer writes them
    top_probabilities: np.ndarray  # (blocks, T, k)
    logits: np.ndarray  # (blocks, T, vocab) is too big to keep; this is the last block's (T, vocab)


def lens_kind(model) -> str | None:
    """Which kind of 'each block's answer' ``model`` offers; None when it offers none."""
    if model.spec.kind != "transformer" or not model.spec.transformer.num_layers:
        return None
    probe = torch.zeros(1, 1, model.spec.transformer.d_model)
    with torch.no_grad():
        if model.next_token_logits(probe, final=True) is not None:
            return LOGIT_LENS
        if model.spec.num_classes and model.spec.input.kind == "tokens":
            ids = torch.ones(1, 1, dtype=torch.int64)
            stream_length = 1 + int(model.spec.transformer.pooling == "cls" and not model.is_pretrained)
            if model.classify_stream(probe.expand(1, stream_length, -1), ids) is not None:
                return CLASSIFIER
        elif model.spec.num_classes and not model.is_pretrained:  # our own vision transformer
            return CLASSIFIER
    return None


def _streams(model, x: torch.Tensor, ablate, mode: str, means) -> list[torch.Tensor]:
    """Every block's output (B, T, D), in order, with the parts in ``ablate`` switched off."""
    names = [f"blocks.{i}.out" for i in range(model.spec.transformer.num_layers)]
    with switched_off(model, ablate or {}, x.shape[0], mode, means), torch.no_grad():
        _, cache = model.run_with_cache(x, names=names)
    return [cache[name] for name in names]


def block_answers(model, x: torch.Tensor, ablate: Mapping[str, Sequence[int]] | None = None, mode: str = "zero",
                  means: Mapping[str, torch.Tensor] | None = None) -> BlockAnswers:
    """The classifier's probabilities after each block, for one input ``x`` (1, ...); with
    ``ablate``, ``mode`` and ``means`` as in explain.ablation, with those parts switched off."""
    rows = []
    streams = _streams(model, x, ablate, mode, means)
    with turn_of(model), torch.no_grad():
        for stream in streams:
            logits = model.classify_stream(stream, x)
            if logits is None:
                raise ValueError(f"{model.spec.name} has no classifier that can read each block")
            rows.append(torch.softmax(logits.float(), -1)[0])
    return BlockAnswers(torch.stack(rows).numpy(), list(model.spec.class_names))


def logit_lens(model, x: torch.Tensor, top_k: int = 5, ablate: Mapping[str, Sequence[int]] | None = None,
               mode: str = "zero", means: Mapping[str, torch.Tensor] | None = None) -> LogitLens:
    """The decoder's top ``top_k`` next tokens at each block and position of one input ``x`` (1, T),
    with the parts in ``ablate`` switched off (explain.ablation)."""
    streams = _streams(model, x, ablate, mode, means)
    ids, probabilities, last = [], [], None
    with torch.no_grad():
        for i, stream in enumerate(streams):
            logits = model.next_token_logits(stream, final=i == len(streams) - 1)
            if logits is None:
                raise ValueError(f"{model.spec.name} does not predict next tokens")
            top = torch.softmax(logits[0].float(), -1).topk(min(top_k, logits.shape[-1]), dim=-1)  # (T, k)
            ids.append(top.indices)
            probabilities.append(top.values)
            last = logits[0]
    top_ids = torch.stack(ids).numpy()  # (blocks, T, k)
    names = model.tokens_of(top_ids.ravel())
    if names is None:
        names = [str(i) for i in top_ids.ravel()]
    blocks, length, k = top_ids.shape
    tokens = [[names[(b * length + t) * k:(b * length + t + 1) * k] for t in range(length)] for b in range(blocks)]
    return LogitLens(top_ids, tokens, torch.stack(probabilities).numpy(), last.numpy())
