"""The Attention page's "same head before and after fine-tuning": for a fine-tuned pretrained
model, the chosen block and head on the same sentence, as the run's first checkpoint (the
pretrained encoder with its new, untrained head) and as the model shown, side by side, with
their difference.

Only fine-tuned models (a pretrained model with a run) get it; for any other model it draws nothing.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from app_pages import common
from app_pages import inspect_ui as ui
from app_pages.run_data import UNREADABLE, checkpoint_model, store
from app_pages.shared_views import figure_once
from explain.attention import head_average, inspect_attention
from viz.activations import attention_heatmap
from viz.labels import counted, numbered

AVERAGE = -1  # the Attention page's "mean of all heads"


def is_finetuned(model) -> bool:
    return model.is_pretrained and model.meta.run_id is not None and model.spec.input.kind == "tokens"


def before_and_after(model, ids, vocab, layer: int, head: int) -> None:
    """The head ``head`` (or AVERAGE) of block ``layer`` on ``ids``, before and after fine-tuning."""
    if ids is None or not is_finetuned(model):
        return
    run_id = model.meta.run_id
    try:
        before_model = checkpoint_model(str(store().root), run_id, 0)
    except UNREADABLE as err:
        st.caption(f"The model before fine-tuning (its run's first checkpoint) cannot be read, so there is no "
                   f"before-and-after view: {common.sentence(err)}")
        return
    before = ui.computed(inspect_attention, before_model, ids, vocab)
    after = ui.computed(inspect_attention, model, ids, vocab)
    pick = (lambda inspection: head_average(inspection, layer)) if head == AVERAGE else \
        (lambda inspection: inspection.patterns[layer, head])
    old, new = pick(before), pick(after)
    name = "the mean of its heads" if head == AVERAGE else numbered("head", head)
    step = model.meta.step
    st.subheader("The same head before and after fine-tuning")
    change = float(np.abs(new - old).sum(axis=-1).mean() / 2)  # mean total-variation distance of the rows
    st.caption(f"{numbered('Block', layer)}, {name}, on the same sentence: as pretrained (step 0, before any "
               f"fine-tuning) and {'after ' + f'{step:,} steps' if step else 'now'}. On average each token moved "
               f"{change:.0%} of its attention elsewhere.")
    left, right = st.columns(2)
    suffix = f"block{counted(layer)}-{'mean' if head == AVERAGE else f'head{counted(head)}'}"
    with left:
        ui.show_figure(figure_once(attention_heatmap, old, before.labels, title="Before fine-tuning"),
                       "attention_before", f"attention-before-{suffix}")
    with right:
        ui.show_figure(figure_once(attention_heatmap, new, after.labels,
                                   title=f"After fine-tuning{f' (step {step:,})' if step else ''}"),
                       "attention_after", f"attention-after-{suffix}")
