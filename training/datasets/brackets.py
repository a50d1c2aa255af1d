"""``brackets``: is a sequence of brackets balanced? A label that depends on long-range structure.

A sequence is balanced when every opening bracket is closed later by the matching closing
bracket, properly nested: "([])" and "()[]" are balanced; "([)]", "())(" and "(]" are not. Half
the sequences are balanced (even lengths 4..``max_length``). The other half are made hard: most
are balanced ones with two brackets swapped, rotated, or one bracket's type changed, so they
have the right counts of each bracket and only the order is wrong; a few have a bracket added
or removed. Each bracket is one token, so the hidden state has to keep a count (and a stack
of types) across the whole sequence.
"""
from __future__ import annotations

import random

import numpy as np

from ..data import DatasetError
from .common import int_option, text_dataset

CLASS_NAMES = ["unbalanced", "balanced"]
DEFAULTS = {
    "n": 4000,  # sequences in all (train + validation)
    "max_length": 24,  # longest sequence, in brackets
    "pairs": "()[]",  # the bracket pairs used: "()" or "()[]" (or "()[]{}")
}
DESCRIPTION = "Bracket sequences like '([)]' vs '([])': balanced or not? Needs memory of the whole sequence."


def is_balanced(text: str, pairs: str = "()[]{}") -> bool:
    closer = {pairs[i]: pairs[i + 1] for i in range(0, len(pairs), 2)}
    stack = []
    for ch in text:
        if ch in closer:
            stack.append(closer[ch])
        elif not stack or stack.pop() != ch:
            return False
    return not stack


def _balanced(rng: random.Random, length: int, pairs: str) -> str:
    opens = pairs[0::2]
    match = dict(zip(opens, pairs[1::2]))
    out, stack = [], []
    for position in range(length):
        left = length - position
        if not stack or (len(stack) < left and rng.random() < 0.5):
            stack.append(rng.choice(opens))
            out.append(stack[-1])
        else:
            out.append(match[stack.pop()])
    return "".join(out)


def _unbalanced(rng: random.Random, length: int, pairs: str, max_length: int) -> str:
    for _ in range(100):
        text = list(_balanced(rng, length, pairs))
        trick = rng.random()
        if trick < 0.4:  # swap two brackets: same counts, wrong order
            i, j = rng.sample(range(length), 2)
            text[i], text[j] = text[j], text[i]
        elif trick < 0.6:  # rotate: ")(" at the seam
            k = rng.randrange(1, length)
            text = text[k:] + text[:k]
        elif trick < 0.85 and len(pairs) > 2:  # change one closing bracket's type: "(]"
            closers = [i for i, ch in enumerate(text) if ch in pairs[1::2]]
            i = rng.choice(closers)
            text[i] = rng.choice([c for c in pairs[1::2] if c != text[i]])
        elif length < max_length and rng.random() < 0.5:  # one bracket too many
            text.insert(rng.randrange(length + 1), rng.choice(pairs))
        else:  # one bracket missing
            del text[rng.randrange(length)]
        text = "".join(text)
        if not is_balanced(text, pairs):
            return text
    raise RuntimeError("could not make an unbalanced sequence")


def generate(n: int, max_length: int, pairs: str, seed: int) -> tuple[list[str], np.ndarray]:
    rng = random.Random(f"brackets-{int(seed)}")
    lengths = list(range(4, max_length + 1, 2))
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        length = rng.choice(lengths)
        texts.append(_balanced(rng, length, pairs) if label else _unbalanced(rng, length, pairs, max_length))
        labels.append(label)
    order = list(range(n))
    rng.shuffle(order)
    return [texts[i] for i in order], np.asarray(labels, dtype=np.int64)[order]


def load(seed: int, n: int, max_length: int, pairs: str, source: dict):
    n = int_option("n", n, 20, 100_000)
    max_length = int_option("max_length", max_length, 4, 64)
    if pairs not in ("()", "()[]", "()[]{}"):
        raise DatasetError(f"'pairs' must be '()', '()[]' or '()[]{{}}', not {pairs!r}")
    texts, labels = generate(n, max_length, pairs, seed)
    # The tokenizer makes each bracket a token of its own.
    return text_dataset("brackets", texts, labels, CLASS_NAMES, seed=seed, source=source,
                        description=DESCRIPTION, max_len_cap=max_length)
