"""explain.heads: the mean row entropy equals scipy's entropy row by row, the head opened first is
the sharpest one that is neither a sink nor a look-at-yourself head, and a head's habit is named
in words only when most tokens follow it."""
import math

import numpy as np
import pytest

from explain.heads import head_habit, most_concentrated_head, row_entropies

LABELS = ["[CLS]", "the", "film", "was", "not", "good"]
def test_row_entropies_are_the_mean_shannon_entropy_of_the_rows():
    from scipy.stats import entropy

    rng = np.random.default_rng(0)
    patterns = rng.dirichlet(np.ones(5) * 0.3, size=(2, 3, 5))  # (L, heads, T, T), some weights near 0
    patterns[0, 0] = np.eye(5)  # exact zeros count as 0 · log 0 = 0
    expected = np.array([[np.mean([entropy(row) for row in patterns[b, h]]) for h in range(3)] for b in range(2)])
    np.testing.assert_allclose(row_entropies(patterns), expected, atol=1e-12)
    assert row_entropies(np.full((4, 4), 0.25)) == pytest.approx(math.log(4))


def test_the_most_concentrated_head_passes_over_sinks_and_heads_that_look_at_themselves():
    length = 6
    spread = np.full((length, length), 1 / length)
    previous = np.eye(length)[np.maximum(np.arange(length) - 1, 0)]  # each token looks at the one before
    sink = np.zeros((length, length))
    sink[:, 0] = 1.0  # everyone looks at [CLS]: entropy 0, but says nothing
    itself = np.eye(length)  # entropy 0 too
    blurred = 0.8 * previous + 0.2 * spread
    patterns = np.stack([np.stack([spread, sink, blurred]), np.stack([itself, previous * 0.9 + 0.1 * spread, spread])])
    assert most_concentrated_head(patterns) == (1, 1)  # the sharper of the two previous-token heads
    assert most_concentrated_head(np.stack([np.stack([sink, itself, spread])])) == (0, 2)
    assert most_concentrated_head(np.stack([np.stack([sink, sink])])) == (0, 0)  # all sinks: the first of them



def test_a_heads_habit_is_named_when_most_tokens_follow_it():
    length = len(LABELS)
    before = np.eye(length)[np.maximum(np.arange(length) - 1, 0)]
    assert head_habit(before, LABELS) == "100% of the tokens look mostly at the token just before them"
    after = np.eye(length)[np.minimum(np.arange(length) + 1, length - 1)]
    assert head_habit(after, LABELS) == "100% of the tokens look mostly at the token just after them"
    assert head_habit(np.eye(length), LABELS) == "100% of the tokens look mostly at themselves"
    sink = np.full((length, length), 0.1 / (length - 1))
    sink[:, 4] = 0.9
    assert head_habit(sink, LABELS) == "most of the attention goes to \u201cnot\u201d (90% of it)"
    scattered = np.eye(length)[[2, 5, 0, 1, 3, 2]]  # sharp rows, no common habit
    assert head_habit(scattered, LABELS).startswith("each token looks mostly at one token (its largest weight is 100%")
    assert head_habit(np.full((length, length), 1 / length), LABELS) == \
        "attention is spread over many tokens (the largest weight in a row is 17% on average)"
    with pytest.raises(ValueError, match="T labels"):
        head_habit(before, LABELS[:3])
