"""Attributions of a sentence: one score per word, by every method of ``TEXT_METHODS``.

Layer Integrated Gradients and gradient × embedding (Captum's ``LayerGradientXActivation``) work
on the word embeddings (token ids have no gradient). Occlusion
is done here by hand: Captum's replaces values arithmetically, which means nothing for integer
token ids, so each word is swapped for the baseline's id, ``perturbations_per_eval`` sentences
a pass.
"""
from __future__ import annotations

import torch
from torch import nn

from explain.predictions import class_names_of

from .methods import TEXT_METHODS, Attribution, label_of


def token_attribution(model, ids, target, method, settings, baseline) -> Attribution:
    """One method on checked token ids (T,) against ``baseline`` ids (T,), both on the model's
    device; the caller holds the model (``explain.model_guard``)."""
    entry = TEXT_METHODS[method]
    batch, references = ids.unsqueeze(0), baseline.unsqueeze(0)  # (1, T) each
    note = entry.note.format(cls=class_names_of(model)[target], settings=settings)
    label = label_of(model, method, settings)
    with torch.no_grad():
        score = model(batch)[0, target]
    if entry.captum_class is None:  # occlusion, word by word
        length = len(ids)
        positions = torch.arange(length, device=ids.device)
        occluded = batch.repeat(length, 1)  # (T, T): row i is the sentence with word i swapped
        occluded[positions, positions] = baseline
        with torch.no_grad():
            step = max(1, settings.perturbations_per_eval)
            scores = torch.cat([model(occluded[start:start + step])[:, target] for start in range(0, length, step)])
        return Attribution(method, label, target, (score - scores).detach().float().cpu().numpy(), note=note)
    embedding = model.embed.tokens
    explainer = entry.captum_class(model, embedding)
    if method == "gradient_x_activation":
        values = explainer.attribute(batch, target=target)  # (1, T, E): gradient × the words' vectors
        return Attribution(method, label, target, values.sum(dim=-1)[0].detach().float().cpu().numpy(), note=note)
    values = explainer.attribute(batch, baselines=references, target=target, n_steps=settings.n_steps,
                                 internal_batch_size=settings.internal_batch_size)  # (1, T, E)
    scores = values.sum(dim=-1)[0]  # (T,): each word's share, summed over its embedding vector
    # Captum's own delta compares with the model run on the baseline ids, whose padding mask
    # hides every word; the path it integrates keeps the sentence's mask and changes only the
    # vectors. So the reference is the model on the real ids with the baseline's vectors.
    with torch.no_grad():
        start = _with_embeddings(model, embedding, batch, references)[0, target]
    total, expected_total = float(scores.sum()), float(score - start)
    return Attribution(method, label, target, scores.detach().float().cpu().numpy(), total - expected_total,
                       total, expected_total, note)


def _with_embeddings(model, embedding: nn.Module, ids: torch.Tensor, replacement_ids: torch.Tensor) -> torch.Tensor:
    """The model's logits on ``ids`` with the embedding's output swapped for that of ``replacement_ids``."""
    swapped = embedding(replacement_ids)  # (B, T, E)
    handle = embedding.register_forward_hook(lambda module, inputs, output: swapped)
    try:
        return model(ids)
    finally:
        handle.remove()
