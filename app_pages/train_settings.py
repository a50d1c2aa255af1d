"""The Train page's settings and its Train button: optimizer, learning rate, batch size, epochs,
schedule, seed, the pace (slow motion for a class; not a learning setting, so "Use the suggested
settings" keeps it) and more, folded away; and starting a run with them.

Streamlit forgets a widget's value while its page is not shown, so the choices are kept in
the session (``common.TRAIN_SETTINGS``) and put back on every visit (``seed_settings``).
"""
from __future__ import annotations

from dataclasses import replace

import streamlit as st

from app_pages import common
from app_pages.run_data import default_dataset
from app_pages.train_data import DATASET, chosen_dataset
from app_pages.train_devices import cluster_caption, device_choices
from app_pages.train_run import attach, class_limits_caption, offer_to_stop
from training import jobs
from training.data import DatasetError
from training.hyperparameters import suggested_for
from training.jobs import JobError, TooManyRuns
from training.progress import format_duration
from training.trainer import (MAX_EPOCHS, OPTIMIZERS, SCHEDULES, DeviceError, HyperparameterError,
                              Hyperparameters, default_hyperparameters)

# ---- widget keys (app and browser tests find widgets by these) ------------------------
HP_PREFIX = "train_hp_"
SUGGESTED = "train_suggested"
SETUP = "train_setup"  # the fold holding the data and settings
TRAIN = "train"

OPTIMIZER_LABELS = {"sgd": "SGD with momentum", "adam": "Adam", "adamw": "AdamW"}
SCHEDULE_LABELS = {"constant": "constant", "cosine": "cosine (falls smoothly to 0)"}
DEVICE_LABELS = {"auto": "automatic (a GPU if there is one)", "cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple GPU"}
PACE_LABELS = {0: "As fast as it can", 30: "About 30 s", 60: "About 60 s", 120: "About 2 minutes"}  # seconds
FLOAT_SETTINGS = ("lr", "weight_decay", "momentum", "grad_clip")  # number inputs that take floats


def hp_key(attr: str) -> str:
    """The widget key of one hyperparameter."""
    return HP_PREFIX + attr


def _owner(spec) -> list:
    return [spec.name, spec.kind]


def design_note(design) -> None:
    """Say that the Model page's design (chosen there, not used yet) is not what this page trains."""
    if design is None:
        return
    name = common.as_markdown_text(design.name or "the design there")
    current = common.as_markdown_text(common.current_model().spec.name)
    st.info(f"The Model page shows {name}, which is not the current model: this page trains the current "
            f"model, {current}. To train {name}, press **Use this model** on the Model page first.",
            icon=":material/info:")
    st.page_link("app_pages/model.py", label="Go to the Model page", icon=":material/account_tree:")


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
        for key in [DATASET] + [hp_key(attr) for attr in saved["hyperparameters"]]:
            state.pop(key, None)  # another model: its own defaults replace every choice
    hp = dict(saved["hyperparameters"])
    if hp.get("device") not in device_choices():
        hp["device"] = "auto"
    if hp.get("pace_s") not in PACE_LABELS:  # e.g. a pace from the command line: not one of the choices
        hp["pace_s"] = 0
    for attr, value in hp.items():
        if hp_key(attr) not in state:
            state[hp_key(attr)] = float(value) if attr in FLOAT_SETTINGS else value
    if DATASET not in state:
        state[DATASET] = saved["dataset"]


def remember_settings(hp: Hyperparameters) -> None:
    saved = st.session_state[common.TRAIN_SETTINGS]
    saved["hyperparameters"] = hp.to_dict()
    saved["dataset"] = st.session_state.get(DATASET, saved["dataset"])


def _use_suggested(spec) -> None:
    """The suggested settings, keeping the pace: it is how the class watches, not how the model learns."""
    state = st.session_state
    suggested = replace(default_hyperparameters(spec), pace_s=state.get(hp_key("pace_s"), 0)).to_dict()
    for attr in suggested:
        if attr != "pace_s":
            state.pop(hp_key(attr), None)
    if state[common.TRAIN_SETTINGS]:
        state[common.TRAIN_SETTINGS]["hyperparameters"] = suggested


