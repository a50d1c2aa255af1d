"""The Train page's widgets: data, settings, the live run, its results and the list of runs.

Nothing here trains. A run is a worker process (``training.jobs``); this module starts, stops
and resumes runs and reads what they write to the run store. The live panel is a fragment
that reruns every second only while its run is queued or running; when it sees the run end it
reruns the whole page once, which draws the page again without polling.

Datasets are read-only and shared by every session (``st.cache_resource``); an uploaded one
belongs to the session that uploaded it. Everything computed from a checkpoint (the live view,
the validation predictions) is cached by (run, step), so an unchanged checkpoint is never
read twice.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from app_pages import common
from explain import probe as probes
from models.checkpoint import CheckpointError
from training import jobs
from training.data import DatasetError, fit_spec_to_dataset
from training.datasets import (builtin_names, builtin_options, dataset_from_upload, describe, load_dataset,
                               needs_download, preprocessor_from_meta)
from training.jobs import JobError, RunStatus
from training.progress import describe_progress, format_duration, status_words
from training.store import RunNotFound, RunStore
from training.trainer import (MAX_EPOCHS, OPTIMIZERS, SCHEDULES, DeviceError, HyperparameterError,
                              Hyperparameters, default_hyperparameters)
from viz.activations import attention_heatmap, heatmap_grid, probability_bars
from viz.probe import filters_figure, hidden_states_figure, prefix_predictions_figure
from viz.training import confusion_figure, confusion_matrix, curves_figure, image_grid_figure

POLL_S = 1.0  # how often the live panel reads the run while it is active
RUNS_POLL_S = 3.0  # how often the runs table is refreshed while any run is active
UPLOAD_CHOICE = "upload"  # the dataset choice that shows the uploader
UPLOAD_TYPES = ["zip", "csv", "tsv", "txt"]
FILTER_COLUMNS = 4  # filters and feature maps per row in the live view: big enough to see
MISTAKES_SHOWN = 18  # misclassified validation examples in the grid or table
# A run folder can be anything (half-written, edited by hand, from another version): reading
# one never raises past this module.
UNREADABLE = (RunNotFound, CheckpointError, DatasetError, OSError, ValueError, KeyError, TypeError,
              AttributeError, IndexError, RuntimeError)

# ---- widget keys (app and browser tests find widgets by these) ------------------------
DATASET = "train_dataset"
DATA_UPLOAD = "train_data_upload"
HP_PREFIX = "train_hp_"
SUGGESTED = "train_suggested"
SETUP = "train_setup"  # the fold holding the data and settings
TRAIN = "train"
STOP = "train_stop"
RESUME = "train_resume"
USE_RUN_MODEL = "train_use_model"
PROBE_TEXT = "train_probe_text"
CURVES = "train_curves"  # the live curves' container
LIVE_VIEW = "train_live_view"  # the live model view's container
COMPARE = "train_compare"
RUN_PICK = "train_run_pick"
OPEN_RUN = "train_open_run"
CONFIRM_DELETE = "train_confirm_delete"
DELETE_RUN = "train_delete_run"
RUNS_TABLE = "train_runs_table"

OPTIMIZER_LABELS = {"sgd": "SGD with momentum", "adam": "Adam", "adamw": "AdamW"}
SCHEDULE_LABELS = {"constant": "constant", "cosine": "cosine (falls smoothly to 0)"}
DEVICE_LABELS = {"auto": "automatic (a GPU if there is one)", "cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple GPU"}
PICTURE_PRESETS = "digits-cnn, shapes-cnn or shapes-vit"
SENTENCE_PRESETS = "sentiment-lstm, sentiment-gru or sentiment-transformer"


sentence = common.sentence


def store() -> RunStore:
    return jobs.default_jobs().store


# ---- data -------------------------------------------------------------------------------
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


def dataset_picker(spec):
    """The dataset chooser (built-in or an upload); the chosen Dataset, or None with the reason shown."""
    names = builtin_names() + [UPLOAD_CHOICE]
    labels = {name: name for name in builtin_names()} | {UPLOAD_CHOICE: "my own data (upload)…"}
    choice = st.selectbox("Dataset", names, key=DATASET, format_func=labels.get)
    if choice == UPLOAD_CHOICE:
        return _uploaded_dataset()
    st.caption(describe(choice))
    try:
        first_time = "Downloading {} (only the first time)…" if needs_download(choice) else "Preparing {}…"
        with st.spinner(first_time.format(choice)):
            return builtin_dataset(choice, default_options(choice))
    except DatasetError as err:
        st.error(sentence(err))
        return None


def _uploaded_dataset():
    file = st.file_uploader("A .zip with one folder of pictures per class, or a .csv of text,label rows",
                            type=UPLOAD_TYPES, key=DATA_UPLOAD,
                            help="Pictures: cats/1.jpg, cats/2.jpg, dogs/1.jpg, … zipped. "
                                 "Sentences: a CSV whose rows are text,label (a header row is optional).")
    if file is None:
        st.caption("Pictures are resized to the same square size; every class needs at least 5 examples.")
        return None
    state = st.session_state
    result = state[common.TRAIN_UPLOAD]
    if not result or result["file_id"] != file.file_id:
        with st.spinner(f"Reading {file.name}…"):
            try:
                result = {"file_id": file.file_id, "dataset": dataset_from_upload(file.getvalue(), file.name),
                          "error": None}
            except DatasetError as err:
                result = {"file_id": file.file_id, "dataset": None, "error": sentence(err)}
        state[common.TRAIN_UPLOAD] = result
    if result["error"]:
        st.error(result["error"])
        return None
    dataset = result["dataset"]
    st.caption(dataset.description)
    return dataset


def fit_to_data(spec, dataset):
    """The spec to train (input size, vocabulary and classes taken from the data), or None with
    the reason and a model that would fit shown."""
    try:
        fitted = fit_spec_to_dataset(spec, dataset)
    except DatasetError as err:
        st.error(sentence(err))
        reads, wanted = (("pictures", PICTURE_PRESETS) if dataset.input_kind == "image"
                         else ("sentences", SENTENCE_PRESETS))
        st.info(f"On the Model page, choose a preset that reads {reads} (for example {wanted}) and come back; "
                "or pick other data above.", icon=":material/lightbulb:")
        st.page_link("app_pages/model.py", label="Go to the Model page", icon=":material/account_tree:")
        return None
    for warning in dataset.warnings:
        st.warning(sentence(warning))
    st.caption(data_summary(dataset) + adaptation_note(spec, fitted))
    return fitted


def data_summary(dataset) -> str:
    """'1,438 examples to train on, 359 to check on · 10 classes · 1×16×16 pictures'."""
    shape = dataset.input_shape
    kind = (f"{'×'.join(map(str, shape))} pictures" if dataset.input_kind == "image"
            else f"sentences of up to {shape[0]} words, {len(dataset.vocab or []):,} different words")
    return (f"{len(dataset.x_train):,} examples to train on, {len(dataset.x_val):,} to check on · "
            f"{dataset.num_classes} classes · {kind}.")


def adaptation_note(spec, fitted) -> str:
    changes = []
    if spec.input.kind == "image" and (spec.input.channels, spec.input.height, spec.input.width) != \
            (fitted.input.channels, fitted.input.height, fitted.input.width):
        changes.append(f"its input becomes {fitted.input.channels}×{fitted.input.height}×{fitted.input.width}")
    if spec.input.kind == "tokens" and spec.input.vocab_size != fitted.input.vocab_size:
        changes.append(f"it learns {fitted.input.vocab_size:,} word vectors")
    if spec.num_classes != fitted.num_classes:
        changes.append(f"it chooses between {fitted.num_classes} classes")
    return f" To fit this data, {'; '.join(changes)}." if changes else ""


# ---- settings ---------------------------------------------------------------------------
def _key(attr: str) -> str:
    return HP_PREFIX + attr


def _owner(spec) -> list:
    return [spec.name, spec.kind]


def _devices() -> list[str]:
    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def seed_settings(spec) -> None:
    """Give the Train page's widgets their values: the ones last chosen for this model, or the
    model's defaults. Streamlit forgets a widget's value while its page is not shown, so the
    choices are kept in the session and put back on every visit."""
    state = st.session_state
    saved = state[common.TRAIN_SETTINGS]
    if not saved or saved["model"] != _owner(spec):
        saved = {"model": _owner(spec), "dataset": default_dataset(spec),
                 "hyperparameters": default_hyperparameters(spec).to_dict()}
        state[common.TRAIN_SETTINGS] = saved
        for key in [DATASET] + [_key(attr) for attr in saved["hyperparameters"]]:
            state.pop(key, None)  # another model: its own defaults replace every choice
    hp = dict(saved["hyperparameters"])
    if hp.get("device") not in _devices():
        hp["device"] = "auto"
    for attr, value in hp.items():
        if _key(attr) not in state:
            state[_key(attr)] = float(value) if attr in ("lr", "weight_decay", "momentum", "grad_clip") else value
    if DATASET not in state:
        state[DATASET] = saved["dataset"]


def remember_settings(hp: Hyperparameters) -> None:
    saved = st.session_state[common.TRAIN_SETTINGS]
    saved["hyperparameters"] = hp.to_dict()
    saved["dataset"] = st.session_state.get(DATASET, saved["dataset"])


def _use_suggested(spec) -> None:
    state = st.session_state
    for attr in default_hyperparameters(spec).to_dict():
        state.pop(_key(attr), None)
    if state[common.TRAIN_SETTINGS]:
        state[common.TRAIN_SETTINGS]["hyperparameters"] = default_hyperparameters(spec).to_dict()


def settings_form(spec) -> tuple[Hyperparameters, list[str]]:
    """Optimizer, learning rate, batch size, epochs, schedule and seed (and more, folded away)."""
    state = st.session_state
    left, right = st.columns(2)
    with left:
        st.selectbox("Optimizer", list(OPTIMIZERS), key=_key("optimizer"), format_func=OPTIMIZER_LABELS.get,
                     help="How each step changes the weights. Adam adapts the step size of every weight; "
                          "SGD takes plain steps along the gradient.")
        st.number_input("Learning rate", key=_key("lr"), min_value=0.0, step=0.0005, format="%g",
                        help="The size of each step. Too small learns slowly; too large and the loss "
                             "jumps around or becomes NaN (the run 'diverges').")
        st.number_input("Batch size", key=_key("batch_size"), min_value=1, max_value=65_536, step=8,
                        help="How many examples each step looks at.")
    with right:
        st.number_input("Epochs", key=_key("epochs"), min_value=1, max_value=MAX_EPOCHS, step=1,
                        help="How many times training goes through all the training examples.")
        st.selectbox("Learning-rate schedule", list(SCHEDULES), key=_key("schedule"),
                     format_func=SCHEDULE_LABELS.get,
                     help="Constant keeps the learning rate; cosine lowers it smoothly to 0 by the end.")
        st.number_input("Seed", key=_key("seed"), min_value=0, step=1,
                        help="The starting weights and the order of the examples: the same seed gives the "
                             "same run.")
    with st.popover("More settings", icon=":material/settings:"):
        a, b = st.columns(2)
        with a:
            st.number_input("Weight decay", key=_key("weight_decay"), min_value=0.0, max_value=0.99, step=0.01,
                            format="%g", help="Pulls every weight a little towards zero at each step.")
            st.number_input("Gradient clipping", key=_key("grad_clip"), min_value=0.0, step=0.5, format="%g",
                            help="The largest a step's gradient may be (0 = no limit); recurrent networks "
                                 "train more steadily with 1.")
        with b:
            st.number_input("Momentum (SGD only)", key=_key("momentum"), min_value=0.0, max_value=0.99, step=0.05,
                            format="%g", disabled=state[_key("optimizer")] != "sgd",
                            help="How much of the previous step carries over into the next.")
            st.selectbox("Device", _devices(), key=_key("device"), format_func=DEVICE_LABELS.get)
            st.checkbox("Mixed precision (GPU only)", key=_key("amp"), disabled=not torch.cuda.is_available(),
                        help="Faster on a GPU: most arithmetic in 16-bit numbers.")
    values = {attr: state[_key(attr)] for attr in default_hyperparameters(spec).to_dict()}
    hp = Hyperparameters(**values)
    suggested = default_hyperparameters(spec)
    st.caption(f"Suggested for a {spec.family()}: {OPTIMIZER_LABELS[suggested.optimizer]}, learning rate "
               f"{suggested.lr:g}, batches of {suggested.batch_size}, {suggested.epochs} epochs"
               f"{', cosine schedule' if suggested.schedule == 'cosine' else ''}.")
    if hp != suggested:
        st.button("Use the suggested settings", key=SUGGESTED, on_click=_use_suggested, args=(spec,))
    return hp, hp.validate()


# ---- starting a run ---------------------------------------------------------------------
def new_run_section(open_by_default: bool):
    """The fold with the data, the settings and Train; it folds away once a run starts, so the
    run is what the class sees."""
    if SETUP not in st.session_state:
        st.session_state[SETUP] = open_by_default
    return st.expander("**New run**: choose the data and the settings, then Train", key=SETUP,
                       on_change="rerun", icon=":material/tune:")


def train_button(spec, dataset, hp: Hyperparameters, ready: bool) -> None:
    """Train: start a run of a fresh copy of the current model; the page then shows it."""
    st.button("Train", key=TRAIN, type="primary", disabled=not ready, icon=":material/play_arrow:",
              on_click=_start_run, help="Starts training in the background: you can keep using the other pages.")
    error, st.session_state[common.TRAIN_ERROR] = st.session_state[common.TRAIN_ERROR], None  # shown once
    if error:
        common.show_problems(error)
    if not ready:
        st.caption("Fix the problems above to train.")
    else:
        st.caption(f"Trains a fresh copy of {spec.name} (new weights from seed {hp.seed}) on "
                   f"{dataset.name}; when it finishes, it becomes the current model.")


def _start_run() -> None:
    """Train's callback. It reads the choices from the session, not from arguments bound when
    the button was drawn: a setting changed just before the click must count."""
    state = st.session_state
    spec = common.current_model().spec
    try:
        dataset = _chosen_dataset()
        if dataset is None:
            raise DatasetError("choose the data to train on first")
        hp = Hyperparameters(**{attr: state[_key(attr)] for attr in default_hyperparameters(spec).to_dict()})
        run_id = jobs.submit(spec, dataset, hp)
    except HyperparameterError as err:
        state[common.TRAIN_ERROR] = err.messages
        return
    except (DatasetError, DeviceError, JobError, KeyError) as err:
        state[common.TRAIN_ERROR] = [str(err)]
        return
    state[common.TRAIN_ERROR] = None
    attach(run_id)
    state[common.RUNS_WATCHED].add(run_id)
    state[SETUP] = False  # fold the settings away: the run is what matters now


def _chosen_dataset():
    """The dataset the picker shows, without drawing anything (for the Train callback)."""
    state = st.session_state
    choice = state.get(DATASET)
    if choice != UPLOAD_CHOICE:
        return builtin_dataset(choice, default_options(choice))
    file, result = state.get(DATA_UPLOAD), state[common.TRAIN_UPLOAD]
    if file is None or not result or result["file_id"] != file.file_id:
        return None
    return result["dataset"]


def attach(run_id: str | None) -> None:
    st.session_state[common.CURRENT_RUN] = run_id
    st.session_state[common.RUN_METRICS] = None


# ---- which run the page shows ----------------------------------------------------------
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


def attached_run() -> RunStatus | None:
    """The run this session watches; a new session (a reload) attaches to the newest active run,
    or else the newest run."""
    jobs.reconcile()  # first record what became of the workers (a dead one's run is failed)
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
    if run.status != "finished" or run.run_id not in state[common.RUNS_WATCHED] \
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
    return getattr(common.current_model(), "meta", {}).get("run_id") == run_id


# ---- the run -----------------------------------------------------------------------------
def run_title(run: RunStatus) -> str:
    return f"{run.model} on {run.dataset}"


def run_controls(run: RunStatus) -> None:
    """Stop while it runs, Resume when stopped or failed, and use its model once it has one."""
    state = st.session_state
    st.caption(f"Run {run.run_id}")
    buttons = st.container(horizontal=True)
    if run.active:
        if buttons.button("Stop", key=STOP, icon=":material/stop:", disabled=run.status == "stopping",
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
    if not is_current(run.run_id) and run.status in ("finished", "stopped"):
        if buttons.button("Use this model", key=USE_RUN_MODEL, icon=":material/check:",
                          help="Make this run's latest model the current model for every page."):
            open_run(run)


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


def live_panel(run: RunStatus) -> None:
    """Status, progress, curves and the model forming; polls once a second only while the run is active."""
    panel = st.fragment(_live_panel, run_every=POLL_S if run.active else None)
    panel(run.run_id, run.active)


def _live_panel(run_id: str, was_active: bool) -> None:
    jobs.reconcile(run_id)  # status() only reads: record a dead worker or enforce a stop first
    run = safe_status(run_id)
    if run is None:
        st.warning("This run can no longer be read (was it deleted?).")
        if was_active:
            st.rerun()
        return
    if was_active and not run.active:
        st.rerun()  # it ended: draw the whole page again, this time without polling
    records = metrics_so_far(run_id)
    show_status(run, records)
    curves, model_view = st.columns([3, 2], gap="large")
    with curves:
        with st.container(key=CURVES):
            st.markdown("**Loss and accuracy**")
            if any(r.get("type") == "train" for r in records):
                st.plotly_chart(curves_figure({run_title(run): records}, height=380), config={"displaylogo": False})
                st.caption("Blue: the batches the model is training on. Red dots: the validation examples, "
                           "which it never trains on, checked after every epoch; if blue keeps improving "
                           "while red gets worse, the model is memorising (overfitting).")
            else:
                st.caption("The curves appear as soon as the first steps are done.")
    with model_view:
        with st.container(key=LIVE_VIEW):
            live_model_view(run)


def metrics_so_far(run_id: str) -> list[dict]:
    """The run's metrics records, reading only what was added since the last call."""
    state = st.session_state
    seen = state[common.RUN_METRICS]
    if not seen or seen["run_id"] != run_id:
        seen = {"run_id": run_id, "offset": 0, "records": []}
    try:
        new, offset = jobs.read_metrics(run_id, seen["offset"])
    except UNREADABLE:
        new, offset = [], seen["offset"]
    records = list(seen["records"])
    for record in new:
        if record.get("type") == "resume":  # the steps after it were redone: keep the redone ones
            records = [r for r in records if r.get("step", 0) <= record.get("step", 0)]
        records.append(record)
    state[common.RUN_METRICS] = {"run_id": run_id, "offset": offset, "records": records}
    return records


