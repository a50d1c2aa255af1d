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
from app_pages.run_data import UNREADABLE, all_runs, safe_status, store, visible_runs
from training import jobs
from training.jobs import JobError, RunStatus
from training.limits import runs_kept_per_person, runs_per_person
from training.people import can_see, refusal
from training.record import RunState

# ---- widget keys (app and browser tests find widgets by these) ------------------------
STOP = "train_stop"
RESUME = "train_resume"
USE_RUN_MODEL = "train_use_model"
CANCEL = "train_cancel"
STOP_BUSY = "train_stop_busy"  # + "_<run id>": Stop offered when Train was refused for one's running runs
USE_SHARED = "train_use_shared"  # + "_<run id>": "Use this model" of a run the teacher shared

sentence = common.sentence


def run_title(run: RunStatus) -> str:
    return f"{run.model} on {run.dataset}"


def run_label(run: RunStatus) -> str:
    """'10:15:02 digits-cnn on digits': short enough for a chip, the time tells runs apart."""
    return f"{time.strftime('%H:%M:%S', time.localtime(run.submitted_at))} {run.model} on {run.dataset}"


# ---- which run the page shows ----------------------------------------------------------
def attach(run_id: str | None) -> None:
    st.session_state[common.CURRENT_RUN] = run_id


def keep_a_worker_warm() -> None:
    """Have a warm worker ready, so that Train starts training at once (a spare process, or with
    Ray a spare actor: ``training.backends``). A cluster that cannot be reached is said where the
    devices are listed; here it only means no spare."""
    try:
        jobs.default_jobs().backend.warm_up()
    except OSError:
        pass


def attached_run() -> RunStatus | None:
    """The run this session watches; a new session (a reload) attaches to the newest active run,
    or else the newest run, of those this person sees (``run_data.visible_runs``)."""
    jobs.reconcile()  # a worker that died while nobody watched is marked so before it is shown
    state = st.session_state
    if state[common.CURRENT_RUN] is not None:
        run = safe_status(state[common.CURRENT_RUN])
        if run is not None and can_see(common.me(), run.owner, run.shared):
            if run.active:
                state[common.RUNS_WATCHED].add(run.run_id)
            return run
        attach(None)  # deleted, damaged, or no longer shared
    runs = visible_runs(common.me())
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
    """'digits-cnn · CNN · 18,346 parameters · trained on digits, 97% best validation accuracy'
    (the model's summary already names the data it was trained on: it is not said twice)."""
    summary = common.model_summary(model)
    if not model.meta.dataset:
        summary = f"{summary}, trained on {run.dataset}"
    accuracy = f", {run.best_val_acc:.0%} best validation accuracy" if run.best_val_acc is not None else ""
    return summary + accuracy


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
    common.make_current(model, f"Training finished. The current model is now {common.as_markdown_text(trained_summary(model, run))}: "
                               "every page uses it.")
    st.rerun()  # the sidebar, drawn before this page, names the new model


def is_current(run_id: str) -> bool:
    return common.current_model().meta.run_id == run_id


def may(run: RunStatus, action: str) -> bool:
    """Whether this session may ``action`` ("stop", "resume", "delete") the run (``training.jobs``
    checks it again when the button is pressed)."""
    return refusal(common.me(), run.owner, run.owner_name, action) is None


def owner_text(run: RunStatus) -> str:
    """Whose run it is, in words, for a caption (escaped: a name is the user's text)."""
    person = common.me()
    if person is not None and run.owner == person.person_id:
        whose = "Your run"
    elif run.owner is None:
        whose = "Nobody's run (made before the class was set up, or from the command line)"
    else:
        whose = f"{common.as_markdown_text(run.owner_name or 'someone else')}'s run"
    return f"{whose}, shared with the class" if run.shared else whose


# ---- acting on a run: the buttons' callbacks ------------------------------------------------
# Every button that acts on a run is drawn with the run's id bound (``args=(run_id, label)``),
# and its callback acts on that id only: if the run is gone (deleted in another tab, or by
# someone else) the callback says so and does nothing; it never falls back to another run.
def refuse(text: str) -> None:
    """Say, once, at the top of the page, why a click on a run's button did nothing."""
    st.session_state[common.RUN_REFUSAL] = sentence(text)


def show_refusal() -> None:
    text, st.session_state[common.RUN_REFUSAL] = st.session_state[common.RUN_REFUSAL], None
    if text:
        st.warning(text, icon=":material/block:")


def run_still_there(run_id: str, label: str, action: str) -> RunStatus | None:
    """The run as it is now, or None (after saying so) if it no longer exists."""
    run = safe_status(run_id)
    if run is None:
        refuse(f"{action} did nothing: the run {label} no longer exists (it was deleted, perhaps in another "
               "tab or by someone else)")
    return run


def stop_run(run_id: str, label: str) -> None:
    if run_still_there(run_id, label, "Stop") is None:
        return
    try:
        jobs.stop(run_id, by=common.me())
    except JobError as err:
        refuse(f"Stop did nothing: {common.as_markdown_text(err)}")  # it may name the owner
    except UNREADABLE:
        run_still_there(run_id, label, "Stop")


