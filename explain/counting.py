"""Counting as a class counts: from 1.

Code and hook names index from 0 (``conv.0``, ``patterns[layer, head]``); everything a student
reads (a figure's title, axis values and hover text, a caption, a formula's subscripts, a
message) counts rows, columns, channels, units, words, tokens, blocks and heads from 1. Every
such number goes through these helpers, so the two conventions meet in one place. ``viz.labels``
re-exports them for the figures.
"""
from __future__ import annotations

FIRST = 1  # the number a person gives the thing at index 0


def counted(index: int) -> int:
    """A 0-based index as a person counts it: 0 -> 1."""
    return int(index) + FIRST


def numbered(noun: str, index: int) -> str:
    """("row", 8) -> "row 9"."""
    return f"{noun} {counted(index)}"


def one_to(count: int) -> str:
    """The numbers there are to choose from: 12 -> "1 to 12"."""
    return f"{FIRST} to {int(count)}"


def stage_label(stage: str) -> str:
    """A stage's hook name as a class names it: "conv.0" -> "Conv 1", "blocks.2" -> "Block 3"."""
    kind, _, index = stage.rpartition(".")
    noun = {"blocks": "block", "fc": "FC"}.get(kind, kind)
    return f"{noun[:1].upper()}{noun[1:]} {counted(int(index))}"