def show_status(run: RunStatus, records: list[dict]) -> None:
    """The status in words (with the advice or the reason when it went wrong) and the progress bar."""
    tone, words = status_words(run.status, run.message)
    if run.status == "queued":
        ahead = [other for other in all_runs() if other.status == "running" and other.run_id != run.run_id]
        words = (f"Queued: waiting for the run {run_label(ahead[0])} to finish (one run trains at a time)."
                 if ahead else "Starting: loading the model and the data…")
    elif run.status == "running" and run.device:
        words = f"Running on {run.device}."
    elif run.status == "finished" and run.last_val_acc is not None:
        words = (f"Finished: {run.last_val_acc:.1%} of the validation examples right at the end "
                 f"(best {run.best_val_acc:.1%}).")
    {"info": st.info, "success": st.success, "warning": st.warning, "error": st.error}[tone](words)
    progress = describe_progress(run, records)
    st.progress(progress.fraction, text=progress.text)


# ---- the model as it forms -----------------------------------------------------------
def live_model_view(run: RunStatus) -> None:
    """The first layer and the probe's prediction (pictures), or how a sentence is read (text),
    as the latest checkpoint has them."""
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
    step = steps[-1]
    st.markdown(f"**The model as it learns** · snapshot at step {step:,} of {run.total_steps or step:,}")
    probe_text = ""
    if dataset.input_kind == "tokens":
        key = f"{PROBE_TEXT}_{dataset.name}"  # a sentence for each dataset's vocabulary
        if not str(st.session_state.get(key) or "").strip():
            st.session_state[key] = probes.default_probe_sentence(dataset.vocab, dataset.x_val)
        probe_text = st.text_input("Sentence to watch", key=key,
                                   help="The model reads this sentence at every saved step of training.")
    try:
        panels = live_panels(root, run.run_id, step, probe_text)
    except UNREADABLE as err:
        st.caption(f"The snapshot at step {step} could not be read: {sentence(err)}")
        return
    if not panels:
        st.caption("Type a sentence above to watch the model read it.")
    for row in panels:
        columns = st.columns([panel.width for panel in row]) if len(row) > 1 else [st.container()]
        for column, panel in zip(columns, row):
            with column:
                st.caption(panel.caption)
                st.plotly_chart(panel.figure, config={"displayModeBar": False})


