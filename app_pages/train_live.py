"""The Train page's live part: the run shown (its status and progress, the loss and accuracy
curves, the model as it forms at the latest checkpoint, and its results once it has finished)
and the list of all runs.

Both are one fragment, so that they say the same thing: each time it runs it reads the runs
once, and the live panel and the runs table both draw that read, their words from one function
(``training.progress.describe_status``). It reruns every second while the run shown is queued
or running, every few seconds while only another run is, and not at all otherwise; when the
set of active runs changes it reruns the whole page once (the buttons above, and the polling,
follow). The run's metrics are read incrementally (only what was added since the last poll),
and the figures of a checkpoint are built once per server (``live_panels``). A run that has
ended gets a step slider with Play (``replay.step_slider``): the curves' cursor and the model
view follow it. A paced run (slow motion for a class) says that it is paced.
"""
from __future__ import annotations

import time

import streamlit as st
import torch

from app_pages import common, train_results, train_runs_list
from app_pages.figures import columns, plotly_chart
from app_pages.replay import step_slider
from app_pages.run_data import UNREADABLE, all_runs, run_dataset, run_pace_s, store, visible_runs
from app_pages.train_run import run_label, run_title
from explain import probe as probes
from models.pretrained import tokenize
from models.words import weights_phrase
from training import jobs
from training.datasets import preprocessor_from_meta
from training.device_queue import queue_place
from training.limits import estimate_wait_s
from training.jobs import RunStatus
from training.record import RunState
from training.progress import describe_progress, describe_status, format_duration, run_ahead
from training.store import RunStore
from viz.live import Panel, picture_panels, sentence_panels
from viz.training import curves_figure

POLL_S = 1.0  # how often the live part reads the runs while the run shown is active
FIRST_POLL_S = 0.25  # ... while a run just started has no point yet, so that its first one shows at once
FIRST_WINDOW_S = 15.0  # how long after Train (or its start) that quicker polling lasts at most
RUNS_POLL_S = 3.0  # ... while only another run is active (its row in the table is all that changes)

# ---- widget keys (app and browser tests find widgets by these) ------------------------
PROBE_TEXT = "train_probe_text"
REPLAY_STEP = "train_step"  # + "_<run id>": the step slider of a run that has ended
CURVES = "train_curves"  # the live curves' container
LIVE_VIEW = "train_live_view"  # the live model view's container

sentence = common.sentence


def live_section(run: RunStatus | None) -> None:
    """The run shown (None: none) and the list of the runs this person sees (in a class: their
    own and the shared ones; the teacher's: all), polling while any of them is active."""
    active = sorted(other.run_id for other in visible_runs(common.me()) if other.active)
    first = run is not None and awaits_first_point(run, metrics_feed(run.run_id).records)
    every = FIRST_POLL_S if first else POLL_S if run is not None and run.active else RUNS_POLL_S if active else None
    section = st.fragment(_live_section, run_every=every)
    section(None if run is None else run.run_id, active, first)


def awaits_first_point(run: RunStatus, records: list[dict]) -> bool:
    """The run was just started (or just began training) and has no training point yet."""
    recent = time.time() - max(run.submitted_at, run.started_at or 0) < FIRST_WINDOW_S
    return run.active and recent and not any(r.get("type") == "train" for r in records)


def _live_section(run_id: str | None, active_before: list[str], first: bool = False) -> None:
    jobs.reconcile()  # the polling step: a dead worker or an ignored stop is settled here
    everyone = all_runs()  # the one read that everything below shows (a queued run's place counts everyone's)
    runs = visible_runs(common.me(), everyone)
    if sorted(other.run_id for other in runs if other.active) != active_before:
        st.rerun()  # a run started or ended: redraw the page (its buttons, and whether to poll)
    run = next((other for other in runs if other.run_id == run_id), None)
    records = {}
    if run_id is not None and run is None:
        st.warning("This run can no longer be read (was it deleted?).")
    elif run is not None:
        records[run.run_id] = metrics_feed(run.run_id).read()
        if first and not awaits_first_point(run, records[run.run_id]):
            st.rerun()  # the first point is in (or it is late): redraw, and poll at the usual pace
        live_panel(run, records[run.run_id], everyone)
        if run.status == RunState.FINISHED:
            train_results.results(run)
    st.subheader("All runs")
    train_runs_list.runs_list(runs, {other.run_id: status_text(other, records.get(other.run_id, []), everyone).label
                                     for other in runs})


