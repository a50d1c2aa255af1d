"""A word-level tokenizer: the vocabulary a text model is trained with, saved with its checkpoint.

Text is lower-cased and split into words and punctuation: "Not bad, really!" reads as
``not | bad | , | really | !``. A word keeps an inner apostrophe ("don't", "isn't"), and every
other character that is not a letter, digit or space is a token of its own, so a bracket
sequence "(()]" reads as ``( | ( | ) | ]``. Id 0 is ``<pad>`` (fills a sentence up to the model's
length) and id 1 is ``<unk>`` (a word the model never saw in training).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Iterable

import torch

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
# A word: letters/digits with inner apostrophes ("don't"); anything else that is not a space is
# one token by itself (punctuation, brackets, emoji).
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|\S")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


def split_words(text: str) -> list[str]:
    """The words of ``text`` as the tokenizer sees them, before the vocabulary is consulted."""
    text = unicodedata.normalize("NFKC", str(text)).translate(_APOSTROPHES).lower()
    return _TOKEN.findall(text)


class Tokenizer:
    """Word <-> id. ``Tokenizer(vocab)`` rebuilds one from a stored list (e.g. a checkpoint's)."""

    def __init__(self, vocab: Iterable[str]):
        vocab = [str(word) for word in vocab]
        if vocab[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary must start with '{PAD}' (id 0) and '{UNK}' (id 1)")
        if len(set(vocab)) != len(vocab):
            raise ValueError("a vocabulary must not list a word twice")
        self._vocab = vocab
        self._index = {word: i for i, word in enumerate(vocab)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1, max_size: int = 20_000) -> "Tokenizer":
        """The vocabulary of ``texts``: most frequent words first (ties alphabetical), at most
        ``max_size`` entries including ``<pad>`` and ``<unk>``; rarer words than ``min_count``
        become ``<unk>``."""
        if max_size < 3:
            raise ValueError("max_size must leave room for at least one word besides <pad> and <unk>")
        counts = Counter(word for text in texts for word in split_words(text))
        counts.pop(PAD, None), counts.pop(UNK, None)
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls([PAD, UNK] + words[: max_size - 2])

    # ---- lookups ----------------------------------------------------------------------
    @property
    def vocab(self) -> list[str]:
        """id -> word; a copy, safe to store."""
        return list(self._vocab)

    def __len__(self) -> int:
        return len(self._vocab)

    def __contains__(self, word: str) -> bool:
        return word in self._index

    def __eq__(self, other) -> bool:
        return isinstance(other, Tokenizer) and self._vocab == other._vocab

    def __repr__(self) -> str:
        return f"Tokenizer({len(self)} words)"

    def id_of(self, word: str) -> int:
        return self._index.get(word, UNK_ID)

    # ---- text -> ids ------------------------------------------------------------------
    def tokens(self, text: str, max_len: int | None = None) -> list[str]:
        """The words as the model sees them: unknown words shown as ``<unk>``, cut at ``max_len``."""
        words = split_words(text)[:max_len]
        return [w if w in self._index else UNK for w in words]

    def encode(self, text: str, max_len: int) -> list[int]:
        """Exactly ``max_len`` ids: the words' ids, cut or padded with 0 (``<pad>``) at the end."""
        ids = [self._index.get(w, UNK_ID) for w in split_words(text)[:max_len]]
        return ids + [PAD_ID] * (max_len - len(ids))

    def encode_batch(self, texts: Iterable[str], max_len: int) -> torch.Tensor:
        """(N, max_len) int64 ids."""
        rows = [self.encode(text, max_len) for text in texts]
        return torch.tensor(rows, dtype=torch.int64).reshape(len(rows), max_len)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """ids -> words, padding dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i != PAD_ID:
                out.append(self._vocab[i] if 0 <= i < len(self._vocab) else UNK)
        return out

    def length(self, text: str) -> int:
        """How many tokens ``text`` has before cutting or padding."""
        return len(split_words(text))
