"""The training runs' data, as the Train and Inspect pages read it: the run store, every run's
status, the dataset a run trains on, and a run's model at one of its checkpoints.

Nothing here draws or trains, and no page module is imported. Datasets are read-only and
shared by every session (``st.cache_resource``); a checkpoint loaded for the Inspect pages'
step slider is this session's (``scope="session"``), a few at a time while a class scrubs it.
A run folder can be anything (half-written, edited by hand, from another version): callers
catch ``UNREADABLE`` around every read.
"""
from __future__ import annotations

import json

import streamlit as st

from models import demos
from models.checkpoint import CheckpointError
from training import jobs
from training.demo_runs import install
from training.datasets import builtin_options, load_dataset
from training.data import DatasetError
from training.jobs import RunStatus
from training.people import Person, can_see
from training.store import RunNotFound, RunStore

MODELS_KEPT = 6  # checkpoints kept loaded per session while a class scrubs the step slider
UNREADABLE = (RunNotFound, CheckpointError, DatasetError, OSError, ValueError, KeyError, TypeError,
              AttributeError, IndexError, RuntimeError)


def store() -> RunStore:
    return jobs.default_jobs().store


# ---- runs -------------------------------------------------------------------------------
def safe_status(run_id: str) -> RunStatus | None:
    try:
        return jobs.status(run_id)
    except UNREADABLE:
        return None


def all_runs() -> list[RunStatus]:
    """Every readable run, newest first; a damaged or half-written folder is skipped."""
    runs = []
    for run_id in store().run_ids():
        run = safe_status(run_id)
        if run is not None:
            runs.append(run)
    return runs


def visible_runs(person: Person | None, runs: list[RunStatus] | None = None) -> list[RunStatus]:
    """The runs ``person`` sees (of ``runs``, default every readable run): all of them in
    single-user mode and for the teacher; a student's own and the shared ones."""
    return [run for run in (all_runs() if runs is None else runs) if can_see(person, run.owner, run.shared)]


def run_pace_s(run_id: str) -> float:
    """The pace a run was trained at (0: as fast as it went; runs from before pacing existed are 0)."""
    return store().read(run_id).hyperparameters.get("pace_s", 0) or 0


def has_checkpoint(run_id: str) -> bool:
    try:
        return bool(store().checkpoint_steps(run_id))
    except UNREADABLE:
        return False


@st.cache_resource(show_spinner=False, scope="session", max_entries=MODELS_KEPT)
def checkpoint_model(root: str, run_id: str, step: int):
    """A run's model at one of its checkpoints, loaded once per session."""
    return RunStore(root).load_model(run_id, step)


# ---- the ready-trained demo models -----------------------------------------------------------
def demo_run_id(name: str) -> str:
    """The run id of the demo model ``name`` in this server's run store, put there if it is
    missing or damaged (a deleted demo comes back). UnknownDemo (a ValueError) for an unknown name."""
    return install(name, store())


def demo_model(name: str):
    """The demo model ``name`` trained, as its run's final checkpoint in the run store: its
    ``meta.run_id`` is the demo's run, so the Train page's curves and the Inspect pages'
    training-step slider work on it. A fresh copy on every call (safe to make current)."""
    run_id = demo_run_id(name)
    return store().load_model(run_id, demos.info(name).final_step)


# ---- datasets ---------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=16)
def builtin_dataset(name: str, options_json: str):
    """A built-in dataset, made once per server for a name and options (read-only, shared)."""
    return load_dataset(name, **json.loads(options_json))


def default_options(name: str) -> str:
    return json.dumps({**builtin_options(name), "seed": 0}, sort_keys=True)


@st.cache_resource(show_spinner=False, max_entries=8)
def uploaded_run_dataset(root: str, run_id: str):
    """An uploaded dataset as its run saved it (after a reload the upload itself is gone)."""
    return RunStore(root).load_dataset(run_id)


def run_dataset(root: str, run_id: str):
    """The dataset a run trains on: built-in ones from the shared cache, uploads from the run."""
    source = RunStore(root).read(run_id).dataset.get("source")
    if source:
        return builtin_dataset(source["builtin"], json.dumps(source.get("options", {}), sort_keys=True))
    return uploaded_run_dataset(root, run_id)


def default_dataset(spec) -> str:
    """The built-in data a model is made for: digits for digits-cnn, shapes for shapes-*, ..."""
    for prefix, name in (("digits", "digits"), ("shapes", "shapes"), ("sentiment", "sentiment"),
                         ("brackets", "brackets")):
        if spec.name.startswith(prefix):
            return name
    if spec.input.kind == "image":
        return "digits" if spec.input.channels == 1 else "shapes"
    return "sentiment"
