"""The Train page's results of a finished run: the confusion matrix and the validation examples
the final model gets wrong (pictures in a grid, sentences in a table), most confident first.

The predictions are computed once per run and checkpoint (``st.cache_data``).
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import common
from app_pages.figures import columns, plotly_chart
from app_pages.run_data import UNREADABLE, run_dataset, store
from explain import probe as probes
from training.jobs import RunStatus
from training.store import RunStore
from viz.training import confusion_figure, confusion_matrix, image_grid_figure

MISTAKES_SHOWN = 18  # misclassified validation examples in the grid or table

sentence = common.sentence


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
    # Pictures: the grid beside the matrix. Sentences: the table below it, at the page's full
    # width: beside it, its columns were cut off on the right.
    if dataset.input_kind == "image":
        matrix, mistakes = columns(2, gap="large")
    else:
        matrix, mistakes = columns([2, 3], gap="large")[0], st.container()
    with matrix:
        st.markdown("**Confusion matrix**")
        plotly_chart(confusion_figure(confusion_matrix(true, predicted, len(names)), names),
                     config={"displaylogo": False})
        st.caption("Each row is the true class, each column the model's answer: the diagonal is what it got right.")
    with mistakes:
        wrong = probes.misclassified(true, predicted, found["probabilities"], limit=MISTAKES_SHOWN)
        st.markdown("**Mistakes** (the most confident first)")
        if not len(wrong):
            st.success("No mistakes on the validation examples.")
        elif dataset.input_kind == "image":
            titles = [(f"said {names[predicted[i]]}", f"is {names[true[i]]}") for i in wrong]  # two lines, escaped
            plotly_chart(image_grid_figure([dataset.x_val[i].numpy() for i in wrong], titles, cols=6, tile=130),
                         config={"displayModeBar": False})
        else:
            table = pd.DataFrame({
                "Sentence": [probes.sentence_of(dataset.x_val[i], dataset.vocab) for i in wrong],
                "Model said": [names[predicted[i]] for i in wrong],
                "True": [names[true[i]] for i in wrong],
                "Sure": [float(found["probabilities"][i, predicted[i]]) for i in wrong]})
            st.dataframe(table, hide_index=True, width="stretch", key="train_mistakes",
                         column_config={"Sentence": st.column_config.TextColumn(width="large"),
                                        "Model said": st.column_config.TextColumn(width="small"),
                                        "True": st.column_config.TextColumn(width="small"),
                                        "Sure": st.column_config.ProgressColumn(min_value=0, max_value=1,
                                                                                format="percent", width="small")})
