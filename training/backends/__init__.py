"""Where workers run: a ``Backend`` starts and watches the worker of each run.

``training.jobs`` decides what should happen to a run; a backend only carries it out, given the
run's folder:

    local.LocalProcessBackend   one child process per run on this machine (the default); the
                                worker reads and writes the run folder itself
    ray.RayBackend              one Ray actor per run, on any machine of a Ray cluster; the
                                server hands it the run's files and writes back what it records

``make_backend`` picks one from $GLASSBOX_BACKEND ("local", the default, or "ray"; the Ray
cluster is $RAY_ADDRESS). Ray is imported only when it is picked.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Backend(Protocol):
    """Starts and watches the worker of a run; the run folder is its only argument."""

    name: str  # recorded in run.json ("local", "ray")

    def check_device(self, device: str) -> None:
        """Raise ``training.devices.DeviceError`` (in words) if runs cannot train on ``device``
        ("auto", "cpu", "cuda", "mps") where this backend runs them."""

    def warm_up(self) -> None:
        """Have a worker ready ahead of the next run, so Train starts training at once (a spare
        process here, a spare actor on the cluster); raise ``OSError`` if that cannot be done."""

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


BACKENDS = ("local", "ray")


def make_backend() -> Backend:
    """The backend $GLASSBOX_BACKEND names (the local one when it is unset)."""
    import os

    choice = os.environ.get("GLASSBOX_BACKEND", "").strip().lower() or "local"
    if choice == "local":
        from training.backends.local import LocalProcessBackend

        return LocalProcessBackend()
    if choice == "ray":
        from training.backends.ray import RayBackend

        return RayBackend()
    raise ValueError(f"GLASSBOX_BACKEND is '{choice}'; it must be one of: {', '.join(BACKENDS)}")
