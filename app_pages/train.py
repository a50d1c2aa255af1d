"""Train: pick the data and the settings, train the current model live, compare and reopen runs."""
import streamlit as st

from app_pages import common, people_ui, train_data, train_finetune, train_live, train_run, train_settings

st.title("Train")
st.caption("Train the current model and watch it learn: the loss falls, the accuracy climbs and its first "
           "layer takes shape. Training runs in the background, so the other pages stay usable, and "
           "coming back here (or reloading the page) shows the same run.")
people_ui.mode_line()
run = train_run.attached_run()
train_run.keep_a_worker_warm()  # Train then starts training at once
if run is not None:
    train_run.adopt_if_just_finished(run)
common.show_notice()
train_run.show_refusal()
train_run.shared_models()

if common.current_model().is_pretrained:  # fine-tuned, not trained from scratch
    train_finetune.finetune_section(common.current_model(), open_by_default=run is None)
    if run is not None:
        st.subheader(f"Training {common.as_markdown_text(train_run.run_title(run))}")
        train_run.run_controls(run)
    train_live.live_section(run)
    st.stop()

spec = common.current_model().spec
train_settings.design_note(common.unused_design())
train_settings.seed_settings(spec)
with train_settings.new_run_section(open_by_default=run is None):
    data_column, settings_column = st.columns(2, gap="large")
    with data_column:
        st.markdown(f"**Data** for {common.model_summary(common.current_model())}")
        dataset = train_data.dataset_picker(spec)
        fitted = train_data.fit_to_data(spec, dataset) if dataset is not None else None
    with settings_column:
        st.markdown("**Settings**")
        hyperparameters, problems = train_settings.settings_form(fitted or spec)
        common.show_problems(problems)
    train_settings.remember_settings(hyperparameters)
    train_settings.train_button(spec, dataset, hyperparameters, ready=fitted is not None and not problems)

if run is not None:
    st.subheader(f"Training {common.as_markdown_text(train_run.run_title(run))}")
    train_run.run_controls(run)
train_live.live_section(run)  # the run's status, curves and results, then all runs: one read, polled