@dataclass(frozen=True)
class Panel:
    caption: str
    figure: go.Figure
    width: int = 1  # share of the row, for panels side by side


@st.cache_resource(show_spinner=False, max_entries=32)
def live_panels(root: str, run_id: str, step: int, probe_text: str) -> list[list[Panel]]:
    """The live view's figures for one checkpoint, as rows of panels. Built once per checkpoint
    (and sentence), then shared: the panel redraws every second, the figures do not change."""
    model = RunStore(root).load_model(run_id, step)
    dataset = run_dataset(root, run_id)
    if dataset.input_kind == "tokens":
        x = preprocessor_from_meta({**dataset.meta(), **model.meta})(probe_text)
        view = probes.probe(model, x, vocab=model.meta.get("vocab") or dataset.vocab)
        if not probe_text.strip():
            return []
        rows = [[Panel("How the prediction changes word by word",
                       prefix_predictions_figure(view.tokens, view.prefix_probabilities, view.class_names,
                                                 height=260))]]
        if view.hidden is not None:
            rows.append([Panel("The hidden state after each word (one row per unit)",
                               hidden_states_figure(view.hidden, view.tokens, height=260))])
        if view.attention is not None:
            rows.append([Panel(f"Where each word looks in the last block (mean of {len(view.attention_heads)} heads)",
                               attention_heatmap(view.attention, view.attention_tokens))])
        return rows
    picture = probe_image(dataset)
    view = probes.probe(model, picture)
    rows = [[Panel(f"Shown: a {probe_label(dataset)}",
                   image_grid_figure([picture.numpy()], [""], tile=140), width=2),
             Panel("What the model says it is", probability_bars(view.probabilities, view.class_names, top_k=3),
                   width=3)]]
    if view.filters is not None:
        rows.append([Panel("The first layer's filters: the small patterns it looks for "
                           "(red: bright there, blue: dark there)",
                           filters_figure(view.filters, cols=FILTER_COLUMNS, tile=90))])
    maps = view.activations if view.activations is not None else view.feature_maps
    if maps is not None:
        rows.append([Panel("Where the picture matches each filter (the first layer's feature maps)",
                           heatmap_grid(maps, [str(i + 1) for i in range(len(maps))], cols=FILTER_COLUMNS, tile=90))])
    if view.attention is not None:
        rows.append([Panel("Which patches look at which in the last block (mean of the heads)",
                           attention_heatmap(view.attention, view.attention_tokens))])
    return rows


