"""The Train page's list of every run: a table (refreshed while a run trains), their curves
side by side, and Open or Delete for one run.
"""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from app_pages import common
from app_pages.run_data import UNREADABLE, all_runs, has_checkpoint
from app_pages.train_run import attach, open_run, run_label
from training import jobs
from training.jobs import JobError, RunStatus
from training.record import RunState
from training.progress import format_duration
from viz.training import curves_figure

RUNS_POLL_S = 3.0  # how often the runs table is refreshed while any run is active

# ---- widget keys (app and browser tests find widgets by these) ------------------------
COMPARE = "train_compare"
RUN_PICK = "train_run_pick"
OPEN_RUN = "train_open_run"
CONFIRM_DELETE = "train_confirm_delete"
DELETE_RUN = "train_delete_run"
RUNS_TABLE = "train_runs_table"

sentence = common.sentence


def runs_section() -> None:
    """Every run; refreshed every few seconds while one of them is training, so its status and
    progress in the table stay true."""
    active = sorted(run.run_id for run in all_runs() if run.active)
    section = st.fragment(_runs_section, run_every=RUNS_POLL_S if active else None)
    section(active)


def _runs_section(active_before: list[str]) -> None:
    jobs.reconcile()  # the runs table's polling step (status reads below are pure)
    runs = all_runs()
    if active_before and sorted(run.run_id for run in runs if run.active) != active_before:
        st.rerun()  # a run started or ended: redraw the page (and stop polling when none is left)
    if not runs:
        st.caption("No runs yet. Every run you train appears here, to compare and to reopen later.")
        return
    table = pd.DataFrame([{
        "Run": run_label(run),
        "Model": f"{run.model} ({run.family})" if run.family else run.model,
        "Data": run.dataset,
        "Status": f"running {run.progress:.0%}" if run.status == RunState.RUNNING else run.status,
        "Best validation accuracy": run.best_val_acc,
        "Started": time.strftime("%Y-%m-%d %H:%M", time.localtime(run.submitted_at)),
        "Time": format_duration(run.duration_s) if run.duration_s is not None else "",
        "Id": run.run_id,
    } for run in runs])
    st.dataframe(table, hide_index=True, width="stretch", key=RUNS_TABLE, column_config={
        "Best validation accuracy": st.column_config.ProgressColumn(min_value=0, max_value=1, format="percent"),
        "Id": st.column_config.TextColumn(width="small")})
    by_id = {run.run_id: run for run in runs}
    ids = list(by_id)
    if COMPARE in st.session_state:  # drop runs deleted since they were chosen
        st.session_state[COMPARE] = [run_id for run_id in st.session_state[COMPARE] if run_id in by_id]
    chosen = st.multiselect("Compare the curves of", ids, key=COMPARE, format_func=lambda i: run_label(by_id[i]),
                            placeholder="Choose two or more runs…")
    if chosen:
        curves = {}
        for run_id in chosen:
            try:
                curves[run_label(by_id[run_id])] = jobs.metrics(run_id)
            except UNREADABLE:
                continue
        st.plotly_chart(curves_figure(curves, height=380), config={"displaylogo": False})
    run_actions(by_id)


def run_actions(by_id: dict[str, RunStatus]) -> None:
    ids = list(by_id)
    if st.session_state.get(RUN_PICK) not in by_id:
        st.session_state[RUN_PICK] = st.session_state[common.CURRENT_RUN] if \
            st.session_state[common.CURRENT_RUN] in by_id else ids[0]
    pick, open_column, delete_column = st.columns([3, 1, 2], vertical_alignment="bottom")
    with pick:
        run_id = st.selectbox("Run", ids, key=RUN_PICK, format_func=lambda i: run_label(by_id[i]))
    run = by_id[run_id]
    with open_column:
        if st.button("Open", key=OPEN_RUN, icon=":material/open_in_new:", width="stretch",
                     help="Show this run above and make its model the current model."):
            if run.active or not has_checkpoint(run_id):
                attach(run_id)
                st.rerun()
            open_run(run)
    with delete_column:
        confirm = st.checkbox("Yes, delete this run for good", key=f"{CONFIRM_DELETE}_{run_id}",
                              disabled=run.active)
        if st.button("Delete", key=DELETE_RUN, icon=":material/delete:", disabled=run.active or not confirm,
                     help="Deletes the run's folder: its curves and saved models."):
            try:
                jobs.delete(run_id)
            except JobError as err:
                st.error(sentence(err))
                return
            if st.session_state[common.CURRENT_RUN] == run_id:
                attach(None)
            st.session_state[common.NOTICE] = f"Deleted the run {run_label(run)}."
            st.rerun()
    if run.active:
        st.caption("A run that is training cannot be deleted: stop it first.")
