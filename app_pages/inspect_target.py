"""The model an Inspect page looks at: the current model, or (a step slider, when it came from
a training run) the same run's model at an earlier checkpoint; the data its inputs are prepared
like; and, when the current model is of another family, where to see it instead.

Each Inspect page starts with ``inspect_ui.page_setup``, which draws these. The checkpoints
come from ``run_data`` (loaded once per session); the step chosen for each run is kept in
``common.INSPECT_STEPS``, so every Inspect page shows the same step. The slider (with Play and
a label at every checkpoint) is ``replay.step_slider``.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from app_pages import common
from app_pages.replay import step_slider
from app_pages.run_data import UNREADABLE, builtin_dataset, checkpoint_model, default_dataset, default_options, \
    run_dataset, store
from explain.inputs import InputContext, InputError, input_context
from models import build_model, presets
from training.datasets import builtin_names

KIND_PRESET = {"cnn": "digits-cnn", "rnn": "sentiment-lstm", "transformer": "sentiment-transformer"}
KIND_PAGE = {"cnn": "app_pages/inspect_cnn.py", "rnn": "app_pages/inspect_rnn.py",
             "transformer": "app_pages/inspect_attention.py"}
KIND_WORDS = {"cnn": "CNNs", "rnn": "recurrent networks (RNN, LSTM, GRU)", "transformer": "Transformers"}

# ---- widget keys (app and browser tests find widgets by these) ------------------------
STEP = "inspect_step"
USE_PRESET = "inspect_use_preset"

sentence = common.sentence


# ---- the model, at a step of its training ----------------------------------------------
@dataclass
class Target:
    """The model a page inspects: the current model, or one of its run's earlier checkpoints."""

    model: object
    run_id: str | None = None
    step: int | None = None
    steps: tuple[int, ...] = ()  # the run's checkpoints, when it has any


def require_kind(kind: str) -> bool:
    """True if the current model is a ``kind`` model (cnn | rnn | transformer); otherwise say
    which page shows it, and offer this page's preset."""
    model = common.current_model()
    if model.spec.kind == kind:
        return True
    st.info(f"This page shows {KIND_WORDS[kind]}; the current model is {common.model_summary(model)}.",
            icon=":material/info:")
    if model.spec.kind in KIND_PAGE:
        st.page_link(KIND_PAGE[model.spec.kind], label="Inspect it on its own page", icon=":material/arrow_forward:")
    preset = KIND_PRESET[kind]
    st.button(f"Use the {preset} preset (untrained) here", key=USE_PRESET, on_click=_use_preset, args=(preset,),
              help="Makes a fresh, untrained copy of the preset the current model; train it on the Train page.")
    return False


def _use_preset(name: str) -> None:
    common.make_current(build_model(presets.get(name), seed=common.SEED), f"Now using {name} (not trained yet).")


def inspection_target() -> Target:
    """The current model, or (slider) the same run's model at an earlier checkpoint."""
    model = common.current_model()
    run_id = model.meta.run_id
    if not run_id:
        return Target(model)
    try:
        steps = tuple(store().checkpoint_steps(run_id))
    except UNREADABLE:
        steps = ()
    own_step = model.meta.step
    if len(steps) < 2 or own_step not in steps:
        return Target(model, run_id, own_step, steps)
    chosen = st.session_state[common.INSPECT_STEPS]
    step = step_slider(
        "Training step", steps, f"{STEP}_{run_id}", chosen.get(run_id, own_step),
        help="Every view below is recomputed for the model as it was at this step of its training run, "
             "so you can watch filters, hidden states and attention form. Play steps through the "
             "checkpoints.")
    chosen[run_id] = step
    if step == own_step:
        st.caption(f"The current model, from run {run_id} (step {step:,} of {steps[-1]:,}).")
        return Target(model, run_id, step, steps)
    try:
        earlier = checkpoint_model(str(store().root), run_id, step)
    except UNREADABLE as err:
        st.warning(f"The checkpoint at step {step:,} could not be read ({err}); showing the current model.")
        return Target(model, run_id, own_step, steps)
    st.caption(f"The model at step {step:,} of run {run_id} (the current model is step {own_step:,}).")
    return Target(earlier, run_id, step, steps)


# ---- the data its inputs are prepared like ---------------------------------------------
def examples_dataset(model):
    """The data the model was trained on (or is made for): examples to pick, and how inputs are
    prepared when the model itself does not say. None if no such data can be had."""
    meta = model.meta
    if model.is_pretrained:
        return None  # its own tokenizer prepares its inputs; it has no examples of its own
    try:
        if meta.run_id:
            return run_dataset(str(store().root), meta.run_id)
    except UNREADABLE:
        pass
    name = meta.dataset if meta.dataset in builtin_names() else default_dataset(model.spec)
    try:
        return builtin_dataset(name, default_options(name))
    except UNREADABLE:  # e.g. MNIST not downloaded on an offline machine
        return None


def context_for(model, dataset) -> InputContext | None:
    try:
        context = input_context(model, dataset)
    except InputError as err:
        st.warning(sentence(err))
        return None
    st.caption(f"Inputs: {context.source}.")
    return context
