"""What a run is trained with: ``Hyperparameters``, their validation in plain words, the
defaults that work on a first click, and the arithmetic that follows from them (steps per
epoch, the learning rate at a step, the advice when a run diverges).

No torch here: a form, the command line or the job API can check settings cheaply.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from models.words import with_article

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine")
DEVICES = ("auto", "cpu", "cuda", "mps")
MAX_EPOCHS = 1000
MAX_PACE_S = 600  # a paced demo longer than ten minutes is no longer a demo


class HyperparameterError(ValueError):
    """Hyperparameters that cannot be trained with; ``messages`` lists every problem."""

    def __init__(self, messages: list[str]):
        self.messages = list(messages)
        super().__init__("; ".join(self.messages))


@dataclass
class Hyperparameters:
    optimizer: str = "adam"  # sgd (with momentum) | adam | adamw
    lr: float = 1e-3  # learning rate: the size of each update step
    batch_size: int = 64  # examples per update
    epochs: int = 5  # passes over the training data
    weight_decay: float = 0.0  # pulls weights towards zero (L2 for sgd/adam, decoupled for adamw)
    momentum: float = 0.9  # sgd only: how much of the previous update carries over
    schedule: str = "constant"  # constant | cosine (lr falls smoothly to 0 by the last step)
    grad_clip: float = 0.0  # largest gradient norm allowed; 0 = no clipping (RNNs like 1.0)
    seed: int = 0  # weights, batch order and dropout: the same seed gives the same run
    device: str = "auto"  # auto (CUDA, then MPS, then CPU) | cpu | cuda | mps
    amp: bool = True  # mixed precision; used on CUDA only
    pace_s: float = 0  # 0: as fast as it goes; else the run is spread over about this many seconds (a demo)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Hyperparameters":
        if not isinstance(data, dict):
            raise HyperparameterError(["hyperparameters must be a JSON object"])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise HyperparameterError([f"unknown hyperparameter(s): {', '.join(unknown)}"])
        return cls(**data)

    def validate(self) -> list[str]:
        """Every problem in plain words; [] when training can start."""
        problems = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"unknown optimizer '{self.optimizer}': choose one of {', '.join(OPTIMIZERS)}")
        if not _is_number(self.lr) or not self.lr > 0 or not math.isfinite(self.lr):
            problems.append(f"the learning rate must be a number above 0, not {self.lr}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            problems.append(f"the batch size must be a whole number of at least 1, not {self.batch_size}")
        if not _is_int(self.epochs) or not 1 <= self.epochs <= MAX_EPOCHS:
            problems.append(f"epochs must be a whole number from 1 to {MAX_EPOCHS}, not {self.epochs}")
        if not _is_number(self.weight_decay) or not 0 <= self.weight_decay < 1:
            problems.append(f"weight decay must be between 0 and 1, not {self.weight_decay}")
        if not _is_number(self.momentum) or not 0 <= self.momentum < 1:
            problems.append(f"momentum must be between 0 and 1 (1 excluded), not {self.momentum}")
        if self.schedule not in SCHEDULES:
            problems.append(f"unknown schedule '{self.schedule}': choose constant or cosine")
        if not _is_number(self.grad_clip) or self.grad_clip < 0:
            problems.append(f"gradient clipping must be 0 (off) or a positive number, not {self.grad_clip}")
        if not _is_int(self.seed) or self.seed < 0:
            problems.append(f"the seed must be a whole number of at least 0, not {self.seed}")
        if self.device not in DEVICES:
            problems.append(f"unknown device '{self.device}': choose one of {', '.join(DEVICES)}")
        if not isinstance(self.amp, bool):
            problems.append("amp must be true or false")
        if not _is_number(self.pace_s) or not 0 <= self.pace_s <= MAX_PACE_S:
            problems.append(f"the pace must be 0 (as fast as it goes) or up to {MAX_PACE_S} seconds, "
                            f"not {self.pace_s}")
        return problems

    def check(self) -> "Hyperparameters":
        problems = self.validate()
        if problems:
            raise HyperparameterError(problems)
        return self


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Each preset's own recipe: what it reaches on its data with these settings is in its description
# (models.presets) and in bench/README.md (bench/presets_learn.py measures it). Tuned on a shared
# 2-core CPU, each run within a minute. A model that is not a preset gets its family's settings.
PRESET_RECIPES = {
    # 1,438 training digits are few: small batches give more updates per epoch, and the cosine
    # decay lets the last epochs settle instead of bouncing around 94 %.
    "digits-cnn": dict(optimizer="adam", lr=2e-3, batch_size=32, epochs=15, schedule="cosine"),
    # Shapes in random colours take a few hundred updates before edges and corners emerge.
    "shapes-cnn": dict(optimizer="adam", lr=1e-3, batch_size=64, epochs=8),
    # The conv stem learns like shapes-cnn; Adam at 1e-3 without decay trains stem and blocks together.
    "shapes-vit": dict(optimizer="adam", lr=1e-3, batch_size=64, epochs=8),
    # A plain tanh RNN needs more passes than its gated cousins to carry "not" and "but" along.
    "sentiment-rnn": dict(optimizer="adam", lr=3e-3, batch_size=64, epochs=12, grad_clip=1.0),
    # Learning word order from 3,200 sentences takes ~2,000 small-batch updates.
    "sentiment-transformer": dict(optimizer="adamw", lr=2e-3, batch_size=32, epochs=20, weight_decay=0.01,
                                  schedule="cosine", grad_clip=1.0),
}


def default_hyperparameters(spec) -> Hyperparameters:
    """Settings with which a first click on Train works on the built-in data: the preset's own
    recipe (``PRESET_RECIPES``), or its family's for any other model."""
    recipe = PRESET_RECIPES.get(spec.name)
    if recipe is not None:
        return Hyperparameters(**recipe)
    if spec.kind == "cnn":
        return Hyperparameters(optimizer="adam", lr=1e-3, batch_size=64, epochs=5)
    if spec.kind == "rnn":  # recurrent nets learn faster at a higher lr, and need clipping to stay stable
        return Hyperparameters(optimizer="adam", lr=3e-3, batch_size=64, epochs=8, grad_clip=1.0)
    # Transformers: decoupled weight decay and a cosine decay are the usual, forgiving recipe;
    # smaller batches (more updates) let the small ones learn word order in ~10 epochs on a CPU.
    return Hyperparameters(optimizer="adamw", lr=2e-3, batch_size=32, epochs=10, weight_decay=0.01,
                           schedule="cosine", grad_clip=1.0)