def probe_image(dataset) -> torch.Tensor:
    """The fixed picture the live view follows: the first validation picture."""
    return dataset.x_val[0] if len(dataset.x_val) else dataset.x_train[0]


def probe_label(dataset) -> str:
    y = dataset.y_val if len(dataset.y_val) else dataset.y_train
    return str(dataset.class_names[int(y[0])])


# ---- when it has finished ----------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=16)
def validation_results(root: str, run_id: str, step: int) -> dict:
    model = RunStore(root).load_model(run_id, step)
    dataset = run_dataset(root, run_id)
    predicted, probabilities = probes.validation_predictions(model, dataset.x_val)
    return {"true": dataset.y_val.numpy(), "predicted": predicted, "probabilities": probabilities}


def results(run: RunStatus) -> None:
    """The confusion matrix and the validation examples the final model gets wrong."""
    root = str(store().root)
    try:
        step = store().checkpoint_steps(run.run_id)[-1]
        dataset = run_dataset(root, run.run_id)
        found = validation_results(root, run.run_id, step)
    except UNREADABLE as err:
        st.caption(f"The results cannot be shown: {sentence(err)}")
        return
    true, predicted = found["true"], found["predicted"]
    if not len(true):
        st.caption("This data has no validation examples to check the model on.")
        return
    right = int((true == predicted).sum())
    st.subheader("What the trained model gets right and wrong")
    st.caption(f"On the {len(true):,} validation examples: {right:,} right ({right / len(true):.1%}), "
               f"{len(true) - right:,} wrong.")
    names = dataset.class_names
    matrix, mistakes = st.columns(2, gap="large")
    with matrix:
        st.markdown("**Confusion matrix**")
        st.plotly_chart(confusion_figure(confusion_matrix(true, predicted, len(names)), names),
                        config={"displaylogo": False})
        st.caption("Each row is the true class, each column the model's answer: the diagonal is what it got right.")
    with mistakes:
        wrong = probes.misclassified(true, predicted, found["probabilities"], limit=MISTAKES_SHOWN)
        st.markdown("**Mistakes** (the most confident first)")
        if not len(wrong):
            st.success("No mistakes on the validation examples.")
        elif dataset.input_kind == "image":
            titles = [f"said {names[predicted[i]]}<br>is {names[true[i]]}" for i in wrong]  # two short lines
            st.plotly_chart(image_grid_figure([dataset.x_val[i].numpy() for i in wrong], titles, cols=6, tile=130),
                            config={"displayModeBar": False})
        else:
            table = pd.DataFrame({
                "Sentence": [probes.sentence_of(dataset.x_val[i], dataset.vocab) for i in wrong],
                "Model said": [names[predicted[i]] for i in wrong],
                "True": [names[true[i]] for i in wrong],
                "Sure": [float(found["probabilities"][i, predicted[i]]) for i in wrong]})
            st.dataframe(table, hide_index=True, width="stretch", key="train_mistakes",
                         column_config={"Sentence": st.column_config.TextColumn(width="large"),
                                        "Sure": st.column_config.ProgressColumn(min_value=0, max_value=1,
                                                                                format="percent")})


# ---- every run -----------------------------------------------------------------------------
def run_label(run: RunStatus) -> str:
    """'10:15:02 digits-cnn on digits': short enough for a chip, the time tells runs apart."""
    return f"{time.strftime('%H:%M:%S', time.localtime(run.submitted_at))} {run.model} on {run.dataset}"


def runs_section() -> None:
    """Every run; refreshed every few seconds while one of them is training, so its status and
    progress in the table stay true."""
    active = sorted(run.run_id for run in all_runs() if run.active)
    section = st.fragment(_runs_section, run_every=RUNS_POLL_S if active else None)
    section(active)


def _runs_section(active_before: list[str]) -> None:
    jobs.reconcile()  # status() only reads: record dead workers and enforce stops first
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
        "Status": f"running {run.progress:.0%}" if run.status == "running" else run.status,
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
            if run.active or not _has_checkpoint(run_id):
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


def _has_checkpoint(run_id: str) -> bool:
    try:
        return bool(store().checkpoint_steps(run_id))
    except UNREADABLE:
        return False
