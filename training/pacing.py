"""Slow motion for a class: a ``Pacer`` spreads a run's steps over about ``pace_s`` seconds.

A default run of a small preset ends a few seconds after it starts, too soon for anyone to see
a curve grow. A paced run waits between steps so that step k ends no earlier than
``start + (k - first_step) · pace_s / total_steps``: the whole run takes about ``pace_s``
seconds (a resumed run paces only the steps it has left, at the same rate). Waiting is all it
does: nothing that draws random numbers or changes the arithmetic depends on it, so a paced
run learns exactly what the same run unpaced learns.

It waits in slices of at most ``slice_s`` and asks between them whether to stop, so a Stop
still lands within a second. The clock and the sleep are arguments, so tests can run the
arithmetic without waiting. No torch here.
"""
from __future__ import annotations

import time
from collections.abc import Callable

SLICE_S = 0.1  # the longest single sleep: how quickly a Stop is noticed while waiting


class Pacer:
    """Deadlines for the steps of one ``Trainer.fit`` (from ``first_step`` to ``total_steps``)."""

    def __init__(self, pace_s: float, total_steps: int, first_step: int = 0, *,
                 clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep,
                 slice_s: float = SLICE_S):
        self.seconds_per_step = pace_s / total_steps if pace_s > 0 and total_steps > 0 else 0.0
        self.first_step = first_step
        self.clock, self.sleep, self.slice_s = clock, sleep, slice_s
        self.started = clock()

    @property
    def active(self) -> bool:
        """True when the run is paced (a run at full speed never waits)."""
        return self.seconds_per_step > 0

    def deadline(self, step: int) -> float:
        """The earliest time (on ``clock``) at which ``step`` may end."""
        return self.started + (step - self.first_step) * self.seconds_per_step

    def wait(self, step: int, should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Wait until ``step`` may end; True if a stop was asked for meanwhile (then at once)."""
        if not self.active:
            return False
        while True:
            left = self.deadline(step) - self.clock()
            if left <= 0:
                return False
            if should_stop():
                return True
            self.sleep(min(left, self.slice_s))
