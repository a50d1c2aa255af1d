"""The Model page's "Ready-trained models": one click makes a shipped demo model (``models.demos``)
the current model, already trained, offline.

The demo's training run is put into the run store on the way (``run_data.demo_model``), so the
Train page shows its curves and the Inspect pages' training-step slider its checkpoints; the
Train page is pointed at that run unless it is watching a run still in progress. What happened
is kept in ``common.LOAD_RESULT`` (with ``"demo"``) and said once, under the buttons.
"""
from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages.editor_state import load_into_editor
from app_pages.run_data import UNREADABLE, demo_model, safe_status
from models import demos, presets

USE_DEMO = "use_demo"  # + "_<name>": a demo's button (browser and app tests find it by this key)


def demo_buttons() -> None:
    """A button per main demo, side by side; the lessons' deliberately flawed ones below them."""
    index = demos.index()
    if not index:
        st.caption("No ready-trained models are installed (models/demo_runs is missing); "
                   "`make demo-models` trains them.")
        return
    st.caption("Presets already trained on the built-in data, with their whole training run: use one at once "
               "and offline. Its curves are on the Train page, and the Inspect pages' training-step slider "
               "shows how it formed.")
    main = [about for about in index.values() if not about.lesson_only]
    for column, about in zip(st.columns(len(main)), main):
        with column:
            demo_button(about)
    lesson_only = [about for about in index.values() if about.lesson_only]
    if lesson_only:
        with st.expander("Made for the lessons: models that went wrong on purpose"):
            for about in lesson_only:
                demo_button(about)
    result = st.session_state.get(common.LOAD_RESULT)
    if result and result.get("demo"):
        st.session_state[common.LOAD_RESULT] = None  # said once, like a notice
        (st.success if result["ok"] else st.error)(result["message"])


def demo_button(about: demos.DemoInfo) -> None:
    current = common.current_model().meta.run_id == about.run_id
    st.button(about.name, key=f"{USE_DEMO}_{about.name}", on_click=use_demo, args=(about.name,), width="stretch",
              icon=":material/check_circle:" if current else ":material/bolt:", disabled=current,
              help="Your current model." if current else "Make this trained model the current model.")
    st.caption(f"{about.description} {reached(about)}")


def reached(about: demos.DemoInfo) -> str:
    """What the demo reached, in words: '96.9 % right on its 359 validation examples'."""
    if about.state == "diverged":
        return (f"Its last checkpoint before that (step {about.final_step:,}) gets {about.val_acc:.1%} of the "
                "validation examples right: a guess.")
    if about.lesson_only:
        return (f"It gets {about.train_acc:.1%} of its training examples right, "
                f"and {about.val_acc:.1%} of the validation examples.")
    return f"It gets {about.val_acc:.1%} of the validation examples right."


def use_demo(name: str) -> None:
    """Make the demo ``name`` the current model (a button's callback)."""
    try:
        model = demo_model(name)
    except UNREADABLE as err:
        st.session_state[common.LOAD_RESULT] = {
            "demo": True, "ok": False,
            "message": f"The ready-trained {name} could not be loaded: "
                       f"{common.as_markdown_text(common.sentence(err))}"}
        return
    about = demos.info(name)
    common.make_current(model, "")  # said under the buttons instead (LOAD_RESULT), not further down the page
    load_into_editor(model.spec, preset=about.preset if about.preset in presets.names() else None)
    watched = safe_status(st.session_state[common.CURRENT_RUN]) if st.session_state[common.CURRENT_RUN] else None
    if watched is None or not watched.active:
        st.session_state[common.CURRENT_RUN] = about.run_id
    st.session_state[common.LOAD_RESULT] = {
        "demo": True, "ok": True,
        "message": f"Now using the ready-trained {common.as_markdown_text(common.model_summary(model))}. "
                   f"{reached(about)} Every page uses it; the Train page shows how it was trained."}
