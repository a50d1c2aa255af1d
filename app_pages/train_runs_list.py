"""The Train page's list of the runs this person sees: a table, their curves side by side, and
Open or Delete for one run (and, for the teacher, Share with the class). In a class the table
names each run's owner, and Delete is offered only on runs this person may delete; the jobs API
checks again when it is pressed. It is drawn inside the live part of the page (``train_live``), which polls while a
run trains and reads the runs once for the live panel and this table alike.
"""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from app_pages import common
from app_pages.figures import plotly_chart
from app_pages.run_data import UNREADABLE, has_checkpoint
from app_pages.train_run import attach, may, open_run, refuse, run_label, run_still_there
from training import jobs
from training.jobs import JobError, RunStatus
from training.people import Person
from training.progress import format_duration
from viz.training import curves_figure

# ---- widget keys (app and browser tests find widgets by these) ------------------------
COMPARE = "train_compare"
RUN_PICK = "train_run_pick"
OPEN_RUN = "train_open_run"
CONFIRM_DELETE = "train_confirm_delete"
DELETE_RUN = "train_delete_run"
SHARE_RUN = "train_share_run"
RUNS_TABLE = "train_runs_table"


def runs_list(runs: list[RunStatus], status_labels: dict[str, str]) -> None:
    """Every run (as read once by the caller, which polls), its status as ``status_labels`` say
    it: the words the live panel's status comes from (``training.progress.describe_status``)."""
    if not runs:
        st.caption("No runs yet. Every run you train appears here, to compare and to reopen later.")
        return
    person = common.me()  # None: single-user mode
    in_class = person is not None
    table = pd.DataFrame([{
        "Run": run_label(run),
        **({"Owner": owner_cell(run, person) + (" · shared" if run.shared else "")} if in_class else {}),
        "Model": f"{run.model} ({run.family})" if run.family else run.model,
        "Data": run.dataset,
        "Status": status_labels[run.run_id],
        "Best validation accuracy": run.best_val_acc,
        # in a class the owner takes the start date's room (the run's label has the time)
        **({} if in_class else {"Started": time.strftime("%Y-%m-%d %H:%M", time.localtime(run.submitted_at))}),
        "Time": format_duration(run.duration_s) if run.duration_s is not None else "",
        "Id": run.run_id,
    } for run in runs])
    st.dataframe(table, hide_index=True, width="stretch", key=RUNS_TABLE, column_config={  # widths: no column cut off
        "Data": st.column_config.TextColumn(width="small"),
        "Best validation accuracy": st.column_config.ProgressColumn(min_value=0, max_value=1, format="percent",
                                                                    width="small", label="Accuracy",
                                                                    help="The best validation accuracy of the run"),
        "Time": st.column_config.TextColumn(width="small"),
        "Id": st.column_config.TextColumn(width="medium" if in_class else "small"),
        "Owner": st.column_config.TextColumn(help="Who started the run; shared: the teacher shared it with the class")})
    by_id = {run.run_id: run for run in runs}
    ids = list(by_id)
    if COMPARE in st.session_state:  # drop runs deleted since they were chosen
        st.session_state[COMPARE] = [run_id for run_id in st.session_state[COMPARE] if run_id in by_id]
    labels = {run_id: pick_label(run, person) for run_id, run in by_id.items()}  # (format_func: a plain lookup)
    chosen = st.multiselect("Compare the curves of", ids, key=COMPARE, format_func=labels.__getitem__,
                            placeholder="Choose two or more runs…")
    if chosen:
        curves = {}
        for run_id in chosen:
            try:
                curves[labels[run_id]] = jobs.metrics(run_id)
            except UNREADABLE:
                continue
        plotly_chart(curves_figure(curves, height=380), config={"displaylogo": False})
    run_actions(by_id, labels)


def owner_cell(run: RunStatus, person: Person) -> str:
    """Who owns the run, for the table (plain text: a table cell is no Markdown)."""
    if run.owner is not None and run.owner == person.person_id:
        return f"{run.owner_name} (you)"
    return run.owner_name or ("nobody" if run.owner is None else "someone")


