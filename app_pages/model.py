"""Model: choose or design a network, check its shapes, make it the current model, save or load it."""
import streamlit as st

from app_pages import common, model_design, model_files, ready_models

st.title("Model")
st.caption("Use a ready-trained model, or start from a preset, change any setting, and watch the output shape "
           "and parameter count of every layer update before anything is built.")

st.subheader("Ready-trained models")
ready_models.demo_buttons()

st.subheader("Start from a preset")
model_design.preset_picker()
status = st.container()  # filled once the design below is known

st.subheader("Design")
spec, problems = model_design.design_editor()
with status:
    model_design.design_status(spec)

st.subheader("Shapes and parameters")
problems += model_design.design_problems(spec)
common.show_problems(problems)
model_design.show_layer_table(spec, valid=not problems)
model_design.use_model_button(spec, problems)

st.divider()
st.subheader("Save and load")
save, load = st.columns(2, gap="large")
with save:
    model_files.save_button()
with load:
    model_files.load_uploader()

st.divider()
st.subheader("Pretrained models")
model_files.pretrained_loader()