def settings_form(spec) -> tuple[Hyperparameters, list[str]]:
    """Optimizer, learning rate, batch size, epochs, schedule and seed (and more, folded away)."""
    state = st.session_state
    left, right = st.columns(2)
    with left:
        st.selectbox("Optimizer", list(OPTIMIZERS), key=hp_key("optimizer"), format_func=OPTIMIZER_LABELS.get,
                     help="How each step changes the weights. Adam adapts the step size of every weight; "
                          "SGD takes plain steps along the gradient.")
        st.number_input("Learning rate", key=hp_key("lr"), min_value=0.0, step=0.0005, format="%g",
                        help="The size of each step. Too small learns slowly; too large and the loss "
                             "jumps around or becomes NaN (the run 'diverges').")
        st.number_input("Batch size", key=hp_key("batch_size"), min_value=1, max_value=65_536, step=8,
                        help="How many examples each step looks at.")
    with right:
        st.number_input("Epochs", key=hp_key("epochs"), min_value=1, max_value=MAX_EPOCHS, step=1,
                        help="How many times training goes through all the training examples.")
        st.selectbox("Learning-rate schedule", list(SCHEDULES), key=hp_key("schedule"),
                     format_func=SCHEDULE_LABELS.get,
                     help="Constant keeps the learning rate; cosine lowers it smoothly to 0 by the end.")
        st.number_input("Seed", key=hp_key("seed"), min_value=0, step=1,
                        help="The starting weights and the order of the examples: the same seed gives the "
                             "same run.")
    st.selectbox("Pace", list(PACE_LABELS), key=hp_key("pace_s"), format_func=PACE_LABELS.get,
                 help="Slow motion for a class: the run waits between steps so that it takes about this long, "
                      "and records every step, so the curves and the filters visibly grow. It learns exactly "
                      "what it would unpaced.")
    with st.popover("More settings", icon=":material/settings:"):
        a, b = st.columns(2)
        with a:
            st.number_input("Weight decay", key=hp_key("weight_decay"), min_value=0.0, max_value=0.99, step=0.01,
                            format="%g", help="Pulls every weight a little towards zero at each step.")
            st.number_input("Gradient clipping", key=hp_key("grad_clip"), min_value=0.0, step=0.5, format="%g",
                            help="The largest a step's gradient may be (0 = no limit); recurrent networks "
                                 "train more steadily with 1.")
        with b:
            st.number_input("Momentum (SGD only)", key=hp_key("momentum"), min_value=0.0, max_value=0.99, step=0.05,
                            format="%g", disabled=state[hp_key("optimizer")] != "sgd",
                            help="How much of the previous step carries over into the next.")
            st.selectbox("Device", device_choices(), key=hp_key("device"), format_func=DEVICE_LABELS.get)
            st.checkbox("Mixed precision (GPU only)", key=hp_key("amp"), disabled="cuda" not in device_choices(),
                        help="Faster on a GPU: most arithmetic in 16-bit numbers.")
        cluster_caption()
    hp = chosen_hyperparameters(spec)
    suggested = default_hyperparameters(spec)
    st.caption(f"Suggested for {suggested_for(spec)}: {OPTIMIZER_LABELS[suggested.optimizer]}, learning rate "
               f"{suggested.lr:g}, batches of {suggested.batch_size}, {suggested.epochs} epochs"
               f"{', cosine schedule' if suggested.schedule == 'cosine' else ''}.")
    if replace(hp, pace_s=0) != replace(suggested, pace_s=0):
        st.button("Use the suggested settings", key=SUGGESTED, on_click=_use_suggested, args=(spec,))
    return hp, hp.validate()


def chosen_hyperparameters(spec) -> Hyperparameters:
    """The hyperparameters the widgets hold (not checked: ``validate()`` says what is wrong)."""
    return Hyperparameters(**{attr: st.session_state[hp_key(attr)]
                              for attr in default_hyperparameters(spec).to_dict()})


def paced_words(hp: Hyperparameters) -> str:
    """What a paced run does, said before it starts ("" when it is not paced)."""
    if not hp.pace_s:
        return ""
    return (f" Paced to about {format_duration(hp.pace_s)} for the class to watch: it waits between steps, "
            "and learns exactly what it would unpaced.")


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
    offer_to_stop()
    if not ready:
        st.caption("Fix the problems above to train.")
    else:
        st.caption(f"Trains a fresh copy of {common.as_markdown_text(spec.name)} (new weights from seed {hp.seed}) on "
                   f"{dataset.name}; when it finishes, it becomes the current model.{paced_words(hp)}")
    class_limits_caption()


def _start_run() -> None:
    """Train's callback. It reads the choices from the session, not from arguments bound when
    the button was drawn: a setting changed just before the click must count."""
    state = st.session_state
    spec = common.current_model().spec
    try:
        dataset = chosen_dataset()
        if dataset is None:
            raise DatasetError("choose the data to train on first")
        run_id = jobs.submit(spec, dataset, chosen_hyperparameters(spec), owner=common.me())
    except HyperparameterError as err:
        state[common.TRAIN_ERROR] = err.messages
        return
    except TooManyRuns as err:  # the person's runs are training: say why, and offer to stop them
        state[common.TRAIN_BUSY] = (str(err), err.active)
        return
    except (DatasetError, DeviceError, JobError, KeyError) as err:
        state[common.TRAIN_ERROR] = [str(err)]
        return
    state[common.TRAIN_ERROR] = None
    attach(run_id)
    state[common.RUNS_WATCHED].add(run_id)
    state[SETUP] = False  # fold the settings away: the run is what matters now
