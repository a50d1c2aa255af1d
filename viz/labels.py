"""Text that reaches a figure: user text made inert, and numbers counted from 1.

Plotly draws a subset of HTML in every text it shows (titles, tick labels, legends, hover
labels, annotations, bar texts): ``<b>`` makes bold, ``<a href>`` a link, ``<br>`` a new line,
and a ``%{...}`` inside a hover template is filled in. Text from a user (a sentence's words,
class names, file names, run names) therefore enters a figure only through ``plain`` (or
``unique_labels``, for words on an axis), at the top of the viz function that receives it; the
markup a figure adds itself (``<br>``, ``<sup>``) is added after.

Numbers a student reads count from 1: ``counted``, ``numbered`` and ``FIRST`` come from
``explain.counting``, shared with the formulas ``explain`` writes.
"""
from __future__ import annotations

from collections.abc import Sequence

from explain.counting import FIRST, counted, numbered, one_to, stage_label

__all__ = ["FIRST", "counted", "numbered", "one_to", "stage_label", "plain", "plain_lines", "glyphs",
           "unique_labels"]

_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "%": "&#37;"})
# Plotly decodes &amp; &lt; &gt; and numeric entities (&#37;) when it draws text, and nothing
# else (not &quot;), so these four are all it takes: the text is drawn exactly as typed.
_ZERO_WIDTH_SPACE = "\u200b"


def plain(text) -> str:
    """Any text (or value: ``str()`` of it) to be drawn literally in a figure, never as markup:
    "<b>x</b>" -> "&lt;b&gt;x&lt;/b&gt;", and "%" -> "&#37;" so no template field is filled in."""
    return str(text).translate(_ENTITIES)


def plain_lines(text) -> str:
    """A title given as several lines (a tuple or list of texts) becomes one text with a line
    break between them, each line made plain; a single text is just made plain."""
    if isinstance(text, (tuple, list)):
        return "<br>".join(plain(line) for line in text)
    return plain(text)


def glyphs(text) -> str:
    """Text for a 3-D scene's point labels: its text engine reads <b>, <i>, <sub>, <sup> and <br>
    but decodes no entities, so there a tag is broken by an invisible character after "<"; the
    label looks exactly as typed."""
    return str(text).replace("<", "<" + _ZERO_WIDTH_SPACE)


def unique_labels(tokens: Sequence[str]) -> list[str]:
    """Words for a category axis, made plain; repeated words get their position, counted from 1,
    appended ("the", "cat", "the (3)") because Plotly merges equal category labels."""
    words = [plain(token) for token in tokens]
    seen: set[str] = set()
    labels = []
    for position, word in enumerate(words):
        labels.append(f"{word} ({counted(position)})" if word in seen else word)
        seen.add(word)
    if len(set(labels)) != len(labels):
        labels = [f"{word} ({counted(position)})" for position, word in enumerate(words)]
    return labels