def pick_label(run: RunStatus, person: Person | None) -> str:
    """A run's label in the pickers; in a class with its owner, as two runs started in the same
    second by two students would otherwise read the same."""
    return f"{run_label(run)} · {owner_cell(run, person)}" if person is not None else run_label(run)


def run_actions(by_id: dict[str, RunStatus], labels: dict[str, str]) -> None:
    """Open or Delete the run picked: each button is bound to the run picked when it was drawn."""
    ids = list(by_id)
    if st.session_state.get(RUN_PICK) not in by_id:
        st.session_state[RUN_PICK] = st.session_state[common.CURRENT_RUN] if \
            st.session_state[common.CURRENT_RUN] in by_id else ids[0]
    teacher = common.me() is not None and common.me().teacher
    pick, open_column, delete_column, *share_column = st.columns([3, 1, 2, 1.6] if teacher else [3, 1, 2],
                                                                 vertical_alignment="bottom")
    with pick:
        run_id = st.selectbox("Run", ids, key=RUN_PICK, format_func=labels.__getitem__)
    run = by_id[run_id]
    bound = (run_id, run_label(run))
    with open_column:
        st.button("Open", key=OPEN_RUN, icon=":material/open_in_new:", width="stretch", on_click=open_picked,
                  args=bound, help="Show this run above and make its model the current model.")
    allowed = may(run, "delete")
    with delete_column:
        confirm = st.checkbox("Yes, delete this run for good", key=f"{CONFIRM_DELETE}_{run_id}",
                              disabled=run.active or not allowed)
        st.button("Delete", key=DELETE_RUN, icon=":material/delete:", disabled=run.active or not confirm or not allowed,
                  on_click=delete_picked, args=bound, help="Deletes the run's folder: its curves and saved models.")
    for column in share_column:  # the teacher's only
        with column:
            st.button("Stop sharing" if run.shared else "Share", key=SHARE_RUN, icon=":material/group:", width="stretch",
                      disabled=run.active or not has_checkpoint(run_id), on_click=share_picked,
                      args=(*bound, not run.shared),
                      help="Every student sees a shared run and can use its model (and train a copy of it).")
    if not allowed:
        st.caption("Only its owner or the teacher can delete this run.")
    elif run.active:
        st.caption("A run that is training cannot be deleted: stop it first.")


# ---- the buttons' callbacks: they act on the run bound when the button was drawn -------------
# Both end with a rerun of the whole page: the buttons are in the runs list's fragment, and
# what they change (the run shown above, the current model in the sidebar) is outside it.
def open_picked(run_id: str, label: str) -> None:
    run = run_still_there(run_id, label, "Open")
    if run is not None:
        if run.active or not has_checkpoint(run_id):
            attach(run_id)  # nothing to use yet: just show it
        else:
            open_run(run_id, label, "Open")
    st.rerun()


def delete_picked(run_id: str, label: str) -> None:
    if run_still_there(run_id, label, "Delete") is not None:
        try:
            jobs.delete(run_id, by=common.me())
        except JobError as err:
            refuse(f"Delete did nothing: {common.as_markdown_text(err)}")
        except UNREADABLE:  # deleted meanwhile
            run_still_there(run_id, label, "Delete")
        else:
            if st.session_state[common.CURRENT_RUN] == run_id:
                attach(None)
            st.session_state[common.NOTICE] = f"Deleted the run {label}."
    st.rerun()


def share_picked(run_id: str, label: str, shared: bool) -> None:
    if run_still_there(run_id, label, "Share") is not None:
        try:
            jobs.share(run_id, shared, by=common.me())
        except JobError as err:
            refuse(f"Share did nothing: {common.as_markdown_text(err)}")
        except UNREADABLE:  # deleted meanwhile
            run_still_there(run_id, label, "Share")
        else:
            label = common.as_markdown_text(label)  # a model's name is the user's text
            st.session_state[common.NOTICE] = (f"Shared the run {label} with the class: every student can now use "
                                               "its model." if shared else f"The run {label} is no longer shared.")
    st.rerun()
