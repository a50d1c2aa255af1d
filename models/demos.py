"""The ready-trained demo models shipped with Glassbox: trained presets that lessons and a first
visit can use at once, offline.

    demos.names()                  ['digits-cnn', 'sentiment-lstm', ...]
    demos.load("digits-cnn")       the trained model (a HookedModel, eval mode, on the CPU)
    demos.info("digits-cnn")       DemoInfo: description, dataset, recorded accuracy, run id, state
    demos.run_folder("digits-cnn") its training run, laid out as a folder of the run store

Each demo is a whole training run (``models/demo_runs/<run_id>/``: run.json, metrics.jsonl and
some of its log-spaced checkpoints), so the app can put it into its run store and show its
curves and its training-step slider (``training.demo_runs`` does that). ``demos.json`` beside
the runs says what each one is and what it reached. ``python -m training.demos`` (``make
demo-models``) retrains them all; nothing here trains or imports ``training``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .checkpoint import load_checkpoint

DEMO_ROOT = Path(__file__).resolve().parent / "demo_runs"
INDEX_FILE = "demos.json"
STEP_DIR = re.compile(r"^step_(\d+)$")


class UnknownDemo(ValueError):
    """No demo model by that name."""


@dataclass(frozen=True)
class DemoInfo:
    name: str  # e.g. "digits-cnn"
    description: str  # one line, for the Model page and the lessons
    preset: str  # the preset it is a trained copy of
    dataset: str  # the built-in dataset it was trained on
    run_id: str  # its run's id in the run store
    state: str  # how its run ended: "finished", or "diverged" for the lesson on learning rates
    val_acc: float  # validation accuracy of its final checkpoint, 0..1
    train_acc: float  # training accuracy of its final checkpoint, 0..1
    final_step: int  # the step of its final checkpoint
    lesson_only: bool  # made to show a mistake (diverging, over-fitting), not to be used as a model


def _index_path(root: Path | None) -> Path:
    return (DEMO_ROOT if root is None else Path(root)) / INDEX_FILE


@lru_cache(maxsize=4)
def _read_index(path: Path, modified_ns: int) -> dict[str, DemoInfo]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: DemoInfo(name=name, **entry) for name, entry in data.items()}


def index(root: Path | None = None) -> dict[str, DemoInfo]:
    """Every demo by name, in the order the index lists them (the main ones first)."""
    path = _index_path(root)
    try:
        modified_ns = path.stat().st_mtime_ns  # a retrained index is read again
    except FileNotFoundError:
        return {}
    return dict(_read_index(path, modified_ns))


def names(root: Path | None = None) -> list[str]:
    return list(index(root))


def info(name: str, root: Path | None = None) -> DemoInfo:
    demos = index(root)
    if name not in demos:
        raise UnknownDemo(f"there is no demo model called '{name}'; the demo models are: "
                          f"{', '.join(demos) or 'none (models/demo_runs/demos.json is missing)'}")
    return demos[name]


def run_folder(name: str, root: Path | None = None) -> Path:
    """The shipped run folder of the demo (read-only: copy it, never write into it)."""
    return (DEMO_ROOT if root is None else Path(root)) / info(name, root).run_id


def checkpoint_steps(name: str, root: Path | None = None) -> list[int]:
    """The steps of the checkpoints shipped with the demo, in order."""
    folder = run_folder(name, root) / "checkpoints"
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := STEP_DIR.match(p.name)))


def load(name: str, root: Path | None = None):
    """The demo's trained model, from its shipped final checkpoint (no network, no store)."""
    about = info(name, root)
    return load_checkpoint(run_folder(name, root) / "checkpoints" / f"step_{about.final_step}")
