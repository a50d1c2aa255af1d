"""Where workers run: a ``Backend`` starts and watches the worker process of each run.

``training.jobs`` decides what should happen to a run; a backend only carries it out, on the
run's folder, which is all a worker is handed (``python -m training.worker RUN_FOLDER``):

    local.LocalProcessBackend   one child process per run on this machine (the default)

Another backend (a cluster, Ray) is a sibling module here that implements the five methods of
``Backend`` and runs a worker that can read and write the run folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Backend(Protocol):
    """Starts and watches the worker of a run; the run folder is its only argument."""

    name: str  # recorded in run.json ("local")

    def launch(self, run_dir: Path, resume: bool) -> None:
        """Start a worker for the run and return at once."""

    def request_stop(self, run_dir: Path) -> None:
        """Ask the worker to stop soon (the stop file in the folder is the lasting request)."""

    def kill(self, run_dir: Path) -> None:
        """End the worker now, and return once it is gone."""

    def worker_gone(self, run_dir: Path) -> str | None:
        """None while the worker lives (or is still starting); once it is gone, why, in words.
        It only looks: it never changes the run."""

    def collect_ended(self) -> None:
        """Let go of whatever the backend still holds for workers that have ended (the local
        backend reaps its exited child processes). ``Jobs.reconcile`` calls it."""
