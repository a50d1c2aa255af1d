"""How the web server itself runs torch: one thread.

A page run's computations are small (one picture or sentence through the model) and many
sessions run at once, each on its own thread. With torch's default of one thread per core, every
small operation wakes a pool of threads that then wait for cores the training worker and the
other sessions hold: on the 2-core classroom machine, busy, one Feature maps inspection of
digits-cnn took ~80 ms with 2 threads against ~3 ms with one. One thread also leaves the training
worker the cores it was given (``training.devices.worker_cpu_threads``: every core but one).
``GLASSBOX_SERVER_THREADS`` overrides the choice.
"""
from __future__ import annotations

import os

import torch

DEFAULT_THREADS = 1


def server_threads() -> int:
    override = os.environ.get("GLASSBOX_SERVER_THREADS", "").strip()
    return int(override) if override.isdigit() and int(override) > 0 else DEFAULT_THREADS


def use_server_threads() -> None:
    """Give torch the server's threads (cheap to call on every page run: it acts once)."""
    threads = server_threads()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
