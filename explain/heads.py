"""Which of a transformer's heads draws a clear pattern on one input, and what that pattern is in
words: the Attention page opens the most concentrated head first and says what it does.

Arrays in (a block's or every block's attention weights, rows summing to 1), numbers and plain
words out; indices are 0-based, and the words a student reads count from 1. Nothing here draws.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import entr

SINK_SHARE = 0.5  # a head giving one token (or every token itself) over half its attention draws no pattern


def row_entropies(patterns: np.ndarray) -> np.ndarray:
    """(..., T, T) weights -> (...) each pattern's mean row entropy in nats: 0 when every token
    looks at exactly one token, log T when it spreads evenly over all of them."""
    weights = np.asarray(patterns)
    if weights.ndim > 2:  # a pattern at a time: a 12 × 12-head model on 197 tokens is 45 MB per temporary array
        return np.stack([row_entropies(part) for part in weights])
    return entr(weights.astype(np.float64)).sum(axis=-1).mean(axis=-1)  # entr(p) = -p log p, and 0 at p = 0


def most_concentrated_head(patterns: np.ndarray) -> tuple[int, int]:
    """(block, head), 0-based, of the (L, heads, T, T) patterns' head with the lowest mean row
    entropy: each token looks mostly at one other token, which draws a clear pattern.

    Heads that pour more than SINK_SHARE of all their attention onto one token (every row a
    stripe to [CLS] or [SEP], common in BERT-style models) or onto each token itself (the
    diagonal) are passed over while any other head is left: their rows are concentrated, but the
    picture says only "everyone looks there" or "each looks at itself"."""
    patterns = np.asarray(patterns)
    entropy = row_entropies(patterns)  # (L, heads)
    sink = patterns.mean(axis=-2).max(axis=-1) > SINK_SHARE  # (L, heads) the largest column's share
    itself = np.diagonal(patterns, axis1=-2, axis2=-1).mean(axis=-1) > SINK_SHARE  # (L, heads)
    plain = sink | itself
    ranked = np.where(plain, np.inf, entropy) if not plain.all() else entropy
    layer, head = np.unravel_index(int(np.argmin(ranked)), ranked.shape)
    return int(layer), int(head)


HABIT_SHARE = 0.6  # a habit is named when at least this share of the tokens follow it


def head_habit(pattern: np.ndarray, labels: Sequence[str]) -> str:
    """What one (T, T) head does on this input, in words: most tokens looking at the token before
    them, after them, at themselves, or at one token; else how concentrated its rows are."""
    pattern = np.asarray(pattern, dtype=np.float64)
    length = pattern.shape[0]
    if pattern.shape != (length, length) or len(labels) != length:
        raise ValueError(f"need a (T, T) pattern and T labels, got {pattern.shape} and {len(labels)}")
    strongest = pattern.argmax(axis=1)  # (T,) where each token looks most
    positions = np.arange(length)
    shares = {"the token just before them": np.mean(strongest[1:] == positions[1:] - 1) if length > 1 else 0.0,
              "the token just after them": np.mean(strongest[:-1] == positions[:-1] + 1) if length > 1 else 0.0,
              "themselves": np.mean(strongest == positions)}
    column = int(pattern.mean(axis=0).argmax())
    if pattern[:, column].mean() > SINK_SHARE:
        return f"most of the attention goes to \u201c{labels[column]}\u201d ({pattern[:, column].mean():.0%} of it)"
    habit, share = max(shares.items(), key=lambda item: item[1])
    if share >= HABIT_SHARE:
        return f"{share:.0%} of the tokens look mostly at {habit}"
    peak = float(pattern.max(axis=1).mean())
    if peak >= 0.5:
        return f"each token looks mostly at one token (its largest weight is {peak:.0%} on average), not the same for all"
    return f"attention is spread over many tokens (the largest weight in a row is {peak:.0%} on average)"