def resume_run(run_id: str, label: str) -> None:
    if run_still_there(run_id, label, "Resume") is None:
        return
    try:
        jobs.resume(run_id, by=common.me())
    except JobError as err:
        refuse(f"Resume did nothing: {common.as_markdown_text(err)}")
        return
    except UNREADABLE:  # deleted between the look and the resume
        run_still_there(run_id, label, "Resume")
        return
    attach(run_id)
    st.session_state[common.RUNS_WATCHED].add(run_id)


def cancel_run(run_id: str, label: str) -> None:
    """Take a run that waits for its turn out of the queue (it is removed: it trained nothing)."""
    if run_still_there(run_id, label, "Cancel") is None:
        return
    try:
        jobs.cancel(run_id, by=common.me())
    except JobError as err:
        refuse(f"Cancel did nothing: {common.as_markdown_text(err)}")
        return
    except UNREADABLE:
        run_still_there(run_id, label, "Cancel")
        return
    attach(None)
    st.session_state[common.NOTICE] = f"The run {common.as_markdown_text(label)} was cancelled before it began, and removed."


def offer_to_stop() -> None:
    """Why Train was refused (the person's runs are training), with a Stop for each (shown once)."""
    busy, st.session_state[common.TRAIN_BUSY] = st.session_state[common.TRAIN_BUSY], None
    if not busy:
        return
    text, run_ids = busy
    st.warning(common.as_markdown_text(text), icon=":material/hourglass_top:")
    for run in filter(None, map(safe_status, run_ids)):
        if run.active:
            st.button(f"Stop {run_label(run)}", key=f"{STOP_BUSY}_{run.run_id}", icon=":material/stop:",
                      on_click=stop_run, args=(run.run_id, run_label(run)),
                      help="Stops it within a second and keeps the model where it got to; then press Train.")


def class_limits_caption() -> None:
    """In a class: the limits on a person's runs, in one line under Train."""
    if common.me() is None:
        return
    at_once = "one run at a time" if runs_per_person() == 1 else f"up to {runs_per_person()} runs at a time"
    st.caption(f"Everyone in the class trains {at_once} and keeps their {runs_kept_per_person()} latest runs: "
               "starting another removes your oldest finished one (a run the teacher shared is always kept).")


def open_run(run_id: str, label: str, action: str = "Use this model") -> None:
    """Show the run on this page and make its latest model the current model (a callback)."""
    run = run_still_there(run_id, label, action)
    if run is None:
        return
    model, error = final_model(run_id)
    if model is None:
        if safe_status(run_id) is None:
            run_still_there(run_id, label, action)
        else:
            refuse(f"Run {label} has no model to use yet: {error}")
        return
    attach(run_id)
    st.session_state[common.RUNS_ADOPTED].add(run_id)
    common.make_current(model, f"The current model is now {common.as_markdown_text(trained_summary(model, run))} (run {run_id}).")


# ---- its buttons ---------------------------------------------------------------------------
def run_controls(run: RunStatus) -> None:
    """Stop while it runs, Resume when stopped or failed, and use its model once it has one."""
    st.caption(f"Run {run.run_id}")
    if common.me() is not None:
        st.caption(owner_text(run))
    buttons = st.container(horizontal=True)
    bound = (run.run_id, run_label(run))  # each button acts on this run, and on no other
    if run.active:
        if run.status == RunState.QUEUED and run.started_at is None and may(run, "stop"):
            buttons.button("Cancel", key=CANCEL, icon=":material/close:", on_click=cancel_run, args=bound,
                           help="It has not begun: take it out of the line and remove it.")
        elif may(run, "stop"):
            buttons.button("Stop", key=STOP, icon=":material/stop:", disabled=run.status == RunState.STOPPING,
                           on_click=stop_run, args=bound,
                           help="Stops within a second and keeps the model where it got to; Resume continues.")
        return
    if run.status in jobs.RESUMABLE and may(run, "resume"):
        buttons.button("Resume", key=RESUME, icon=":material/play_arrow:", on_click=resume_run, args=bound,
                       help="Continue from the last saved step to the planned end.")
    if not is_current(run.run_id) and run.status in (RunState.FINISHED, RunState.STOPPED):
        buttons.button("Use this model", key=USE_RUN_MODEL, icon=":material/check:", on_click=open_run, args=bound,
                       help="Make this run's latest model the current model for every page.")


def shared_models() -> None:
    """In a class: the models the teacher shared, each ready to use (inspect it on every page, or
    press Train to train a copy of it as one's own run)."""
    if common.me() is None:
        return
    shared = [run for run in all_runs() if run.shared and not run.active]
    if not shared:
        return
    st.markdown("**Shared with the class**")
    for run in shared:
        text, button = st.columns([4, 1], vertical_alignment="center")
        accuracy = f", {run.best_val_acc:.0%} best validation accuracy" if run.best_val_acc is not None else ""
        text.markdown(f"{common.as_markdown_text(run_title(run))}{accuracy} · "
                      f"{common.as_markdown_text(run.owner_name or 'nobody')}'s run")
        if is_current(run.run_id):
            button.caption("Your current model")
        else:
            button.button("Use this model", key=f"{USE_SHARED}_{run.run_id}", icon=":material/check:",
                          on_click=open_run, args=(run.run_id, run_label(run)),
                          help="Make this model your current model: inspect it on every page, or train a copy.")
