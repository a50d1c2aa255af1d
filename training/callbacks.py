"""What a Trainer tells the outside world: ``Callback``s, the ``TrainResult`` it ends with, and
when it takes a checkpoint (``checkpoint_schedule``).

Checkpoints are taken at log-spaced steps, densely at first, because that is when a model
changes most, so the UI can replay how it formed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from training.record import RunState

if TYPE_CHECKING:
    import torch

CHECKPOINTS = 16  # aimed-for checkpoints per run (at least 12; every step when a run is shorter)


def checkpoint_schedule(total_steps: int, count: int = CHECKPOINTS) -> list[int]:
    """Steps 0 and ``total_steps`` and log-spaced steps between: at least ``count``, or every step."""
    if total_steps + 1 <= count:
        return list(range(total_steps + 1))
    points = count - 1
    while True:  # rounding merges the earliest points; add more until there are enough distinct ones
        steps = sorted({0, total_steps, *np.rint(np.geomspace(1, total_steps, points)).astype(int).tolist()})
        if len(steps) >= count:
            return steps
        points += 1


class Callback:
    """What a Trainer tells the outside world; every method is optional."""

    def on_start(self, info: dict) -> None:
        """Before the first step: device, steps, checkpoint schedule."""

    def on_metrics(self, record: dict) -> None:
        """A metrics record: {"type": "train"|"val", "step", "epoch", ...}."""

    def on_checkpoint(self, step: int, epoch: float, model: "torch.nn.Module", optimizer_state: dict) -> None:
        """Save the model as it is after ``step`` updates, and the optimizer state to resume from."""

    def should_stop(self) -> bool:
        return False


@dataclass
class TrainResult:
    status: RunState  # FINISHED | STOPPED | DIVERGED
    step: int  # updates done when the run ended
    total_steps: int
    message: str = ""
    best_val_acc: float | None = None
    final_val_acc: float | None = None