def status_text(run: RunStatus, records: list[dict], runs: list[RunStatus]):
    """The run's state in words (the table's label, the panel's sentence), from one read."""
    ahead = run_ahead(run, runs)
    return describe_status(run, records, run_label(ahead) if ahead is not None else None)


def live_panel(run: RunStatus, records: list[dict], runs: list[RunStatus]) -> None:
    """Status, progress, curves and the model forming; once the run has ended, a step slider
    with Play replays it (a cursor on the curves, the model view at that step)."""
    show_status(run, records, runs)
    pace_note(run)
    shown = replay_step(run)
    curves, model_view = columns([3, 2], gap="large")
    with curves:
        with st.container(key=CURVES):
            st.markdown("**Loss and accuracy**")
            if any(r.get("type") == "train" for r in records):
                plotly_chart(curves_figure({run_title(run): records}, height=380, cursor_step=shown),
                             config={"displaylogo": False})
                st.caption("Blue: the batches the model is training on. Red dots: the validation examples, "
                           "which it never trains on, checked after every epoch; if blue keeps improving "
                           "while red gets worse, the model is memorising (overfitting).")
            else:
                st.caption("The curves appear as soon as the first steps are done.")
    with model_view:
        with st.container(key=LIVE_VIEW):
            live_model_view(run, shown)


def pace_note(run: RunStatus) -> None:
    """Say so when a run is paced: its speed is a demonstration, not the machine's."""
    try:
        pace_s = run_pace_s(run.run_id)
    except UNREADABLE:
        return
    if pace_s:
        st.caption(f":material/slow_motion_video: Paced to about {format_duration(pace_s)} for the class to watch: "
                   "it waits between steps; it learns exactly what it would unpaced.")


def replay_step(run: RunStatus) -> int | None:
    """For a run that has ended: the step chosen on its slider (Play steps through the
    checkpoints); None while it trains (the view follows the latest checkpoint) or when it has
    fewer than two checkpoints."""
    if run.active:
        return None
    try:
        steps = store().checkpoint_steps(run.run_id)
    except UNREADABLE:
        return None
    if len(steps) < 2:
        return None
    return step_slider("Replay the training: step", steps, f"{REPLAY_STEP}_{run.run_id}", steps[-1],
                       help="The cursor on the curves and the model beside them follow this step. Play steps "
                            "through the saved checkpoints, so you can watch the model form again.")


class MetricsFeed:
    """One run's metrics records, reading only what was added to its file since the last read."""

    def __init__(self, run_id: str):
        self.run_id, self.offset, self.records = run_id, 0, []

    def read(self) -> list[dict]:
        try:
            new, self.offset = jobs.read_metrics(self.run_id, self.offset)
        except UNREADABLE:
            new = []
        for record in new:
            if record.get("type") == "resume":  # the steps after it were redone: keep the redone ones
                self.records = [r for r in self.records if r.get("step", 0) <= record.get("step", 0)]
            self.records.append(record)
        return list(self.records)


@st.cache_resource(show_spinner=False, scope="session", max_entries=1)
def metrics_feed(run_id: str) -> MetricsFeed:
    """This session's feed of the run it shows (one at a time)."""
    return MetricsFeed(run_id)


def show_status(run: RunStatus, records: list[dict], runs: list[RunStatus]) -> None:
    """The status in words (with the advice or the reason when it went wrong) and the progress bar."""
    said = status_text(run, records, runs)
    {"info": st.info, "success": st.success, "warning": st.warning, "error": st.error}[said.tone](said.sentence)
    progress = describe_progress(run, records)
    st.progress(progress.fraction, text=progress.text)
    line = place_in_line(run, runs)
    if line:
        st.caption(line)