def suggested_for(spec) -> str:
    """Whose suggestion ``default_hyperparameters(spec)`` is, for the Train page: 'digits-cnn' or 'a CNN'."""
    if spec.name in PRESET_RECIPES:
        return spec.name
    return with_article(spec.family())  # "an LSTM", "a Transformer"


def steps_per_epoch(num_train: int, batch_size: int) -> int:
    """Full batches only (a last batch of 1 would break batch norm); one batch if the data is smaller."""
    return max(1, num_train // batch_size)


def learning_rate(hp: Hyperparameters, step: int, total_steps: int) -> float:
    """The lr used for the update that takes the model from ``step`` to ``step + 1``.

    Cosine: lr · ½(1 + cos(π · step / total_steps)), from the full lr down towards 0.
    """
    if hp.schedule == "cosine":
        return hp.lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    return hp.lr


def divergence_message(step: int, hp: Hyperparameters) -> str:
    return (f"The loss became NaN/infinite at step {step}; try a lower learning rate "
            f"(e.g. {plain_number(hp.lr / 10)} instead of {plain_number(hp.lr)}).")


def plain_number(value: float) -> str:
    """0.0001 and 100,000 rather than 1e-04 and 1e+05: read aloud in class."""
    if value >= 1:
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"
    return np.format_float_positional(value, precision=3, unique=True, fractional=False, trim="-")
