"""Axis labels for tokens: Plotly merges equal category labels, so a word that appears twice
in a sentence must be told apart before it labels an axis."""
from __future__ import annotations

from collections.abc import Sequence


def unique_labels(tokens: Sequence[str]) -> list[str]:
    """Repeated words get their position appended ("the", "cat", "the (2)")."""
    seen: dict[str, int] = {}
    labels = []
    for position, token in enumerate(tokens):
        labels.append(f"{token} ({position})" if token in seen else str(token))
        seen[token] = position
    if len(set(labels)) != len(labels):
        labels = [f"{token} ({position})" for position, token in enumerate(tokens)]
    return labels
