"""``sentiment``: short film reviews from a small English grammar, labelled by rule.

Labelling rules (the label is the polarity of the sentence's deciding clause):

1. Every adjective ("good", "boring", ...) and opinion verb ("loved", "hated", ...) has a
   polarity. Intensifiers ("very", "really", "extremely", ...) never change it.
2. A negation ("not", "never", "isn't", "wasn't", "didn't", "did not", "does not") flips it:
   "not bad" is positive, "not very good" and "never fun" are negative.
3. In "A but B" the deciding clause is B (the part after "but"): "good but boring" is
   negative, "boring but good" is positive.
4. In "although A, B" and "B, even though A" the deciding clause is B, the main clause.
5. A sentence with one clause is decided by that clause.

Rules 2–4 make word order matter: "the plot is good but the acting is boring" and "the plot is
boring but the acting is good" have the same words and opposite labels, and "not" next to
"good" and "bad" cannot be added up word by word, so a bag of words cannot solve it; an RNN or
attention model that reads the order can reach 100 %. Sentences are distinct and the two
labels exactly balanced.
"""
from __future__ import annotations

import random

import numpy as np

from .common import int_option, text_dataset

CLASS_NAMES = ["negative", "positive"]
DEFAULTS = {"n": 4000}  # sentences in all (train + validation)
DESCRIPTION = ("Short film reviews with negation ('not good'), intensifiers and contrast ('good but boring'): "
               "word order decides.")

SUBJECTS = ["the film", "this movie", "the acting", "the plot", "the story", "the script", "the ending",
            "the soundtrack", "the cast", "the dialogue", "the music", "this show", "the camera work", "the pacing"]
PEOPLE = ["i", "we", "my friend", "my sister", "everyone"]
POSITIVE = ["good", "great", "fun", "brilliant", "charming", "moving", "clever", "beautiful", "enjoyable",
            "wonderful", "funny", "exciting", "fresh", "solid", "gripping", "delightful"]
NEGATIVE = ["bad", "boring", "awful", "dull", "terrible", "weak", "silly", "slow", "bland", "messy",
            "predictable", "painful", "forgettable", "tedious", "clumsy", "annoying"]
INTENSIFIERS = ["very", "really", "extremely", "truly", "so", "incredibly", "quite"]
COPULAS = ["is", "was", "seems", "felt", "looks"]
NEGATED_COPULAS = {"is": ["is not", "isn't", "is never"], "was": ["was not", "wasn't", "was never"],
                   "seems": ["does not seem", "never seems"], "felt": ["did not feel", "never felt"],
                   "looks": ["does not look", "never looks"]}
# Opinion verbs: (past tense, base form after "did not"), by polarity.
LIKE = [("liked", "like"), ("loved", "love"), ("enjoyed", "enjoy"), ("adored", "adore")]
DISLIKE = [("hated", "hate"), ("disliked", "dislike"), ("regretted", "regret")]
# Share of each sentence form: (form, weight).
FORMS = [("clause", 0.30), ("but", 0.28), ("fragments", 0.10), ("although", 0.16), ("even though", 0.16)]


def _clause(rng: random.Random, polarity: int, negated: bool) -> str:
    """One clause whose meaning has ``polarity`` (+1 / -1), said with or without a negation."""
    word_polarity = -polarity if negated else polarity
    if rng.random() < 0.2:  # an opinion: "i loved the plot", "we did not enjoy it"
        past, base = rng.choice(LIKE if word_polarity > 0 else DISLIKE)
        verb = rng.choice([f"did not {base}", f"didn't {base}", f"never {past}"]) if negated else past
        if not negated and rng.random() < 0.4:
            verb = f"{rng.choice(['really', 'truly'])} {verb}"
        obj = rng.choice(["it", rng.choice(SUBJECTS)])
        return f"{rng.choice(PEOPLE)} {verb} {obj}"
    copula = rng.choice(COPULAS)
    verb = rng.choice(NEGATED_COPULAS[copula]) if negated else copula
    return f"{rng.choice(SUBJECTS)} {verb} {_adjective(rng, word_polarity, negated)}"


def _adjective(rng: random.Random, word_polarity: int, negated: bool) -> str:
    adjective = rng.choice(POSITIVE if word_polarity > 0 else NEGATIVE)
    if rng.random() < 0.4 and not (negated and rng.random() < 0.5):
        return f"{rng.choice(INTENSIFIERS)} {adjective}"
    return adjective


def _fragment(rng: random.Random, polarity: int) -> str:
    """"very good", "not funny", "never dull" — an adjective phrase with no subject."""
    negated = rng.random() < 0.35
    word_polarity = -polarity if negated else polarity
    phrase = _adjective(rng, word_polarity, negated)
    return f"{rng.choice(['not', 'never'])} {phrase}" if negated else phrase


def sentence(rng: random.Random, label: int) -> str:
    """A sentence whose label (1 positive, 0 negative) is ``label`` by the rules above."""
    decide = 1 if label == 1 else -1
    other = -decide if rng.random() < 0.75 else decide  # the clause that does not decide
    form = rng.choices([f for f, _ in FORMS], weights=[w for _, w in FORMS])[0]
    negated = lambda: rng.random() < 0.35  # noqa: E731
    if form == "clause":
        return _clause(rng, decide, negated())
    if form == "fragments":
        first, main = _fragment(rng, other), _fragment(rng, decide)
        while main.split()[-1] == first.split()[-1]:  # not "fresh but really fresh"
            main = _fragment(rng, decide)
        return f"{first} but {main}"
    first, main = _clause(rng, other, negated()), _clause(rng, decide, negated())
    if form == "but":
        return f"{first} but {main}"
    if form == "although":
        return f"although {first}, {main}"
    return f"{main}, even though {first}"


def generate(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """``n`` distinct sentences, half of each label, in a seeded order."""
    rng = random.Random(f"sentiment-{int(seed)}")
    texts, labels, seen = [], [], set()
    tries = 0
    while len(texts) < n:
        tries += 1
        if tries > 50 * n:
            raise RuntimeError("the sentiment grammar ran out of distinct sentences")
        label = len(texts) % 2
        text = sentence(rng, label)
        if text not in seen:
            seen.add(text)
            texts.append(text), labels.append(label)
    order = list(range(n))
    rng.shuffle(order)
    return [texts[i] for i in order], np.asarray(labels, dtype=np.int64)[order]


def load(seed: int, n: int, source: dict):
    n = int_option("n", n, 20, 100_000)
    texts, labels = generate(n, seed)
    return text_dataset("sentiment", texts, labels, CLASS_NAMES, seed=seed, source=source, description=DESCRIPTION)
