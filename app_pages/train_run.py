"""Which run the Train page shows, and what can be done with it: attach to a run (a new session
attaches to the newest), Stop, Resume, use its model, and adopt the final model of a run this
session watched finish.

Nothing here trains: a run is a worker process (``training.jobs``); this module starts, stops
and resumes runs through it and reads what they write (``run_data``).
"""
from __future__ import annotations

import time

import streamlit as st

from app_pages import common
from app_pages.run_data import UNREADABLE, all_runs, safe_status, store
from training import jobs
from training.jobs import JobError, RunStatus
from training.record import RunState

# ---- widget keys (app and browser tests find widgets by these) ------------------------
STOP = "train_stop"
RESUME = "train_resume"
USE_RUN_MODEL = "train_use_model"

sentence = common.sentence


def run_title(run: RunStatus) -> str:
    return f"{run.model} on {run.dataset}"


def run_label(run: RunStatus) -> str:
    """'10:15:02 digits-cnn on digits': short enough for a chip, the time tells runs apart."""
    return f"{time.strftime('%H:%M:%S', time.localtime(run.submitted_at))} {run.model} on {run.dataset}"


# ---- which run the page shows ----------------------------------------------------------
def attach(run_id: str | None) -> None:
    st.session_state[common.CURRENT_RUN] = run_id


def attached_run() -> RunStatus | None:
    """The run this session watches; a new session (a reload) attaches to the newest active run,
    or else the newest run."""
    jobs.reconcile()  # a worker that died while nobody watched is marked so before it is shown
    state = st.session_state
    if state[common.CURRENT_RUN] is not None:
        run = safe_status(state[common.CURRENT_RUN])
        if run is not None:
            if run.active:
                state[common.RUNS_WATCHED].add(run.run_id)
            return run
        attach(None)  # deleted, or damaged
    runs = all_runs()
    if not runs:
        return None
    run = next((r for r in runs if r.active), runs[0])
    attach(run.run_id)
    if run.active:
        state[common.RUNS_WATCHED].add(run.run_id)
    return run


# ---- its model ---------------------------------------------------------------------------
def final_model(run_id: str, step: int | None = None):
    """(model, None) at ``step`` (default: the latest checkpoint), or (None, what went wrong)."""
    try:
        return store().load_model(run_id, step), None
    except UNREADABLE as err:
        return None, sentence(err)


def trained_summary(model, run: RunStatus) -> str:
    accuracy = f", {run.best_val_acc:.0%} best validation accuracy" if run.best_val_acc is not None else ""
    return f"{common.model_summary(model)}, trained on {run.dataset}{accuracy}"


def adopt_if_just_finished(run: RunStatus) -> None:
    """A run this session watched has finished: its final model becomes the current model."""
    state = st.session_state
    if run.status != RunState.FINISHED or run.run_id not in state[common.RUNS_WATCHED] \
            or run.run_id in state[common.RUNS_ADOPTED]:
        return
    state[common.RUNS_ADOPTED].add(run.run_id)
    model, error = final_model(run.run_id)
    if model is None:
        st.error(f"Training finished, but its model could not be loaded: {error}")
        return
    common.make_current(model, f"Training finished. The current model is now {trained_summary(model, run)}: "
                               "every page uses it.")
    st.rerun()  # the sidebar, drawn before this page, names the new model


def is_current(run_id: str) -> bool:
    return common.current_model().meta.run_id == run_id


def open_run(run: RunStatus) -> None:
    """Show ``run`` on this page and make its latest model the current model."""
    model, error = final_model(run.run_id)
    if model is None:
        st.error(f"Run {run.run_id} has no model to use yet: {error}")
        return
    attach(run.run_id)
    st.session_state[common.RUNS_ADOPTED].add(run.run_id)
    common.make_current(model, f"The current model is now {trained_summary(model, run)} (run {run.run_id}).")
    st.rerun()


# ---- its buttons ---------------------------------------------------------------------------
def run_controls(run: RunStatus) -> None:
    """Stop while it runs, Resume when stopped or failed, and use its model once it has one."""
    state = st.session_state
    st.caption(f"Run {run.run_id}")
    buttons = st.container(horizontal=True)
    if run.active:
        if buttons.button("Stop", key=STOP, icon=":material/stop:", disabled=run.status == RunState.STOPPING,
                          help="Stops within a second and keeps the model where it got to; Resume continues."):
            jobs.stop(run.run_id)
            st.rerun()
        return
    if run.status in jobs.RESUMABLE:
        if buttons.button("Resume", key=RESUME, icon=":material/play_arrow:",
                          help="Continue from the last saved step to the planned end."):
            try:
                jobs.resume(run.run_id)
            except JobError as err:
                st.error(sentence(err))
                return
            state[common.RUNS_WATCHED].add(run.run_id)
            st.rerun()
    if not is_current(run.run_id) and run.status in (RunState.FINISHED, RunState.STOPPED):
        if buttons.button("Use this model", key=USE_RUN_MODEL, icon=":material/check:",
                          help="Make this run's latest model the current model for every page."):
            open_run(run)
