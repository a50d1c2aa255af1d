"""Words built from names: the article before a model, layer or class name, and what a model's
weights are (learned, or still the random ones it started from).

    with_article("LSTM")         # 'an LSTM'
    with_article("Transformer")  # 'a Transformer'
    with_article("8")            # 'an 8'

"a" or "an" goes by the sound of the name's start, not its letter: an acronym is read letter by
letter ("an RNN", "a GRU"), a number as a number ("an 8", "an 11", "a 1"), a word as a word
("an act layer", "a unit", "an hour").
"""
from __future__ import annotations

import re

VOWEL_SOUND_LETTERS = set("AEFHILMNORSX")  # letters whose names start with a vowel sound: "an R"
CONSONANT_SOUND_STARTS = ("uni", "use", "usu", "uti", "eu", "one", "once")  # "a unit", "a one-hot"
VOWEL_SOUND_STARTS = ("hour", "honest", "honou", "heir")  # a silent h: "an hour"


def article(name: str) -> str:
    """'a' or 'an' for ``name``."""
    word = str(name).strip().lstrip("'\"(")
    if not word:
        return "a"
    number = re.match(r"\d[\d,]*", word)
    if number:
        digits = number.group().replace(",", "")
        # 8, 80-89, 800...; 11 and 18 (and 11,000, 18,000, ...) are read "eleven", "eighteen"
        starts_eleven = len(digits) % 3 == 2 and digits[:2] in ("11", "18")
        return "an" if digits[0] == "8" or starts_eleven else "a"
    first = re.match(r"[A-Za-z]+", word)
    if first is None:
        return "a"
    letters = first.group()
    if len(letters) > 1 and letters.isupper():  # an acronym, read letter by letter: an LSTM, a CNN
        return "an" if letters[0] in VOWEL_SOUND_LETTERS else "a"
    lower = letters.lower()
    if lower.startswith(VOWEL_SOUND_STARTS):
        return "an"
    if lower.startswith(CONSONANT_SOUND_STARTS):
        return "a"
    if len(letters) == 1:  # a single letter is said by its name: "an x", "a b"
        return "an" if letters.upper() in VOWEL_SOUND_LETTERS or letters.upper() in "AEIOU" else "a"
    return "an" if lower[0] in "aeiou" else "a"


def with_article(name: str) -> str:
    """'an LSTM', 'a CNN', 'an 8': ``name`` after its article."""
    return f"{article(name)} {name}"


EARLY = 0.1  # a snapshot before this share of its run's steps is still close to its random start


def weights_phrase(meta, pretrained: bool = False, total_steps: int | None = None) -> str:
    """What a model's weights are, said truly: "the weights it learned" only once it has trained.

    ``meta`` is the model's ModelMeta (its data, run and step); ``total_steps`` the planned steps
    of the run a snapshot comes from, when known (the Train page's live view)."""
    if pretrained:
        return "the weights it learned in pretraining"
    step, dataset = meta.step, meta.dataset
    if not dataset and not step:
        return "its random starting weights: it has not been trained, so they show no pattern yet"
    if not step:
        return "its random starting weights (step 0: nothing learned yet)"
    if total_steps and step < EARLY * total_steps:
        return f"the weights after {step:,} of {total_steps:,} steps (still close to the random ones it started from)"
    if total_steps and step < total_steps:
        return f"the weights it has learned in {step:,} of {total_steps:,} steps"
    steps = "1 step" if step == 1 else f"{step:,} steps"
    return f"the weights it learned in {steps}" + (f" on {dataset}" if dataset else "")