def place_in_line(run: RunStatus, runs: list[RunStatus], now: float | None = None) -> str:
    """Where a queued run stands in its device's line, and about how long it will wait ("" when
    it is not in a line: not queued, or its worker is still starting). ``runs``: everyone's."""
    if run.status != RunState.QUEUED:
        return ""
    place = queue_place(store().root, run.run_id)
    if place is None:
        return ""
    _, number, ahead_ids = place
    by_id = {other.run_id: other for other in runs}
    ahead = [by_id[run_id] for run_id in ahead_ids if run_id in by_id]
    running = [other for other in runs if other.status == RunState.RUNNING and other.device == run.device]
    wait = estimate_wait_s(ahead, running, time.time() if now is None else now)
    before = ("nothing waits before it" if number == 1 else
              f"{number - 1} run{'s' if number > 2 else ''} wait{'s' if number == 2 else ''} before it")
    when = (f"it should start in about {format_duration(wait)}" if wait is not None else
            "how long it will wait is not known until the run training now has done a few steps")
    return (f"Number {number} in line for the {run.device or 'device'} (runs take turns, one person after another): "
            f"{before}; {when}. Cancel takes it out of the line.")


# ---- the model as it forms -----------------------------------------------------------
def live_model_view(run: RunStatus, step: int | None = None) -> None:
    """The first layer and the probe's prediction (pictures), or how a sentence is read (text),
    as the checkpoint at ``step`` has them (None: the latest)."""
    root = str(store().root)
    try:
        steps = store().checkpoint_steps(run.run_id)
        dataset = run_dataset(root, run.run_id)
    except UNREADABLE as err:
        st.caption(f"This run's data or snapshots cannot be read, so there is no live view: {sentence(err)}")
        return
    if not steps:
        st.markdown("**The model as it learns**")
        st.caption("A snapshot of the model appears here as soon as training starts.")
        return
    step = step if step in steps else steps[-1]
    st.markdown(f"**The model as it learns** · snapshot at step {step:,} of {run.total_steps or step:,}")
    probe_text = ""
    if dataset.input_kind == "tokens":
        key = f"{PROBE_TEXT}_{dataset.name}"  # a sentence for each dataset's vocabulary
        if not str(st.session_state.get(key) or "").strip():
            st.session_state[key] = (probes.default_probe_sentence(dataset.vocab, dataset.x_val) if dataset.vocab
                                     else probes.NICE_PROBES[0])  # fine-tuned: its own tokenizer reads any sentence
        probe_text = st.text_input("Sentence to watch", key=key,
                                   help="The model reads this sentence at every saved step of training.")
    try:
        panels = live_panels(root, run.run_id, step, probe_text, run.total_steps)
    except UNREADABLE as err:
        st.caption(f"The snapshot at step {step} could not be read: {sentence(err)}")
        return
    if not panels:
        st.caption("Type a sentence above to watch the model read it.")
    for row in panels:
        cells = st.columns([panel.width for panel in row]) if len(row) > 1 else [st.container()]
        for column, panel in zip(cells, row):
            with column:
                st.caption(panel.caption)
                plotly_chart(panel.figure, config={"displayModeBar": False})


@st.cache_resource(show_spinner=False, max_entries=32)
def live_panels(root: str, run_id: str, step: int, probe_text: str, total_steps: int = 0) -> list[list[Panel]]:
    """The live view's figures for one checkpoint, as rows of panels. Built once per checkpoint
    (and sentence), then shared: the panel redraws every second, the figures do not change."""
    model = RunStore(root).load_model(run_id, step)
    dataset = run_dataset(root, run_id)
    if dataset.input_kind == "tokens" and model.is_pretrained:  # fine-tuned: read by its own tokenizer
        return sentence_panels(probes.probe(model, tokenize(model, probe_text)[0], vocab=model.vocab)) if probe_text.strip() else []
    if dataset.input_kind == "tokens":
        x = preprocessor_from_meta({**dataset.meta(), **model.meta.to_dict()})(probe_text)
        view = probes.probe(model, x, vocab=model.meta.vocab or dataset.vocab)
        return sentence_panels(view) if probe_text.strip() else []
    picture = probe_image(dataset)
    return picture_panels(probes.probe(model, picture), picture.numpy(), probe_label(dataset),
                          weights_phrase(model.meta, total_steps=total_steps or None))


def probe_image(dataset) -> torch.Tensor:
    """The fixed picture the live view follows: the first validation picture."""
    return dataset.x_val[0] if len(dataset.x_val) else dataset.x_train[0]


def probe_label(dataset) -> str:
    y = dataset.y_val if len(dataset.y_val) else dataset.y_train
    return str(dataset.class_names[int(y[0])])
