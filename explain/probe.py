"""What the live training view shows, as plain arrays: a model and one probe input in, numbers out.

The Train page picks one fixed example (a validation picture, or a sentence) and, whenever a
run saves a new checkpoint, asks ``probe`` what that checkpoint makes of it:

- CNN: the first conv layer's filters (O, I, k, k), the probe's feature maps before and after
  the activation (``conv.0.out``, ``conv.0.act``, each (O, H, W)) and the class probabilities.
- RNN: the prediction after each prefix of the sentence (how the opinion forms word by word)
  and the top layer's hidden state at every word (``rnn.hidden``, (T, H)).
- Transformer: the last block's attention pattern (``blocks.{last}.attn.pattern``), averaged
  over heads and per head, with the tokens it is drawn against ([CLS] first when used), plus
  the prefix predictions for sentences.

``validation_predictions`` gives the predictions a confusion matrix and a grid of mistakes
need, computed in batches under ``no_grad``. What other views share (probabilities, class
names, padding, words) lives in ``explain.predictions`` and ``explain.tokens``. Nothing here
trains, plots or imports Streamlit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .predictions import class_names_of, prefix_probabilities, softmax
from .tokens import attention_labels, pad_id_of, sentence_of, strip_padding, words_of

NICE_PROBES = (  # sentences that show word order mattering, used when every word is known
    "the plot is boring but the acting is good",
    "the film was not bad",
    "although the story is slow , the ending is wonderful",
)


@dataclass
class ProbeView:
    """What one checkpoint makes of the probe; fields that do not apply to the family are None."""

    family: str  # cnn | rnn | transformer
    class_names: list[str]
    probabilities: np.ndarray  # (K,) for the whole probe
    filters: np.ndarray | None = None  # cnn: (O, I, k, k) first conv layer's weights
    feature_maps: np.ndarray | None = None  # cnn: (O, H, W) conv.0.out
    activations: np.ndarray | None = None  # cnn: (O, H, W) conv.0.act (None without an activation)
    tokens: list[str] = field(default_factory=list)  # sentences: the probe's words as the model sees them
    prefix_probabilities: np.ndarray | None = None  # sentences: (T, K), after words 1..t
    hidden: np.ndarray | None = None  # rnn: (T, H) top layer's hidden state per word
    attention: np.ndarray | None = None  # transformer: (T', T') last block, mean over heads
    attention_heads: np.ndarray | None = None  # transformer: (heads, T', T')
    attention_tokens: list[str] = field(default_factory=list)  # transformer: labels of T' ([CLS], words / patches)

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))


def default_probe_sentence(vocab: list[str] | None, x_val: torch.Tensor | None = None) -> str:
    """A sentence worth watching: a contrast like '... boring but ... good' when the vocabulary
    knows every word of one, else the first validation sentence."""
    known = set(vocab or [])
    for sentence in NICE_PROBES:
        if known and all(word in known for word in sentence.split()):
            return sentence
    if x_val is not None and len(x_val):
        return sentence_of(x_val[0], vocab)
    return ""


@torch.no_grad()
def probe(model, x: torch.Tensor, vocab: list[str] | None = None) -> ProbeView:
    """What ``model`` (eval mode, CPU) makes of one input ``x``: (C, H, W) or (T,) token ids."""
    model.eval()
    spec = model.spec
    names = class_names_of(model)
    if spec.input.kind == "tokens":
        x = strip_padding(x, pad_id_of(model))
    batch = x.unsqueeze(0)  # (1, ...)
    hooks = set(model.hook_names())
    if spec.kind == "cnn":
        wanted = [n for n in ("conv.0.out", "conv.0.act") if n in hooks]
        logits, cache = model.run_with_cache(batch, names=wanted)
        return ProbeView(
            "cnn", names, softmax(logits)[0],
            filters=model.conv[0].conv.weight.detach().cpu().float().numpy(),  # a CNN has at least one conv
            feature_maps=cache["conv.0.out"][0].float().numpy() if "conv.0.out" in cache else None,
            activations=cache["conv.0.act"][0].float().numpy() if "conv.0.act" in cache else None)
    tokens = words_of(x, vocab) if spec.input.kind == "tokens" else []
    prefixes = prefix_probabilities(model, x) if spec.input.kind == "tokens" else None
    if spec.kind == "rnn":
        logits, cache = model.run_with_cache(batch, names=["rnn.hidden"])
        return ProbeView("rnn", names, softmax(logits)[0], tokens=tokens, prefix_probabilities=prefixes,
                         hidden=cache["rnn.hidden"][0].float().numpy())
    last = f"blocks.{spec.transformer.num_layers - 1}.attn.pattern"
    logits, cache = model.run_with_cache(batch, names=[last])
    heads = cache[last][0].float().numpy()  # (heads, T', T')
    return ProbeView("transformer", names, softmax(logits)[0], tokens=tokens, prefix_probabilities=prefixes,
                     attention=heads.mean(axis=0), attention_heads=heads,
                     attention_tokens=attention_labels(spec, tokens, heads.shape[-1]))


@torch.no_grad()
def validation_predictions(model, x: torch.Tensor, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class (N,), probabilities (N, K)) for every example, in batches."""
    model.eval()
    parts = [softmax(model(x[start:start + batch_size])) for start in range(0, len(x), batch_size)]
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, model.spec.num_classes), dtype=np.float32)
    probabilities = np.concatenate(parts, axis=0)
    return probabilities.argmax(axis=1).astype(np.int64), probabilities


def misclassified(true, predicted, probabilities=None, limit: int | None = None) -> np.ndarray:
    """Indices of the wrong predictions, most confidently wrong first when probabilities are given."""
    true, predicted = np.asarray(true), np.asarray(predicted)
    wrong = np.flatnonzero(true != predicted)
    if probabilities is not None and len(wrong):
        confidence = np.asarray(probabilities)[wrong, predicted[wrong]]
        wrong = wrong[np.argsort(-confidence, kind="stable")]
    return wrong[:limit] if limit is not None else wrong

